//! Mail: a real SMTP conversation with a local sink. In HIPAA mode every sign-in is announced,
//! and the announcement's link ends that session, on a POST only, once, until the session would
//! have ended anyway. A second-factor reset is announced. No message holds anything of a record
//! (canary strings in an encrypted vault), and the outbox writes RFC 5322 files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;
#[path = "support/smtp.rs"]
mod smtp;

use std::collections::BTreeMap;

use axum::http::Method;
use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::wire::SaveRequest;
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultSecret, envelope};
use kluis_server::accounts::model::Role;
use kluis_server::accounts::second_factor::{TOTP_STEP_SECS, code_at};
use kluis_server::mail::{Mail, Mailer};
use server::{Call, PASSWORD, TestServer};
use smtp::SmtpSink;

const CANARIES: [&str; 3] = ["Canary Clientname", "canary-subjective-text", "CanaryTag"];

/// A vault with a note full of canaries, stored the only way the server ever sees it: sealed.
async fn canary_vault(s: &TestServer, token: &str) {
    let keys = KeyHierarchy::derive(&VaultSecret::from_bytes([9; 32])).notes;
    let res = s.call(Call::post("/api/vaults/notes").session(token).cbor(Manifest::genesis(&keys, 1).encode())).await;
    assert_eq!(res.status, 201);
    let head = verify(&s.state.notes.head(&keys.id).await.unwrap(), &keys, None, &[]).unwrap();
    let rec = RecordId::from_bytes([7; 16]);
    let text = serde_json::json!({"v": 1, "client": CANARIES[0], "s": CANARIES[1], "tags": [CANARIES[2]]}).to_string();
    let env = envelope::seal(&keys, &RecordHeader::first(keys.id, rec, RecordKind::Note), text.as_bytes()).unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, _) = head.prepare_update(&keys, BTreeMap::from([(rec, change)]), 2).unwrap();
    let body = SaveRequest { update: &update.encode(), envelopes: vec![(rec, &env)] }.encode();
    let path = format!("/api/vaults/{}/saves", hex::encode(keys.id.to_bytes()));
    assert_eq!(s.call(Call::post(&path).session(token).cbor(body)).await.status, 204);
}

/// Sets up TOTP; returns the secret.
async fn totp(s: &TestServer, token: &str) -> String {
    let secret =
        s.call(Call::post("/api/account/totp").session(token)).await.json()["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, s.clock.now() / 1000).unwrap();
    let res =
        s.call(Call::post("/api/account/totp/confirm").session(token).json(serde_json::json!({"code": code}))).await;
    assert_eq!(res.status, 200);
    secret
}

/// Signs in with password and code (one step later than the last code used); the session.
async fn sign_in(s: &TestServer, user: &str, secret: &str) -> String {
    sign_in_with(s, user, PASSWORD, secret).await
}

async fn sign_in_with(s: &TestServer, user: &str, password: &str, secret: &str) -> String {
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let ticket = s.sign_in(user, password).await.set_cookie("__Host-kluis-ticket").unwrap();
    let code = code_at(secret, s.clock.now() / 1000).unwrap();
    let res = s
        .call(
            Call::post("/api/sign-in/second-factor")
                .cookie(&format!("__Host-kluis-ticket={ticket}"))
                .json(serde_json::json!({ "code": code })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.set_cookie("__Host-kluis-session").unwrap()
}

fn link_token(data: &str) -> String {
    // The body may be quoted-printable: soft line breaks, and "=" as "=3D".
    let text = data.replace("=\n", "").replace("=3D", "=");
    let at = text.find("https://kluis.test/act.html#not-me=").expect("the link")
        + "https://kluis.test/act.html#not-me=".len();
    text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

#[tokio::test]
async fn in_hipaa_mode_every_sign_in_is_announced_and_its_link_ends_that_session() {
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = TestServer::with_mail(Mailer::smtp(&url, "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap());
    let anna = s.practice("P", "anna").await;
    canary_vault(&s, &anna).await;
    let secret = totp(&s, &anna).await;
    let policy = serde_json::json!({
        "idle_minutes": 45, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": false, "hipaa_mode": true
    });
    let set = |p: serde_json::Value| s.call(Call::new(Method::PUT, "/api/practice/policy").session(&anna).json(p));
    assert_eq!(set(policy.clone()).await.status, 400, "HIPAA mode allows at most 30 idle minutes");
    let mut policy = policy;
    policy["idle_minutes"] = 15.into();
    assert_eq!(set(policy).await.status, 200);
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.json()["second_factor_required"], true);

    // A sign-in: the notice arrives over SMTP, to the account's address.
    let session = sign_in(&s, "anna", &secret).await;
    let mail = sink.wait_for(1).await.pop().unwrap();
    assert_eq!(mail.to, ["<someone@example.org>"]);
    assert!(mail.data.contains("Subject: New sign-in to your kluis account"), "{}", mail.data);
    assert!(mail.data.contains("anna") && mail.data.contains("Address: 10."), "{}", mail.data);
    let token = link_token(&mail.data);
    assert_eq!(token.len(), 22);
    // The link's page acts only on a POST: a GET of the API path changes nothing.
    assert_eq!(s.call(Call::get("/api/not-me")).await.status, 405);
    assert_eq!(s.call(Call::get("/api/me").session(&session)).await.status, 200);
    let not_me = |t: &str| s.call(Call::post("/api/not-me").json(serde_json::json!({ "token": t })));
    assert_eq!(not_me(&token).await.status, 204);
    assert_eq!(s.call(Call::get("/api/me").session(&session)).await.status, 401, "that session ended");
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.status, 200, "the others did not");
    assert_eq!(not_me(&token).await.status, 400, "once only");
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(events[0]["kind"], "session-ended-by-link");

    // A link outlives nothing: once its session would have ended, it does nothing.
    let session = sign_in(&s, "anna", &secret).await;
    let token = link_token(&sink.wait_for(2).await[1].data);
    s.clock.advance(12 * 60 * 60 * 1000);
    assert_eq!(not_me(&token).await.status, 400);
    let _ = session;

    // A second-factor reset is announced to its user.
    let anna = sign_in(&s, "anna", &secret).await;
    let bram = s.member("P", "bram", &[Role::Practitioner]).await;
    totp(&s, &bram).await;
    let reset = Call::post("/api/practice/users/bram/second-factor-reset")
        .session(&anna)
        .json(serde_json::json!({"verified_by": "Anna", "evidence": "in-person"}));
    assert_eq!(s.call(reset).await.status, 204);
    let all = sink.wait_for(4).await;
    assert!(
        all.iter().any(|m| m.data.contains("two-step sign-in was reset")
            || m.data.contains("two-step sign-in of your kluis account"))
    );

    // Nothing of the vault's content is in any message.
    for m in &all {
        for canary in CANARIES {
            assert!(!m.data.contains(canary), "{canary} in {}", m.data);
        }
        assert!(m.data.contains("Account and security"), "every message says where to manage the account");
    }
}

#[tokio::test]
async fn without_a_relay_mail_goes_to_the_outbox_as_rfc_5322_files() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::outbox(outbox.clone(), "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap();
    let mail = Mail { to: "anna@example.org".into(), subject: "Hello".into(), body: "A line.".into() };
    mailer.send(&mail).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    for header in ["From: kluis <kluis@kluis.test>", "To: anna@example.org", "Subject: Hello", "Date: "] {
        assert!(text.contains(header), "{header} missing in {text}");
    }
    assert!(text.contains("A line."));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777, 0o700);
    }
    // A recipient that is no address is refused, and nothing is written.
    let bad = Mail { to: "not an address".into(), ..mail };
    assert!(mailer.send(&bad).await.is_err());
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
}

#[tokio::test]
async fn a_password_reset_link_works_once_for_an_hour_and_still_leaves_the_second_factor_to_ask() {
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = TestServer::with_mail(Mailer::smtp(&url, "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap());
    let anna = s.practice("P", "anna").await;
    let secret = totp(&s, &anna).await;
    let ask = |who: &str| s.call(Call::post("/api/password-reset").json(serde_json::json!({ "username": who })));
    // An unknown username gets the same answer, and no mail.
    assert_eq!(ask("nobody").await.status, 202);
    assert_eq!(ask("anna").await.status, 202);
    let mail = sink.wait_for(1).await.pop().unwrap();
    assert_eq!(sink.received.lock().unwrap().len(), 1, "no mail for an unknown username");
    assert!(mail.data.contains("Subject: Reset your kluis password"));
    let text = mail.data.replace("=\n", "").replace("=3D", "=");
    let at = text.find("https://kluis.test/act.html#reset=").unwrap() + "https://kluis.test/act.html#reset=".len();
    let token: String =
        text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let complete = |t: &str, p: &str| {
        s.call(Call::post("/api/password-reset/complete").json(serde_json::json!({ "token": t, "password": p })))
    };
    // A password the policy refuses changes nothing and keeps the link.
    assert_eq!(complete(&token, "password123").await.status, 400);
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.status, 200);
    let new_password = "een nieuw wachtwoord voor anna";
    assert_eq!(complete(&token, new_password).await.status, 204);
    assert_eq!(complete(&token, "nog een ander wachtwoord hier").await.status, 400, "once only");
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.status, 401, "every session ended");
    // The old password no longer signs in; the new one does, and the second factor is still asked.
    assert_eq!(s.sign_in("anna", PASSWORD).await.status, 401);
    let res = s.sign_in("anna", new_password).await;
    assert_eq!(res.json(), serde_json::json!({"second_step": "totp"}));
    let all = sink.wait_for(2).await;
    assert!(all[1].data.contains("Subject: Your kluis password was changed"));
    // A link lapses after an hour, and a newer one replaces an older one.
    // (One at a time: mail goes out in the background, so two could arrive in either order.)
    assert_eq!(ask("anna").await.status, 202);
    sink.wait_for(3).await;
    assert_eq!(ask("anna").await.status, 202);
    let all = sink.wait_for(4).await;
    let token_of = |m: &smtp::Received| {
        let text = m.data.replace("=\n", "").replace("=3D", "=");
        let at = text.find("#reset=").unwrap() + "#reset=".len();
        text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>()
    };
    let (older, newer) = (token_of(&all[2]), token_of(&all[3]));
    assert_eq!(complete(&older, "weer een ander nieuw wachtwoord").await.status, 400, "replaced");
    s.clock.advance(60 * 60 * 1000);
    assert_eq!(complete(&newer, "weer een ander nieuw wachtwoord").await.status, 400, "lapsed");
    let session = sign_in_with(&s, "anna", new_password, &secret).await;
    let events = s.call(Call::get("/api/practice/events").session(&session)).await.json();
    assert_eq!(events[0]["kind"], "password-reset");
}
