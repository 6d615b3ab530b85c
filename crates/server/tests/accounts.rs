//! Accounts over the API: enrollment, sign-in and sign-out, cookies, sessions and their
//! timeouts on a manual clock, throttling and lockout, the sign-in log, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;

use std::net::IpAddr;

use axum::http::{Method, StatusCode};
use kluis_server::accounts::model::{Role, SignInResult};
use kluis_server::accounts::throttle::{FREE_FAILURES, LOCK_AFTER, MAX_DELAY_MS};
use serde_json::json;
use server::{Call, PASSWORD, TestServer};

const SESSION: &str = "__Host-kluis-session";
const MINUTE: u64 = 60 * 1000;

#[tokio::test]
async fn enroll_sign_in_sign_out() {
    let s = TestServer::new();
    let e = s.state.accounts.add_practice("Praktijk De Vries", "Anna").unwrap();
    // The browser's device key: enrollment makes it a trusted device of the account.
    let key = server::device_key();
    let proof = s.proof(&key).await;
    let enrolled = s
        .call(
            Call::post("/api/enroll")
                .json(json!({"code": e.code, "password": PASSWORD, "email": "anna@example.org", "device": proof})),
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::CREATED);
    let me = enrolled.json();
    assert_eq!(me["username"], "Anna");
    assert_eq!(me["roles"], json!(["practitioner", "admin"]));
    assert_eq!(me["practice"], "Praktijk De Vries");

    // The cookie is a __Host- cookie: Secure, HttpOnly, SameSite=Strict, path /, no Domain.
    let set = enrolled.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set.starts_with("__Host-kluis-session="));
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.split("; ").any(|a| a == attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain"));
    let first = enrolled.set_cookie(SESSION).unwrap();
    assert_eq!(first.len(), 22, "128-bit token, base64url");

    // Sign-in from that browser: any case of the username, a new token each time. A session
    // cookie the browser still carried is ended: a sign-in always starts afresh.
    let proof = s.proof(&key).await;
    let res = s
        .call(
            Call::post("/api/sign-in")
                .session(&first)
                .json(json!({"username": "ANNA", "password": PASSWORD, "device": proof})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let second = res.set_cookie(SESSION).unwrap();
    assert_ne!(first, second);
    assert_eq!(s.call(Call::get("/api/me").session(&second)).await.json()["username"], "Anna");
    assert_eq!(s.call(Call::get("/api/me").session(&first)).await.status, StatusCode::UNAUTHORIZED);
    let first = s.sign_in_from("anna", PASSWORD, Some(&key)).await.set_cookie(SESSION).unwrap();

    // Sign-out ends that session only and clears cache and cookies, not storage.
    let out = s.call(Call::post("/api/sign-out").session(&second)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(out.headers["clear-site-data"], "\"cache\", \"cookies\"");
    assert!(out.headers.get_all("set-cookie").iter().any(|c| c.to_str().unwrap().contains("Max-Age=0")));
    assert_eq!(s.call(Call::get("/api/me").session(&second)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.call(Call::get("/api/me").session(&first)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn codes_work_once_and_expire_and_a_refused_password_spends_nothing() {
    let s = TestServer::new();
    let e = s.state.accounts.add_practice("P", "anna").unwrap();
    let enroll = |code: &str, password: &str| {
        Call::post("/api/enroll").json(json!({"code": code, "password": password, "email": "anna@example.org"}))
    };
    // A common password is refused with a reason, and the code still works afterwards.
    let weak = s.call(enroll(&e.code, "password1234567")).await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.json()["detail"].as_str().unwrap().contains("choose another"));
    let short = s.call(enroll(&e.code, "kort wachtwrd")).await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.json()["detail"].as_str().unwrap().contains("at least 15"));
    // Codes are accepted in any case and grouping.
    let retyped = e.code.to_lowercase().replace('-', " ");
    assert_eq!(s.call(enroll(&retyped, PASSWORD)).await.status, StatusCode::CREATED);
    // Used once: refused, with the same answer as an unknown code.
    let again = s.call(enroll(&e.code, PASSWORD)).await;
    let unknown = s.call(enroll("ABCD-EFGH-JKMN-PQRS-TVWX", PASSWORD)).await;
    assert_eq!((again.status, again.json()["detail"].clone()), (unknown.status, unknown.json()["detail"].clone()));
    // Expired after 72 hours.
    let late = s.state.accounts.invite("P", "bram", [Role::Practitioner].into()).unwrap();
    s.clock.advance(72 * 60 * MINUTE);
    assert_eq!(s.call(enroll(&late.code, PASSWORD)).await.status, StatusCode::BAD_REQUEST);
    // A reissued code replaces the old one.
    let fresh = s.state.accounts.reissue("bram").unwrap();
    assert_eq!(s.call(enroll(&fresh.code, PASSWORD)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same_and_are_logged_without_the_name() {
    let s = TestServer::new();
    s.practice("P", "anna").await;
    let wrong = s.sign_in("anna", "not the password at all").await;
    let unknown = s.sign_in("my secret password typed here", PASSWORD).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    let ok = s.sign_in("anna", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::OK);

    let anna = s.state.accounts.user_by_name("anna").unwrap().unwrap();
    let log = s.state.accounts.sign_ins(anna.practice.as_ref(), 10).unwrap();
    let results: Vec<SignInResult> = log.iter().map(|e| e.result).collect();
    assert_eq!(results, [SignInResult::Success, SignInResult::Failed]);
    assert!(log.iter().all(|e| e.user == Some(anna.id) && e.ip.starts_with("10.")));
    let unmatched = s.state.accounts.sign_ins(None, 10).unwrap();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0].user, None);
    // Nothing anywhere in the accounts database holds the unmatched username.
    s.state.accounts.flush().await.unwrap();
    for entry in walk(&s.dir.path().join("accounts")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(9).any(|w| w == b"my secret"), "{} holds the typed username", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn back_off_then_lockout_that_never_locks_out_the_owners_browser() {
    let s = TestServer::cheap();
    s.practice("P", "anna").await;
    // The owner's own browser is the device she enrolled with: its key is hers alone. The
    // attacker's browsers prove no key, or one of their own.
    let first = s.sign_in("anna", PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.json()["username"].is_string(), "a trusted device signs in at once");
    let stranger = server::device_key();
    let attacker = |password: &str| Call::post("/api/sign-in").json(json!({"username": "anna", "password": password}));
    let ghost = |password: &str| Call::post("/api/sign-in").json(json!({"username": "ghost", "password": password}));
    let mut failures = 0;
    while failures < LOCK_AFTER {
        let res = s.call(attacker("wrong guess")).await;
        let unmatched = s.call(ghost("wrong guess")).await;
        // A username that does not exist gets exactly the same treatment.
        assert_eq!(res.status, unmatched.status, "after {failures} failures");
        match res.status {
            StatusCode::UNAUTHORIZED => failures += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(failures >= FREE_FAILURES, "throttled after only {failures}");
                let wait: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!(wait * 1000 <= MAX_DELAY_MS);
                // Even the right password is refused while the back-off lasts.
                assert_eq!(s.call(attacker(PASSWORD)).await.status, StatusCode::TOO_MANY_REQUESTS);
                s.clock.advance(wait * 1000);
            }
            other => panic!("{other}"),
        }
    }
    s.clock.advance(MAX_DELAY_MS);
    // The 101st attempt from an unknown browser is refused, even with the right password ...
    let locked = s.call(attacker(PASSWORD)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.json()["detail"].as_str().unwrap().contains("browser you have used before"));
    assert_eq!(s.call(ghost(PASSWORD)).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(s.sign_in_from("anna", PASSWORD, Some(&stranger)).await.status, StatusCode::TOO_MANY_REQUESTS);
    // ... but the owner's own device signs in at once. That clears the count of her devices,
    // not the stranger's: their guesses stay bounded whatever she does.
    let owner = s.sign_in("anna", PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", String::from_utf8_lossy(&owner.body));
    assert!(owner.json()["username"].is_string());
    assert_eq!(s.call(attacker(PASSWORD)).await.status, StatusCode::TOO_MANY_REQUESTS);
    let user = s.state.accounts.user_by_name("anna").unwrap().unwrap();
    assert_eq!((user.failures.known, user.failures.unknown), (0, LOCK_AFTER));
    // The operator clears the lock.
    s.state.accounts.unlock("anna").unwrap();
    assert_eq!(s.call(attacker(PASSWORD)).await.json()["second_step"], "device");
    let locked_logged = s.state.accounts.sign_ins(user.practice.as_ref(), 1000).unwrap();
    assert!(locked_logged.iter().any(|e| e.result == SignInResult::Locked));
}

#[tokio::test]
async fn one_address_is_throttled() {
    // Cheap hashes, so that the bucket's refill (one every two seconds) hardly plays a part.
    let s = TestServer::cheap();
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    let mut statuses = Vec::new();
    for n in 0..15 {
        let c = Call::post("/api/sign-in").json(json!({"username": format!("u{n}"), "password": "x"})).ip(ip);
        statuses.push(s.call(c).await.status);
    }
    assert!(statuses[..10].iter().all(|st| *st == StatusCode::UNAUTHORIZED), "{statuses:?}");
    // The bucket refills one attempt every two seconds; on a loaded machine one may slip in.
    let refused = statuses[10..].iter().filter(|st| **st == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(refused >= 4, "{statuses:?}");
    // Another address is not affected.
    let other = Call::post("/api/sign-in").json(json!({"username": "u", "password": "x"}));
    assert_eq!(s.call(other).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_timeout_counts_only_user_activity_and_the_absolute_timeout_holds() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    let busy = s.sign_in("anna", PASSWORD).await.set_cookie(SESSION).unwrap();
    let me = |t: &str| Call::get("/api/me").session(t);
    let active = |t: &str| Call::get("/api/me").session(t).header("x-kluis-activity", "user");
    // Background requests keep answering but do not extend the idle timeout ...
    s.clock.advance(10 * MINUTE);
    assert_eq!(s.call(me(&token)).await.status, StatusCode::OK);
    assert_eq!(s.call(active(&busy)).await.status, StatusCode::OK);
    s.clock.advance(6 * MINUTE);
    assert_eq!(s.call(me(&token)).await.status, StatusCode::UNAUTHORIZED, "idle 16 minutes");
    // ... user activity does.
    assert_eq!(s.call(active(&busy)).await.status, StatusCode::OK);
    // However active, a session ends 12 hours after sign-in.
    for _ in 0..(12 * 6 - 2) {
        s.clock.advance(10 * MINUTE);
        assert_eq!(s.call(active(&busy)).await.status, StatusCode::OK);
    }
    s.clock.advance(10 * MINUTE);
    assert_eq!(s.call(active(&busy)).await.status, StatusCode::UNAUTHORIZED, "12 hours");
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions() {
    let s = TestServer::new();
    let one = s.practice("P", "anna").await;
    let two = s.sign_in("anna", PASSWORD).await.set_cookie(SESSION).unwrap();
    let bram = s.member("P", "bram", &[Role::Practitioner]).await;
    let list = s.call(Call::get("/api/sessions").session(&one)).await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|x| x["current"] == true).count(), 1);
    let other_id = list.iter().find(|x| x["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    // Bram cannot end Anna's session: it is "not found" for him.
    let res = s.call(Call::new(Method::DELETE, &format!("/api/sessions/{other_id}")).session(&bram)).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(s.call(Call::get("/api/me").session(&two)).await.status, StatusCode::OK);
    let res = s.call(Call::new(Method::DELETE, &format!("/api/sessions/{other_id}")).session(&one)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(s.call(Call::get("/api/me").session(&two)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.call(Call::get("/api/me").session(&one)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn state_changes_need_this_origin() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    for origin in [None, Some("https://evil.example"), Some("http://kluis.test"), Some("null")] {
        // Built by hand: the test client would add the right Origin.
        let req = axum::http::Request::post("/api/sign-out")
            .header("host", server::HOST)
            .header("cookie", format!("{SESSION}={token}"));
        let req = match origin {
            Some(o) => req.header("origin", o),
            None => req,
        };
        let res = s.raw(req).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{origin:?}");
    }
    assert_eq!(s.call(Call::get("/api/me").session(&token)).await.status, StatusCode::OK, "still signed in");
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let s = TestServer::new();
    let token = s.practice("P", "anna").await;
    let cases: Vec<(Call, StatusCode)> = vec![
        (
            Call::post("/api/sign-in").raw(b"{\"username\":".to_vec()).header("content-type", "application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post("/api/sign-in").json(json!({"username": "a", "password": "b", "extra": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (Call::post("/api/sign-in").json(json!({"username": 5, "password": "b"})), StatusCode::BAD_REQUEST),
        (
            Call::post("/api/sign-in")
                .raw(b"username=a&password=b".to_vec())
                .header("content-type", "application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Call::post("/api/sign-in").json(json!({"username": "a", "password": "x".repeat(20_000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Call::post("/api/practice/invitations")
                .session(&token)
                .json(json!({"username": "new", "roles": ["wizard"]})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post("/api/practice/invitations")
                .session(&token)
                .json(json!({"username": "new user", "roles": ["practitioner"]})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post("/api/practice/invitations")
                .session(&token)
                .json(json!({"username": "sam", "roles": ["support"]})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Call::post("/api/vaults/notes").session(&token).raw(vec![0xa0]).header("content-type", "text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (Call::post("/api/vaults/notes").session(&token).cbor(vec![0xff; 10]), StatusCode::BAD_REQUEST),
        (Call::post("/api/vaults/notes").session(&token).cbor(vec![0; 5000]), StatusCode::PAYLOAD_TOO_LARGE),
        (Call::post("/api/vaults/passwords").session(&token).cbor(vec![0xa0]), StatusCode::NOT_FOUND),
        (Call::get("/api/me").cookie("__Host-kluis-session=not-a-token"), StatusCode::UNAUTHORIZED),
        (Call::get("/api/me").cookie(&format!("{SESSION}={token}; {SESSION}={token}")), StatusCode::UNAUTHORIZED),
        (Call::get("/api/me").cookie("garbage;;;=;"), StatusCode::UNAUTHORIZED),
        (Call::get("/api/vaults/..%2f..%2fetc/head").session(&token), StatusCode::NOT_FOUND),
        (Call::get("/api/vaults/00112233445566778899AABBCCDDEEFF/head").session(&token), StatusCode::NOT_FOUND),
        (Call::get("/api/vaults/0011/sync?since=-1").session(&token), StatusCode::BAD_REQUEST),
        (Call::get("/api/vaults/0011/sync?since=1&x=2").session(&token), StatusCode::BAD_REQUEST),
        (Call::new(Method::DELETE, "/api/sessions/..%2f").session(&token), StatusCode::NOT_FOUND),
        (Call::get("/api/../api/me").session(&token), StatusCode::NOT_FOUND),
    ];
    for (i, (call, want)) in cases.into_iter().enumerate() {
        let res = s.call(call).await;
        assert_eq!(res.status, want, "case {i}: {}", String::from_utf8_lossy(&res.body));
        assert_eq!(res.headers["content-type"], "application/problem+json", "case {i}");
        let problem = res.json();
        assert_eq!(problem["status"], want.as_u16(), "case {i}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "case {i}");
    }
    // Nothing was created: one user, no vault, no invitation.
    let anna = s.state.accounts.user_by_name("anna").unwrap().unwrap();
    assert_eq!(s.state.accounts.practice_users(&anna.practice.unwrap()).unwrap().len(), 1);
    assert_eq!(s.state.notes.vault_of(&anna.id.0).unwrap(), None);
}

#[tokio::test]
async fn practices_see_nothing_of_each_other() {
    let s = TestServer::new();
    let p = s.practice("P", "anna").await;
    let q = s.practice("Q", "olga").await;
    s.member("P", "bram", &[Role::Practitioner]).await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(s.call(Call::get("/api/practice/users").session(&p)).await.json()), ["anna", "bram"]);
    assert_eq!(names(s.call(Call::get("/api/practice/users").session(&q)).await.json()), ["olga"]);
    // An admin invites into their own practice only.
    let res = s
        .call(
            Call::post("/api/practice/invitations")
                .session(&q)
                .json(json!({"username": "quinten", "roles": ["practitioner"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    assert_eq!(res.json()["practice"], "Q");
    // Usernames are unique across the server, in any case.
    let res = s
        .call(
            Call::post("/api/practice/invitations")
                .session(&q)
                .json(json!({"username": "BRAM", "roles": ["practitioner"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_sign_in_rehashes_a_password_stored_with_older_parameters() {
    use kluis_server::accounts::password::{FLOOR_M_KIB, FLOOR_T, HashParams, Hasher, Password, params_of};
    use kluis_server::accounts::{Accounts, Attempt, Outcome};
    use kluis_server::clock::Clock;
    let dir = tempfile::tempdir().unwrap();
    let old = HashParams { m_kib: FLOOR_M_KIB, t: FLOOR_T, p: 1 };
    {
        let accounts = Accounts::open_with(dir.path(), Clock::System, Hasher::new(old, 1)).unwrap();
        let e = accounts.add_practice("P", "anna").unwrap();
        accounts.enroll(&e.code, Password::new(PASSWORD), "anna@example.org", None).await.unwrap();
        let stored = accounts.user_by_name("anna").unwrap().unwrap().password.unwrap();
        assert_eq!(params_of(&stored), Some(old));
    }
    // The parameters rose (a new release): the next sign-in stores a new hash. (sled releases
    // its lock on the directory from a background thread, a moment after the drop.)
    let mut reopened = Accounts::open(dir.path(), Clock::System);
    for _ in 0..100 {
        if reopened.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        reopened = Accounts::open(dir.path(), Clock::System);
    }
    let accounts = reopened.unwrap();
    let attempt = Attempt {
        username: "anna",
        password: Password::new(PASSWORD),
        ip: "10.9.9.9".parse().unwrap(),
        user_agent: "t",
        device: None,
        old_session: None,
    };
    // (A browser without a device key is asked to confirm itself, but the password was right.)
    assert!(matches!(accounts.sign_in(attempt).await.unwrap(), Outcome::ConfirmDevice { .. }));
    let stored = accounts.user_by_name("anna").unwrap().unwrap().password.unwrap();
    assert_eq!(params_of(&stored), Some(HashParams::CURRENT));
    assert!(stored.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{stored}");
}
