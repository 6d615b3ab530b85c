//! Trusted devices over the real router: a browser proves its device key by signing a fresh
//! challenge; a sign-in from a key the account does not trust gets no session until it is
//! confirmed, by the code sent out of band or by an approval from a trusted device; devices are
//! listed, renamed and revoked (which ends their sessions); the device proof is checked against
//! Wycheproof's ECDSA P-256 vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;

use axum::http::{Method, StatusCode};
use kluis_server::accounts::devices::{parse_device_key, signed_message, verify_signature};
use kluis_server::accounts::{DEVICE_TICKET_LIFETIME_MS, MAX_PENDING_DEVICES, MAX_TICKET_TRIES};
use server::{Call, PASSWORD, TestServer, device_key};

const TICKET: &str = "__Host-kluis-ticket";
const SESSION: &str = "__Host-kluis-session";

/// The six-digit code in the newest confirmation message of the outbox.
async fn code_from_outbox(s: &TestServer, n: usize) -> String {
    let mails = s.outbox(n).await;
    let mail = mails.iter().rev().find(|m| m.contains("Your kluis code to confirm a new browser")).unwrap();
    let text = mail.replace("=\r\n", "").replace("=\n", "");
    let at = text.find("confirm it: ").unwrap() + "confirm it: ".len();
    text[at..at + 6].to_owned()
}

/// The code of the next confirmation sent after `before` codes.
async fn next_code(s: &TestServer, before: usize) -> String {
    for _ in 0..100 {
        if let Some(c) = s.device_codes().get(before) {
            return c.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no new code");
}

fn confirm(ticket: &str, code: &str) -> Call {
    Call::post("/api/sign-in/device").cookie(&format!("{TICKET}={ticket}")).json(serde_json::json!({ "code": code }))
}

fn wait(ticket: &str) -> Call {
    Call::post("/api/sign-in/device/wait").cookie(&format!("{TICKET}={ticket}"))
}

#[tokio::test]
async fn a_new_browser_gets_no_session_until_the_code_sent_out_of_band_confirms_it() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let laptop = device_key();
    let res = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await;
    assert_eq!(res.status, StatusCode::OK);
    let asked = res.json();
    assert_eq!(
        (asked["second_step"].clone(), asked["channels"].clone()),
        ("device".into(), serde_json::json!(["e-mail", "device"]))
    );
    let number: u32 = asked["number"].as_str().unwrap().parse().unwrap();
    assert!((10..=99).contains(&number), "{asked}");
    assert!(res.set_cookie(SESSION).is_none(), "no session before the browser is confirmed");
    let ticket = res.set_cookie(TICKET).unwrap();
    // The ticket is no session.
    assert_eq!(s.call(Call::get("/api/me").cookie(&format!("{SESSION}={ticket}"))).await.status, 401);
    let code = code_from_outbox(&s, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(s.call(confirm(&ticket, wrong)).await.status, 401);
    let ok = s.call(confirm(&ticket, &code)).await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    let session = ok.set_cookie(SESSION).unwrap();
    assert_eq!(s.call(Call::get("/api/me").session(&session)).await.json()["username"], "anna");
    assert_eq!(s.call(confirm(&ticket, &code)).await.status, 401, "a code works once");
    // The laptop is trusted now: its next sign-in needs no code.
    let again = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await;
    assert!(again.set_cookie(SESSION).is_some(), "{}", String::from_utf8_lossy(&again.body));
    let devices = s.call(Call::get("/api/devices").session(&anna)).await.json();
    let list = devices["devices"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    drop(anna);
    assert!(list.iter().any(|d| d["confirmed_by"] == "code by e-mail"));
    assert!(list.iter().any(|d| d["confirmed_by"] == "enrollment" && d["current"] == true));
    // The owner hears of the new browser (an optional notice, with its unsubscribe link).
    let mails = s.mails().await;
    let notice = mails.iter().find(|m| m.contains("A new browser for your kluis account")).unwrap();
    assert!(notice.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{notice}");

    // Five wrong codes end a ticket: the right code then does nothing.
    let phone = device_key();
    let ticket = s.sign_in_from("anna", PASSWORD, Some(&phone)).await.set_cookie(TICKET).unwrap();
    let code = code_from_outbox(&s, 3).await;
    let wrong = if code == "111111" { "111112" } else { "111111" };
    for _ in 0..MAX_TICKET_TRIES {
        assert_eq!(s.call(confirm(&ticket, wrong)).await.status, 401);
    }
    assert_eq!(s.call(confirm(&ticket, &code)).await.status, 401);
    // (Each wrong code counted as a failed sign-in from an unknown browser: the back-off.)
    assert_eq!(s.sign_in_from("anna", PASSWORD, Some(&phone)).await.status, 429);
    s.clock.advance(kluis_server::accounts::throttle::delay_after(MAX_TICKET_TRIES));
    // A code lapses with its ticket after 15 minutes.
    let ticket = s.sign_in_from("anna", PASSWORD, Some(&phone)).await.set_cookie(TICKET).unwrap();
    let code = code_from_outbox(&s, 4).await;
    s.clock.advance(DEVICE_TICKET_LIFETIME_MS);
    assert_eq!(s.call(confirm(&ticket, &code)).await.status, 401);

    // A browser without a device key can be let in by a code, but is never remembered.
    let mut session = String::new();
    for n in [5, 6] {
        let res = s.sign_in_from("anna", PASSWORD, None).await;
        let ticket = res.set_cookie(TICKET).unwrap();
        let code = code_from_outbox(&s, n).await;
        let res = s.call(confirm(&ticket, &code)).await;
        assert_eq!(res.status, 200);
        session = res.set_cookie(SESSION).unwrap();
    }
    let devices = s.call(Call::get("/api/devices").session(&session)).await.json();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2, "{devices}");
}

#[tokio::test]
async fn a_trusted_device_approves_or_refuses_a_new_browser() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let laptop = device_key();
    let res = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await;
    let number = res.json()["number"].as_str().unwrap().to_owned();
    let ticket = res.set_cookie(TICKET).unwrap();
    let waiting = s.call(wait(&ticket)).await;
    assert_eq!(waiting.status, 202);
    assert!(waiting.set_cookie(SESSION).is_none());
    // The new browser is listed on anna's trusted device, not on bram's.
    let pending = s.call(Call::get("/api/devices").session(&anna)).await.json()["pending"].clone();
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["browser"], "A browser");
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.call(Call::get("/api/devices").session(&bram)).await.json()["pending"], serde_json::json!([]));
    let approve = |who: &str, id: &str, number: &str| {
        s.call(
            Call::post(&format!("/api/devices/pending/{id}/approve"))
                .session(who)
                .json(serde_json::json!({ "number": number })),
        )
    };
    assert_eq!(approve(&bram, &id, &number).await.status, 404, "not bram's to approve");
    assert_eq!(s.call(wait(&ticket)).await.status, 202);
    assert_eq!(approve(&anna, &id, &number).await.status, 204);
    let done = s.call(wait(&ticket)).await;
    assert_eq!(done.status, 200);
    let session = done.set_cookie(SESSION).unwrap();
    assert_eq!(s.call(Call::get("/api/me").session(&session)).await.status, 200);
    assert_eq!(approve(&anna, &id, &number).await.status, 404, "once");
    let devices = s.call(Call::get("/api/devices").session(&anna)).await.json()["devices"].clone();
    assert!(devices.as_array().unwrap().iter().any(|d| d["confirmed_by"].as_str().unwrap().starts_with("device ")));

    // The approver types the number the new browser shows: a wrong one refuses it (a stranger's
    // waiting sign-in is not let in by a reflex).
    let guessed = s.sign_in_from("anna", PASSWORD, Some(&device_key())).await;
    let right = guessed.json()["number"].as_str().unwrap().to_owned();
    let guessed = guessed.set_cookie(TICKET).unwrap();
    let pending = s.call(Call::get("/api/devices").session(&anna)).await.json()["pending"].clone();
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    let wrong_number = if right == "10" { "11" } else { "10" };
    assert_eq!(approve(&anna, &id, wrong_number).await.status, 400);
    assert_eq!(s.call(wait(&guessed)).await.status, 403);
    assert_eq!(approve(&anna, &id, &right).await.status, 404, "refused for good");

    // Refused: the new browser hears so, and its ticket is gone.
    let stranger = device_key();
    let ticket = s.sign_in_from("anna", PASSWORD, Some(&stranger)).await.set_cookie(TICKET).unwrap();
    let pending = s.call(Call::get("/api/devices").session(&anna)).await.json()["pending"].clone();
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.call(Call::post(&format!("/api/devices/pending/{id}/deny")).session(&anna)).await.status, 204);
    assert_eq!(s.call(wait(&ticket)).await.status, 403);
    assert_eq!(s.call(wait(&ticket)).await.status, 401, "the refused sign-in is over");
    let log = s.call(Call::get("/api/sign-ins").session(&anna)).await.json();
    assert!(log.as_array().unwrap().iter().any(|e| e["result"] == "device-denied"));

    // A session that is on no trusted device (a keyless browser let in by code) approves nothing.
    s.state.accounts.mail_sent(std::time::Duration::from_secs(5)).await;
    let before = s.device_codes().len();
    let keyless = s.sign_in_from("anna", PASSWORD, None).await.set_cookie(TICKET).unwrap();
    let code = next_code(&s, before).await;
    let keyless = s.call(confirm(&keyless, &code)).await;
    let keyless = keyless.set_cookie(SESSION).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&keyless.body)));
    let ticket = s.sign_in_from("anna", PASSWORD, Some(&stranger)).await.set_cookie(TICKET).unwrap();
    let pending = s.call(Call::get("/api/devices").session(&keyless)).await.json()["pending"].clone();
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(&keyless, &id, "42").await.status, 400);
    assert_eq!(s.call(wait(&ticket)).await.status, 202);

    // A stranger with the password cannot pile up requests: the oldest make way; and codes to
    // one account are bounded (mail and SMS cost, and a flood for its owner).
    let burst = kluis_server::accounts::throttle::DEVICE_CODES_BURST as usize;
    s.state.accounts.mail_sent(std::time::Duration::from_secs(5)).await;
    let sent_before = s.device_codes().len();
    let mut throttled = 0;
    for _ in 0..burst {
        throttled += u32::from(s.sign_in_from("anna", PASSWORD, Some(&device_key())).await.status == 429);
    }
    let pending = s.call(Call::get("/api/devices").session(&anna)).await.json()["pending"].clone();
    assert_eq!(pending.as_array().unwrap().len(), MAX_PENDING_DEVICES, "{pending}");
    s.state.accounts.mail_sent(std::time::Duration::from_secs(5)).await;
    let codes = s.device_codes().len();
    assert!(throttled as usize == sent_before && codes == burst, "{codes} codes, {throttled} refused");
}

#[tokio::test]
async fn a_revoked_device_loses_its_sessions_and_must_be_confirmed_again() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let laptop = device_key();
    let ticket = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await.set_cookie(TICKET).unwrap();
    let code = code_from_outbox(&s, 1).await;
    let on_laptop = s.call(confirm(&ticket, &code)).await.set_cookie(SESSION).unwrap();
    let devices = s.call(Call::get("/api/devices").session(&anna)).await.json()["devices"].clone();
    let id =
        devices.as_array().unwrap().iter().find(|d| d["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    // Renamed: 1 to 60 characters.
    let rename = |id: &str, name: &str| {
        s.call(
            Call::new(Method::PUT, &format!("/api/devices/{id}"))
                .session(&anna)
                .json(serde_json::json!({ "name": name })),
        )
    };
    assert_eq!(rename(&id, "Laptop at the practice").await.json()["name"], "Laptop at the practice");
    assert_eq!(rename(&id, " ").await.status, 400);
    assert_eq!(rename(&id, &"x".repeat(61)).await.status, 400);
    assert_eq!(rename("0011223344556677", "Other").await.status, 404);
    // Another user cannot see or revoke it.
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let revoke = |who: &str, id: &str| s.call(Call::new(Method::DELETE, &format!("/api/devices/{id}")).session(who));
    assert_eq!(revoke(&bram, &id).await.status, 404);
    assert_eq!(s.call(Call::get("/api/me").session(&on_laptop)).await.status, 200);
    // A sign-in under way on it (password given, code not yet) ends with it.
    let (secret, token) = {
        let res = s.call(Call::post("/api/account/totp").session(&anna)).await;
        let secret = res.json()["secret"].as_str().unwrap().to_owned();
        let code = kluis_server::accounts::second_factor::code_at(&secret, s.clock.now() / 1000).unwrap();
        let res = s
            .call(Call::post("/api/account/totp/confirm").session(&anna).json(serde_json::json!({"code": code})))
            .await;
        assert_eq!(res.status, 200);
        (secret, anna.clone())
    };
    let anna = token;
    assert_eq!(s.call(Call::get("/api/me").session(&on_laptop)).await.status, 401, "it did not pass the new factor");
    s.clock.advance(30_000);
    let half = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await;
    assert_eq!(half.json()["second_step"], "totp");
    let half = half.set_cookie(TICKET).unwrap();
    assert_eq!(revoke(&anna, &id).await.status, 204);
    let code = kluis_server::accounts::second_factor::code_at(&secret, s.clock.now() / 1000).unwrap();
    let res = s.second_step(&half, &code).await;
    assert_eq!(res.status, 401, "the sign-in under way ended with the device");
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.status, 200, "the others did not");
    s.clock.advance(30_000);
    let res = s.sign_in_from("anna", PASSWORD, Some(&laptop)).await;
    let ticket = res.set_cookie(TICKET).unwrap();
    let code = kluis_server::accounts::second_factor::code_at(&secret, s.clock.now() / 1000).unwrap();
    let res = s.second_step(&ticket, &code).await;
    assert_eq!(res.json()["second_step"], "device", "confirmed again before it gets in");
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(events[0]["kind"], "device-revoked");
    assert_eq!(events[0]["device"], id.as_str());
}

#[tokio::test]
async fn a_device_proof_is_fresh_once_and_by_the_key_it_names() {
    let s = TestServer::cheap();
    s.practice("P", "anna").await;
    let own = s.device_of("anna").unwrap();
    let sign_in = |proof: serde_json::Value| {
        s.call(
            Call::post("/api/sign-in")
                .json(serde_json::json!({"username": "anna", "password": PASSWORD, "device": proof})),
        )
    };
    let proof = s.proof(&own).await;
    assert_eq!(sign_in(proof.clone()).await.status, 200);
    assert_eq!(sign_in(proof.clone()).await.status, 400, "a challenge answers once");
    // Someone else's signature over a fresh challenge, under anna's public key.
    let mut forged = s.proof(&device_key()).await;
    forged["public_key"] = s.proof(&own).await["public_key"].clone();
    assert_eq!(sign_in(forged).await.status, 400);
    // A changed signature, a malformed key, and a challenge that expired.
    let mut bent = s.proof(&own).await;
    let mut sig = data_encoding::BASE64URL_NOPAD.decode(bent["signature"].as_str().unwrap().as_bytes()).unwrap();
    sig[10] ^= 1;
    bent["signature"] = data_encoding::BASE64URL_NOPAD.encode(&sig).into();
    assert_eq!(sign_in(bent).await.status, 400);
    let mut bad_key = s.proof(&own).await;
    bad_key["public_key"] = "AAAA".into();
    assert_eq!(sign_in(bad_key).await.status, 400);
    let late = s.proof(&own).await;
    s.clock.advance(kluis_server::accounts::devices::CHALLENGE_LIFETIME_MS);
    assert_eq!(sign_in(late).await.status, 400);
    // Unknown fields are refused.
    let mut extra = s.proof(&own).await;
    extra["alg"] = "none".into();
    assert_eq!(sign_in(extra).await.status, 400);
}

/// Wycheproof's ECDSA P-256/SHA-256 verification vectors in IEEE P1363 form (what WebCrypto
/// signs): every valid signature verifies and every invalid one is refused.
#[test]
fn device_signatures_are_checked_as_wycheproof_expects() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("vectors/wycheproof-ecdsa-p256-sha256-p1363.json")).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in v["testGroups"].as_array().unwrap() {
        let raw = hex::decode(group["publicKey"]["uncompressed"].as_str().unwrap()).unwrap();
        let text = data_encoding::BASE64URL_NOPAD.encode(&raw);
        let (_, key) = parse_device_key(&text).unwrap();
        for t in group["tests"].as_array().unwrap() {
            let msg = hex::decode(t["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(t["sig"].as_str().unwrap()).unwrap();
            let ok = verify_signature(&key, &msg, &sig);
            match t["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "tcId {} should verify: {}", t["tcId"], t["comment"]);
                    valid += 1;
                }
                "invalid" => {
                    assert!(!ok, "tcId {} should be refused: {}", t["tcId"], t["comment"]);
                    invalid += 1;
                }
                other => panic!("tcId {}: result {other}", t["tcId"]),
            }
        }
    }
    assert_eq!((valid, invalid), (169, 83));
    // What a device signs starts with the label, then a zero byte.
    assert!(signed_message(b"c").starts_with(b"kluis/v1/device-proof\0"));
}
