//! The second factor over the real router: TOTP checked against RFC 6238 and against an
//! independent implementation (`oathtool`), set up only with a right code, asked at every
//! sign-in, one step of drift either way, each step once (replay), recovery codes once each,
//! tickets that end, the practice policy that requires it, and the secret sealed at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;

use axum::http::{Method, StatusCode};
use kluis_server::accounts::second_factor::{TOTP_STEP_SECS, code_at};
use server::{Call, PASSWORD, TestServer};

const RFC6238: &str = include_str!("vectors/rfc6238-totp.json");

#[test]
fn codes_are_those_of_rfc_6238() {
    let v: serde_json::Value = serde_json::from_str(RFC6238).unwrap();
    let seed = hex::decode(v["seeds_hex"]["SHA1"].as_str().unwrap()).unwrap();
    let secret = data_encoding::BASE32_NOPAD.encode(&seed);
    let mut checked = 0;
    for t in v["tests"].as_array().unwrap().iter().filter(|t| t["mode"] == "SHA1") {
        let eight = t["totp"].as_str().unwrap();
        assert_eq!(code_at(&secret, t["unix_time"].as_u64().unwrap()).unwrap(), eight[2..], "{t}");
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn codes_are_those_oathtool_computes() {
    for seed in 0u8..5 {
        let secret = data_encoding::BASE32_NOPAD.encode(&[seed.wrapping_mul(37).wrapping_add(11); 20]);
        for t in [0u64, 59, 1_111_111_109, 1_800_000_000, 2_000_000_029, 4_102_444_800] {
            let out = std::process::Command::new("oathtool")
                .args(["--totp", "-b", &secret, "-N", &format!("@{t}")])
                .output()
                .expect("oathtool (Debian package oathtool; scripts/setup.sh --wasm installs it)");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(code_at(&secret, t).unwrap(), String::from_utf8(out.stdout).unwrap().trim(), "{secret} @{t}");
        }
    }
}

/// The code the user's app shows `steps` steps from the server's clock.
fn code(s: &TestServer, secret: &str, steps: i64) -> String {
    let now = s.clock.now() / 1000;
    code_at(secret, now.saturating_add_signed(steps * TOTP_STEP_SECS as i64)).unwrap()
}

fn wrong(right: &str) -> String {
    if right == "000000" { "000001".into() } else { "000000".into() }
}

/// Sets up TOTP for the session `token`; returns the secret and the recovery codes.
async fn set_up(s: &TestServer, token: &str) -> (String, Vec<String>) {
    let res = s.call(Call::post("/api/account/totp").session(token)).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let secret = res.json()["secret"].as_str().unwrap().to_owned();
    let qr = s.call(Call::get("/api/account/totp/qr.svg").session(token)).await;
    assert_eq!(qr.status, 200);
    assert!(String::from_utf8(qr.body).unwrap().contains("<svg"));
    let res = s
        .call(
            Call::post("/api/account/totp/confirm")
                .session(token)
                .json(serde_json::json!({"code": code(s, &secret, 0)})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let codes: Vec<String> =
        res.json()["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (secret, codes)
}

/// The password step; returns the ticket cookie.
async fn password_step(s: &TestServer, user: &str) -> String {
    let res = s.sign_in(user, PASSWORD).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), serde_json::json!({"second_step": "totp"}));
    assert!(res.set_cookie("__Host-kluis-session").is_none(), "no session before the second factor");
    res.set_cookie("__Host-kluis-ticket").unwrap()
}

async fn second_step(s: &TestServer, ticket: &str, code: &str) -> server::Res {
    s.second_step(ticket, code).await
}

#[tokio::test]
async fn totp_is_on_only_after_a_right_code_and_is_then_asked_at_every_sign_in() {
    let s = TestServer::cheap();
    let token = s.practice("P", "anna").await;
    assert_eq!(s.call(Call::get("/api/me").session(&token)).await.json()["second_factor"], false);
    let res = s.call(Call::post("/api/account/totp").session(&token)).await;
    let setup = res.json();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert_eq!(data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap().len(), 20, "160 bits");
    let uri = setup["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/kluis:anna?secret=") && uri.contains("issuer=kluis"), "{uri}");
    // A wrong code turns nothing on.
    let bad = wrong(&code(&s, &secret, 0));
    let res =
        s.call(Call::post("/api/account/totp/confirm").session(&token).json(serde_json::json!({"code": bad}))).await;
    assert_eq!(res.status, 400);
    assert_eq!(s.call(Call::get("/api/me").session(&token)).await.json()["second_factor"], false);
    assert_eq!(s.sign_in("anna", PASSWORD).await.json()["username"], "anna", "still one step");
    // The right one does, and gives ten different recovery codes.
    let used = code(&s, &secret, 0);
    let res =
        s.call(Call::post("/api/account/totp/confirm").session(&token).json(serde_json::json!({"code": used}))).await;
    assert_eq!(res.status, 200);
    let codes = res.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.iter().map(|c| c.as_str().unwrap()).collect::<std::collections::BTreeSet<_>>().len(), 10);
    assert_eq!(s.call(Call::get("/api/me").session(&token)).await.json()["second_factor"], true);
    // Sign-in now takes two steps. No ticket, no sign-in.
    let ticket = password_step(&s, "anna").await;
    assert_eq!(
        s.call(Call::post("/api/sign-in/second-factor").json(serde_json::json!({"code": used}))).await.status,
        401
    );
    // The code the set-up used is spent: its step is refused (replay), even within its window.
    assert_eq!(second_step(&s, &ticket, &used).await.status, 401);
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let res = second_step(&s, &ticket, &code(&s, &secret, 0)).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let session = res.set_cookie("__Host-kluis-session").unwrap();
    assert_eq!(s.call(Call::get("/api/me").session(&session)).await.json()["username"], "anna");
    // And that code, once used, cannot sign in again.
    let ticket = password_step(&s, "anna").await;
    assert_eq!(second_step(&s, &ticket, &code(&s, &secret, 0)).await.status, 401);
    // A wrong password still gets the one answer, with no ticket.
    let res = s.sign_in("anna", "not the password at all").await;
    assert_eq!(res.status, 401);
    assert!(res.set_cookie("__Host-kluis-ticket").is_none());
}

#[tokio::test]
async fn codes_are_accepted_one_step_either_side_and_each_step_once() {
    let s = TestServer::cheap();
    let token = s.practice("P", "anna").await;
    let (secret, _) = set_up(&s, &token).await;
    s.clock.advance(10 * TOTP_STEP_SECS * 1000);
    let try_code = |steps: i64| {
        let s = &s;
        let secret = secret.clone();
        async move {
            let ticket = password_step(s, "anna").await;
            second_step(s, &ticket, &code(s, &secret, steps)).await.status
        }
    };
    assert_eq!(try_code(-2).await, 401, "two steps behind");
    assert_eq!(try_code(2).await, 401, "two steps ahead");
    assert_eq!(try_code(-1).await, 200, "one step behind");
    assert_eq!(try_code(-1).await, 401, "the same step again");
    assert_eq!(try_code(0).await, 200);
    assert_eq!(try_code(1).await, 200, "one step ahead");
    assert_eq!(try_code(0).await, 401, "a step older than the last one used");
}

#[tokio::test]
async fn recovery_codes_work_once_and_a_new_set_replaces_the_old() {
    let s = TestServer::cheap();
    let token = s.practice("P", "anna").await;
    let (secret, codes) = set_up(&s, &token).await;
    let ticket = password_step(&s, "anna").await;
    assert_eq!(second_step(&s, &ticket, &codes[0].to_lowercase().replace('-', " ")).await.status, 200);
    let ticket = password_step(&s, "anna").await;
    assert_eq!(second_step(&s, &ticket, &codes[0]).await.status, 401, "used once");
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let res = s
        .call(
            Call::post("/api/account/recovery-codes")
                .session(&token)
                .json(serde_json::json!({"code": code(&s, &secret, 0)})),
        )
        .await;
    assert_eq!(res.status, 200);
    let fresh = res.json()["recovery_codes"][0].as_str().unwrap().to_owned();
    assert_eq!(second_step(&s, &ticket, &codes[1]).await.status, 401, "the old set is gone");
    assert_eq!(second_step(&s, &ticket, &fresh).await.status, 200);
}

#[tokio::test]
async fn a_ticket_ends_after_five_wrong_codes_or_five_minutes() {
    let s = TestServer::cheap();
    let token = s.practice("P", "anna").await;
    let (secret, _) = set_up(&s, &token).await;
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let ticket = password_step(&s, "anna").await;
    let right = code(&s, &secret, 0);
    for _ in 0..5 {
        assert_eq!(second_step(&s, &ticket, &wrong(&right)).await.status, 401);
    }
    assert_eq!(second_step(&s, &ticket, &right).await.status, 401, "the ticket ended");
    // The account's back-off (from the 6th failure) now applies to the next attempts too.
    s.clock.advance(10 * 60 * 1000);
    let ticket = password_step(&s, "anna").await;
    s.clock.advance(5 * 60 * 1000 + 1);
    assert_eq!(second_step(&s, &ticket, &code(&s, &secret, 0)).await.status, 401, "the ticket lapsed");
    s.clock.advance(60 * 1000);
    let ticket = password_step(&s, "anna").await;
    assert_eq!(second_step(&s, &ticket, &code(&s, &secret, 0)).await.status, 200);
}

#[tokio::test]
async fn a_practice_that_requires_a_second_factor_keeps_its_users_to_setting_one_up() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let policy = serde_json::json!({
        "idle_minutes": 15, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": true,
        "hipaa_mode": false
    });
    let res = s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(policy.clone())).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let me = s.call(Call::get("/api/me").session(&anna)).await.json();
    assert_eq!((me["second_factor"].as_bool(), me["second_factor_required"].as_bool()), (Some(false), Some(true)));
    let genesis = |seed: u8| {
        let keys = kluis_core::KeyHierarchy::derive(&kluis_core::VaultSecret::from_bytes([seed; 32])).notes;
        kluis_core::manifest::Manifest::genesis(&keys, 1).encode()
    };
    assert_eq!(s.call(Call::post("/api/vaults/notes").session(&anna).cbor(genesis(1))).await.status, 403);
    assert_eq!(s.call(Call::get("/api/practice/policy").session(&anna)).await.status, 403);
    set_up(&s, &anna).await;
    assert_eq!(s.call(Call::post("/api/vaults/notes").session(&anna).cbor(genesis(1))).await.status, 201);
    assert_eq!(s.call(Call::get("/api/practice/policy").session(&anna)).await.json(), policy);
    // A policy out of range is refused whole.
    let bad = serde_json::json!({"idle_minutes": 0, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": true});
    assert_eq!(s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(bad)).await.status, 400);
}

#[tokio::test]
async fn the_totp_secret_is_sealed_at_rest() {
    let s = TestServer::cheap();
    let token = s.practice("P", "anna").await;
    let (secret, codes) = set_up(&s, &token).await;
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let holding = s.accounts_files_holding(&[secret.as_bytes(), &raw[..], codes[0].as_bytes()]).await;
    assert!(holding.is_empty(), "{holding:?} hold a secret");
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor_with_a_record_of_who_checked_and_how() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let olga = s.practice("Q", "olga").await;
    let (secret, _) = set_up(&s, &bram).await;
    let reset = |who: &str, token: &str, body: serde_json::Value| {
        s.call(Call::post(&format!("/api/practice/users/{who}/second-factor-reset")).session(token).json(body))
    };
    let ok = serde_json::json!({"verified_by": "Anna (front desk)", "evidence": "video-call"});
    // Not by a user of another practice, not without a name, never the evidence itself.
    assert_eq!(reset("bram", &olga, ok.clone()).await.status, 404);
    assert_eq!(
        reset("bram", &anna, serde_json::json!({"verified_by": " ", "evidence": "in-person"})).await.status,
        400
    );
    let with_evidence = serde_json::json!({"verified_by": "Anna", "evidence": "in-person", "document": "NL123"});
    assert_eq!(reset("bram", &anna, with_evidence).await.status, 400);
    assert_eq!(reset("anna", &anna, ok.clone()).await.status, 403, "never one's own");
    assert_eq!(reset("bram", &anna, ok).await.status, 204);
    // Bram's sessions ended; his next sign-in asks no code, and he must set up a new factor
    // before anything else, though his practice does not require one.
    assert_eq!(s.call(Call::get("/api/me").session(&bram)).await.status, 401);
    let res = s.sign_in("bram", PASSWORD).await;
    assert_eq!(res.json()["second_factor"], false);
    let bram = res.set_cookie("__Host-kluis-session").unwrap();
    let me = s.call(Call::get("/api/me").session(&bram)).await.json();
    assert_eq!((&me["second_factor_required"], &me["second_factor_due"]), (&true.into(), &true.into()), "{me}");
    let some_vault = || Call::get("/api/vaults/00000000000000000000000000000000/head").session(&bram);
    assert_eq!(s.call(some_vault()).await.status, 403, "nothing before the set-up");
    // The practice's record names who did it, who checked and how.
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(
        events[0],
        serde_json::json!({
            "at_ms": s.clock.now(), "kind": "second-factor-reset", "username": "bram", "by": "admin:anna",
            "verified_by": "Anna (front desk)", "evidence": "video-call", "device": null, "detail": null
        })
    );
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["second-factor-reset", "second-factor-enabled", "device-trusted", "device-trusted"]);
    let theirs = s.call(Call::get("/api/practice/events").session(&olga)).await.json();
    assert!(theirs.as_array().unwrap().iter().all(|e| e["username"] == "olga"), "{theirs}");
    // Once a new factor is on, he is ready.
    let (new_secret, _) = set_up(&s, &bram).await;
    assert_ne!(new_secret, secret);
    let me = s.call(Call::get("/api/me").session(&bram)).await.json();
    assert_eq!((&me["second_factor_required"], &me["second_factor_due"]), (&false.into(), &false.into()), "{me}");
    assert_eq!(s.call(some_vault()).await.status, 404, "ready: the vault is only not his");
}

#[tokio::test]
async fn every_sign_in_attempt_is_in_the_users_history_and_the_admins_practice_view() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let (_secret, _) = set_up(&s, &bram).await;
    assert_eq!(s.sign_in("bram", "a wrong password, long enough").await.status, 401);
    let ticket = password_step(&s, "bram").await;
    assert_eq!(second_step(&s, &ticket, "000000x").await.status, 401);
    let mine = s.call(Call::get("/api/sign-ins").session(&bram)).await.json();
    let results: Vec<&str> = mine.as_array().unwrap().iter().map(|e| e["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["failed", "second-factor", "failed"]);
    assert!(mine.as_array().unwrap().iter().all(|e| e["username"] == "bram"));
    // The admin sees the practice's attempts, anna's own enrollment sign-in aside.
    let practice = s.call(Call::get("/api/practice/sign-ins").session(&anna)).await.json();
    assert_eq!(practice.as_array().unwrap().len(), 3);
    assert_eq!(s.call(Call::get("/api/practice/sign-ins").session(&bram)).await.status, 403);
}

#[tokio::test]
async fn turning_the_second_factor_on_ends_the_sessions_that_did_not_pass_it() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let older = s.sign_in("anna", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap();
    let policy = serde_json::json!({
        "idle_minutes": 15, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": true, "hipaa_mode": false
    });
    assert_eq!(s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(policy)).await.status, 200);
    set_up(&s, &anna).await;
    // The session that set it up passed it; the password-only one ended.
    assert_eq!(s.call(Call::get("/api/me").session(&older)).await.status, 401);
    assert_eq!(s.call(Call::get("/api/practice/policy").session(&anna)).await.status, 200);
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(events[0]["kind"], "second-factor-enabled");
}

#[tokio::test]
async fn guessing_codes_for_new_recovery_codes_is_bounded() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let (secret, _) = set_up(&s, &anna).await;
    let right = code(&s, &secret, 1);
    let ask =
        |c: &str| s.call(Call::post("/api/account/recovery-codes").session(&anna).json(serde_json::json!({"code": c})));
    for _ in 0..kluis_server::accounts::MAX_TICKET_TRIES {
        assert_eq!(ask(&wrong(&right)).await.status, 400);
    }
    // The fifth wrong code ended the session; each one counted against the account.
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.status, 401);
    assert_eq!(ask(&right).await.status, 401);
    let user = s.state.accounts.user_by_name("anna").unwrap().unwrap();
    // (This session is on her trusted device: they count as that kind's failures.)
    assert_eq!(user.failures.known, kluis_server::accounts::MAX_TICKET_TRIES);
}

#[tokio::test]
async fn a_shorter_idle_time_reaches_the_sessions_already_open() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let policy = serde_json::json!({
        "idle_minutes": 5, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": false, "hipaa_mode": false
    });
    assert_eq!(s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(policy)).await.status, 200);
    s.clock.advance(6 * 60 * 1000);
    assert_eq!(s.call(Call::get("/api/me").session(&bram)).await.status, 401, "opened with 15 minutes, ended after 5");
}

#[tokio::test]
async fn a_reset_ends_the_sign_ins_under_way() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let carl = s.member("P", "carl", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let (secret, _) = set_up(&s, &carl).await;
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let ticket = password_step(&s, "carl").await;
    let reset = Call::post("/api/practice/users/carl/second-factor-reset")
        .session(&anna)
        .json(serde_json::json!({"verified_by": "Anna", "evidence": "video-call"}));
    assert_eq!(s.call(reset).await.status, 204);
    assert_eq!(second_step(&s, &ticket, &code(&s, &secret, 0)).await.status, 401);
}

#[tokio::test]
async fn debug_output_prints_no_secret() {
    let s = TestServer::cheap();
    s.practice("P", "anna").await;
    let anna = s.state.accounts.user_by_name("anna").unwrap().unwrap();
    let setup = s.state.accounts.begin_totp(&anna.id).unwrap();
    let shown = format!("{setup:?}");
    assert!(!shown.contains(setup.secret.as_str()) && !shown.contains("otpauth"), "{shown}");
    let step = kluis_server::accounts::SecondStep {
        ticket: "TICKET-VALUE",
        code: "123456",
        ip: "10.0.0.1".parse().unwrap(),
        user_agent: "t",
        old_session: Some("SESSION-VALUE"),
    };
    let shown = format!("{step:?}");
    assert!(
        !shown.contains("TICKET-VALUE") && !shown.contains("123456") && !shown.contains("SESSION-VALUE"),
        "{shown}"
    );
    let mail = kluis_server::mail::Mail {
        to: "a@example.org".into(),
        subject: "Code".into(),
        body: "confirm it: 654321".into(),
        unsubscribe: Some("https://x/api/unsubscribe?token=TOKEN-VALUE".into()),
    };
    let shown = format!("{mail:?}");
    assert!(!shown.contains("654321") && !shown.contains("TOKEN-VALUE"), "{shown}");
}

/// The practice's own minimum password length holds when a new user chooses a password.
#[tokio::test]
async fn the_practices_minimum_password_length_is_enforced_at_enrollment() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let policy = serde_json::json!({
        "idle_minutes": 15, "absolute_hours": 12, "min_password_chars": 30, "second_factor_required": false,
        "hipaa_mode": false
    });
    assert_eq!(s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(policy)).await.status, 200);
    let invited =
        s.state.accounts.invite("P", "carl", [kluis_server::accounts::model::Role::Practitioner].into()).unwrap();
    let enroll = |password: &str| {
        let body = serde_json::json!({"code": invited.code.clone(), "password": password, "email": "carl@example.org"});
        s.call(Call::post("/api/enroll").json(body))
    };
    assert!(PASSWORD.chars().count() < 30);
    let res = enroll(PASSWORD).await;
    assert_eq!(res.status, 400, "{}", String::from_utf8_lossy(&res.body));
    assert!(String::from_utf8_lossy(&res.body).contains("30"), "the error names the minimum");
    let res = enroll("lentewind over het wad bij laagwater").await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
}

/// While a reset second factor waits to be set up again, the account reaches its set-up and
/// its own settings, and nothing else: no vault, no key registration, no practice page, no
/// support code, no letting a browser in. Once a new factor is on, all of it opens.
#[tokio::test]
async fn after_a_reset_only_the_set_up_is_reachable_until_a_new_factor_is_on() {
    use kluis_server::accounts::model::Role;
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[Role::Practitioner, Role::Admin]).await;
    set_up(&s, &bram).await;
    let ok = serde_json::json!({"verified_by": "Anna", "evidence": "in-person"});
    let reset = Call::post("/api/practice/users/bram/second-factor-reset").session(&anna).json(ok);
    assert_eq!(s.call(reset).await.status, 204);
    let bram = s.sign_in("bram", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap();
    let genesis = {
        let keys = kluis_core::KeyHierarchy::derive(&kluis_core::VaultSecret::from_bytes([7; 32])).notes;
        kluis_core::manifest::Manifest::genesis(&keys, 1).encode()
    };
    let refused = || {
        [
            ("create a vault", Call::post("/api/vaults/notes").cbor(genesis.clone())),
            ("read a vault", Call::get("/api/vaults/00000000000000000000000000000000/head")),
            ("register a key", Call::post("/api/vault-key").json(serde_json::json!({"public_key": "kluispub1x"}))),
            ("practice members", Call::get("/api/practice/users")),
            ("practice policy", Call::get("/api/practice/policy")),
            ("support code", Call::post("/api/account/support").json(serde_json::json!({"scopes": ["view-settings"]}))),
            (
                "let a browser in",
                Call::post("/api/devices/pending/00000000000000000000000000000000/approve")
                    .json(serde_json::json!({"number": "12"})),
            ),
        ]
    };
    for (what, call) in refused() {
        assert_eq!(s.call(call.session(&bram)).await.status, StatusCode::FORBIDDEN, "{what}");
    }
    for path in ["/api/me", "/api/devices", "/api/sign-ins", "/api/account/events", "/api/account/notifications"] {
        assert_eq!(s.call(Call::get(path).session(&bram)).await.status, StatusCode::OK, "{path}");
    }
    set_up(&s, &bram).await;
    for (what, call) in refused() {
        assert_ne!(s.call(call.session(&bram)).await.status, StatusCode::FORBIDDEN, "{what} once ready");
    }
}
