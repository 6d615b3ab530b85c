//! Mail: a real SMTP conversation with a local sink. In HIPAA mode every sign-in is announced,
//! and the announcement's link ends that session, on a POST only, once, until the session would
//! have ended anyway. A second-factor reset is announced. No message holds anything of a record
//! (canary strings in an encrypted vault), and the outbox writes RFC 5322 files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;
#[path = "support/sms.rs"]
mod sms;
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
    let res = s.second_step(&ticket, &code).await;
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
    let cap = kluis_server::accounts::model::HIPAA_MAX_IDLE_MINUTES;
    policy["idle_minutes"] = (cap + 1).into();
    assert_eq!(set(policy.clone()).await.status, 400, "one minute over the cap");
    policy["idle_minutes"] = cap.into();
    assert_eq!(set(policy.clone()).await.status, 200, "the cap itself");
    assert_eq!(cap, 30);
    policy["idle_minutes"] = 15.into();
    assert_eq!(set(policy).await.status, 200);
    assert_eq!(s.call(Call::get("/api/me").session(&anna)).await.json()["second_factor_required"], true);

    // A sign-in: the notice arrives over SMTP, to the account's address.
    const NOTICE: &str = "New sign-in to your kluis account";
    let session = sign_in(&s, "anna", &secret).await;
    let mail = sink.wait_for_subject(NOTICE, 1).await.pop().unwrap();
    assert_eq!(mail.to, ["<someone@example.org>"]);
    assert!(mail.data.contains("anna") && mail.data.contains("Address: 10."), "{}", mail.data);
    // Mandatory in HIPAA mode: no unsubscribe link.
    assert!(!mail.data.contains("List-Unsubscribe"), "{}", mail.data);
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
    let token = link_token(&sink.wait_for_subject(NOTICE, 2).await[1].data);
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
    sink.wait_for_subject("Your kluis two-step sign-in was reset", 1).await;
    // Turning the second factor on was announced to each of them.
    assert_eq!(sink.wait_for_subject("Two-step sign-in is on for your kluis account", 2).await.len(), 2);
    let all = sink.received.lock().unwrap().clone();

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
    let mail =
        Mail { to: "anna@example.org".into(), subject: "Hello".into(), body: "A line.".into(), unsubscribe: None };
    mailer.send(&mail).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    for header in ["From: kluis <kluis@kluis.test>", "To: anna@example.org", "Subject: Hello", "Date: "] {
        assert!(text.contains(header), "{header} missing in {text}");
    }
    assert!(text.contains("A line."));
    let plain = text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    assert!(plain.contains("https://kluis.test/#preferences"), "every message links the preferences: {text}");
    assert!(!text.contains("List-Unsubscribe"), "a security notice has no unsubscribe header");
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
    const RESET: &str = "Reset your kluis password";
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = TestServer::with_mail(Mailer::smtp(&url, "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap());
    let anna = s.practice("P", "anna").await;
    let secret = totp(&s, &anna).await;
    sink.wait_for(1).await;
    let ask = |who: &str| s.call(Call::post("/api/password-reset").json(serde_json::json!({ "username": who })));
    // An unknown username gets the same answer, and no mail.
    assert_eq!(ask("nobody").await.status, 202);
    assert_eq!(ask("anna").await.status, 202);
    let mail = sink.wait_for_subject(RESET, 1).await.pop().unwrap();
    assert_eq!(sink.received.lock().unwrap().len(), 2, "no mail for an unknown username");
    let token_of = |m: &smtp::Received| {
        let text = m.data.replace("=\n", "").replace("=3D", "=");
        let at = text.find("https://kluis.test/act.html#reset=").unwrap() + "https://kluis.test/act.html#reset=".len();
        text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect::<String>()
    };
    let token = token_of(&mail);
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
    // From a browser the account does not trust, the new password and a right code still leave
    // that browser to be confirmed: a reset link bypasses neither step.
    let stranger = server::device_key();
    let res = s.sign_in_from("anna", new_password, Some(&stranger)).await;
    assert_eq!(res.json(), serde_json::json!({"second_step": "totp"}));
    let ticket = res.set_cookie("__Host-kluis-ticket").unwrap();
    s.clock.advance(TOTP_STEP_SECS * 1000);
    let code = code_at(&secret, s.clock.now() / 1000).unwrap();
    let res = s.second_step(&ticket, &code).await;
    assert_eq!(res.json()["second_step"], "device", "{}", String::from_utf8_lossy(&res.body));
    assert!(res.set_cookie("__Host-kluis-session").is_none(), "no session before the browser is confirmed");
    sink.wait_for_subject("Your kluis password was changed", 1).await;

    // Asking again never spoils a link sent before (a stranger who keeps asking cannot cancel
    // the owner's): up to three live links, and asking beyond that sends nothing.
    // (One at a time: mail goes out in the background, so two could arrive in either order.)
    for n in 2..=1 + kluis_server::accounts::MAX_LIVE_RESETS {
        assert_eq!(ask("anna").await.status, 202);
        sink.wait_for_subject(RESET, n).await;
    }
    assert_eq!(ask("anna").await.status, 202);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let links = sink.wait_for_subject(RESET, 1 + kluis_server::accounts::MAX_LIVE_RESETS).await;
    assert_eq!(links.len(), 1 + kluis_server::accounts::MAX_LIVE_RESETS, "no fourth live link");
    let (first, last) = (token_of(&links[1]), token_of(&links[3]));
    // Using one spends the others.
    let newest_password = "weer een ander nieuw wachtwoord";
    assert_eq!(complete(&first, newest_password).await.status, 204);
    assert_eq!(complete(&last, "en nog een ander wachtwoord hier").await.status, 400, "spent with the first");
    // A link lapses after an hour.
    assert_eq!(ask("anna").await.status, 202);
    let lapsed =
        token_of(&sink.wait_for_subject(RESET, 2 + kluis_server::accounts::MAX_LIVE_RESETS).await.pop().unwrap());
    s.clock.advance(60 * 60 * 1000);
    assert_eq!(complete(&lapsed, "en nog een ander wachtwoord hier").await.status, 400, "lapsed");
    let session = sign_in_with(&s, "anna", newest_password, &secret).await;
    let events = s.call(Call::get("/api/practice/events").session(&session)).await.json();
    assert_eq!(events[0]["kind"], "password-reset");
}

#[test]
fn a_relay_elsewhere_is_spoken_to_over_tls_only() {
    let from = "kluis <kluis@kluis.test>";
    let url = "https://kluis.test/";
    assert!(Mailer::smtp("smtp://relay.example.org:25", from, url).is_err(), "no TLS");
    assert!(Mailer::smtp("smtp://relay.example.org:587?tls=opportunistic", from, url).is_err(), "strippable");
    assert!(Mailer::smtp("smtp://relay.example.org:587?tls=required", from, url).is_ok());
    assert!(Mailer::smtp("smtps://user:pw@relay.example.org", from, url).is_ok());
    assert!(Mailer::smtp("smtp://127.0.0.1:2525", from, url).is_ok(), "this machine");
    assert!(Mailer::smtp("http://relay.example.org", from, url).is_err());
}

/// The text of a message without its quoted-printable soft line breaks.
fn plain(data: &str) -> String {
    data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

fn code_in(data: &str) -> String {
    let text = plain(data);
    let at = text.find("confirm it: ").unwrap() + "confirm it: ".len();
    text[at..at + 6].to_owned()
}

#[tokio::test]
async fn optional_notices_carry_a_one_click_unsubscribe_that_a_get_never_triggers() {
    const CODE: &str = "Your kluis code to confirm a new browser";
    const NEW: &str = "A new browser for your kluis account";
    let sink = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = TestServer::with_mail(Mailer::smtp(&url, "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap());
    let anna = s.practice("P", "anna").await;
    canary_vault(&s, &anna).await;
    let confirm = |ticket: String, code: String| {
        s.call(
            Call::post("/api/sign-in/device")
                .cookie(&format!("__Host-kluis-ticket={ticket}"))
                .json(serde_json::json!({ "code": code })),
        )
    };
    // A new browser: the code is a security message (no unsubscribe); the notice that a browser
    // was added is optional, and says how to stop it.
    let ticket =
        s.sign_in_from("anna", PASSWORD, Some(&server::device_key())).await.set_cookie("__Host-kluis-ticket").unwrap();
    let code_mail = sink.wait_for_subject(CODE, 1).await.pop().unwrap();
    assert!(!code_mail.data.contains("List-Unsubscribe"), "{}", code_mail.data);
    assert_eq!(confirm(ticket, code_in(&code_mail.data)).await.status, 200);
    let notice = plain(&sink.wait_for_subject(NEW, 1).await.pop().unwrap().data);
    assert!(notice.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{notice}");
    let at = notice.find("List-Unsubscribe: <https://kluis.test/api/unsubscribe?token=").unwrap()
        + "List-Unsubscribe: <https://kluis.test/api/unsubscribe?token=".len();
    let token: String = notice[at..].chars().take_while(|c| *c != '>').collect();
    assert_eq!(token.len(), 22);
    assert!(
        notice.contains(&format!("https://kluis.test/api/unsubscribe?token={token}")),
        "the link is in the text too"
    );
    // Opening the link (a GET, as a mail scanner does) changes nothing: it leads to the page.
    let get = s.call(Call::bare(Method::GET, &format!("/api/unsubscribe?token={token}"))).await;
    assert_eq!(get.status, 303);
    assert_eq!(get.headers["location"], format!("/act.html#unsubscribe={token}").as_str());
    let prefs = || s.call(Call::get("/api/account/notifications").session(&anna));
    assert_eq!(prefs().await.json()["new_device"], true);
    // The mail provider's one-click POST (no Origin, a form body) turns that kind off, once.
    let one_click = || {
        s.call(
            Call::bare(Method::POST, &format!("/api/unsubscribe?token={token}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .raw(b"List-Unsubscribe=One-Click".to_vec()),
        )
    };
    assert_eq!(one_click().await.status, 204);
    assert_eq!(prefs().await.json(), serde_json::json!({"new_device": false, "every_sign_in": false}));
    assert_eq!(one_click().await.status, 400, "once");
    // The next new browser still gets its code, but no notice.
    let ticket =
        s.sign_in_from("anna", PASSWORD, Some(&server::device_key())).await.set_cookie("__Host-kluis-ticket").unwrap();
    let code_mail = sink.wait_for_subject(CODE, 2).await.pop().unwrap();
    assert_eq!(confirm(ticket, code_in(&code_mail.data)).await.status, 200);
    // A user may ask for a notice of every sign-in: optional too, with its own link.
    let set = Call::new(Method::PUT, "/api/account/notifications")
        .session(&anna)
        .json(serde_json::json!({"new_device": true, "every_sign_in": true}));
    assert_eq!(s.call(set).await.status, 200);
    assert_eq!(s.sign_in("anna", PASSWORD).await.status, 200);
    let signed = plain(&sink.wait_for_subject("New sign-in to your kluis account", 1).await.pop().unwrap().data);
    assert!(signed.contains("List-Unsubscribe: <https://kluis.test/api/unsubscribe?token="), "{signed}");
    assert!(signed.contains("act.html#not-me="), "{signed}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(sink.wait_for_subject(NEW, 1).await.len(), 1, "the turned-off kind stayed off");
    // Nothing of the vault, and never the raw User-Agent, in any message.
    for m in sink.received.lock().unwrap().iter() {
        for canary in CANARIES {
            assert!(!m.data.contains(canary), "{canary} in {}", m.data);
        }
        assert!(plain(&m.data).contains("https://kluis.test/#preferences"), "{}", m.data);
    }
}

#[tokio::test]
async fn the_code_for_a_new_browser_also_goes_by_sms_through_the_gateway() {
    let gateway = sms::GatewaySink::start().await;
    let s = TestServer::with_sms(kluis_server::sms::SmsGateway::new(&gateway.url, Some("gw-token".into())).unwrap());
    let e = s.state.accounts.add_practice("P", "anna").unwrap();
    let key = server::device_key();
    let proof = s.proof(&key).await;
    let enrolled = s
        .call(Call::post("/api/enroll").json(serde_json::json!({
            "code": e.code, "password": PASSWORD, "email": "anna@example.org", "mobile": "+31 6 1234 5678", "device": proof
        })))
        .await;
    assert_eq!(enrolled.status, 201);
    let res = s.sign_in_from("anna", PASSWORD, Some(&server::device_key())).await;
    assert_eq!(res.json()["channels"], serde_json::json!(["e-mail", "sms", "device"]));
    let ticket = res.set_cookie("__Host-kluis-ticket").unwrap();
    let sms = gateway.wait_for(1).await.pop().unwrap();
    assert_eq!(sms.authorization.as_deref(), Some("Bearer gw-token"));
    assert_eq!(sms.to, "+31612345678");
    assert!(sms.text.chars().count() <= kluis_server::sms::MAX_SMS_CHARS);
    assert!(!sms.text.contains("anna"), "no personal data in an SMS: {}", sms.text);
    let code: String = sms.text.chars().filter(char::is_ascii_digit).take(6).collect();
    let confirm = Call::post("/api/sign-in/device")
        .cookie(&format!("__Host-kluis-ticket={ticket}"))
        .json(serde_json::json!({ "code": code }));
    assert_eq!(s.call(confirm).await.status, 200);
}

/// Kills the process it holds when dropped (also when a test fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Mail reaches an SMTP server that is not ours, in a process of its own: aiosmtpd (Debian's
/// python3-aiosmtpd, installed by `scripts/setup.sh --wasm`), which files what arrives, with
/// the envelope it was given, in a Maildir.
#[tokio::test]
async fn a_notice_reaches_an_independent_smtp_server_in_its_own_process() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _sink = Child(
        std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (scripts/setup.sh --wasm installs it)"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "aiosmtpd did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let url = format!("smtp://127.0.0.1:{port}");
    let s = TestServer::with_mail(Mailer::smtp(&url, "kluis <kluis@kluis.test>", "https://kluis.test/").unwrap());
    let _anna = s.practice("P", "anna").await;
    let ask = Call::post("/api/password-reset").json(serde_json::json!({ "username": "anna" }));
    assert_eq!(s.call(ask).await.status, 202);
    let message = loop {
        let found: Vec<_> = std::fs::read_dir(maildir.join("new"))
            .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect())
            .unwrap_or_default();
        if let Some(m) = found.into_iter().find(|m| m.contains("Reset your kluis password")) {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no message reached aiosmtpd's Maildir");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // aiosmtpd records the envelope it was given beside the message's own headers.
    assert!(message.contains("X-MailFrom: kluis@kluis.test"), "{message}");
    assert!(message.contains("X-RcptTo: someone@example.org"), "{message}");
    assert!(message.contains("To: someone@example.org"), "{message}");
    assert!(message.contains("Subject: Reset your kluis password"), "{message}");
}
