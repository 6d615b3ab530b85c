//! Temporary support access over the real router: support staff (with their second factor)
//! see an account only through a code its user made, only what the code allows, for as long
//! as it lives; the user sees every step live and ends the session at once; codes work once,
//! expire, and guessing them is throttled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;

use axum::http::{Method, StatusCode};
use kluis_server::accounts::second_factor::code_at;
use server::{Call, PASSWORD, TestServer};

/// Every scope a code may grant (FORMAT.md §9.2), in the order of the API's list.
const SCOPES: [&str; 7] = [
    "view-settings",
    "view-devices",
    "view-sign-ins",
    "view-second-factor",
    "view-storage",
    "resend-invitation",
    "revoke-device",
];

/// Support staff with their second factor set up in the session returned.
async fn staff(s: &TestServer, name: &str) -> String {
    let token = s.support(name).await;
    let secret =
        s.call(Call::post("/api/account/totp").session(&token)).await.json()["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, s.clock.now() / 1000).unwrap();
    let res =
        s.call(Call::post("/api/account/totp/confirm").session(&token).json(serde_json::json!({ "code": code }))).await;
    assert_eq!(res.status, 200);
    token
}

async fn make_code(s: &TestServer, user: &str, body: serde_json::Value) -> server::Res {
    s.call(Call::post("/api/account/support").session(user).json(body)).await
}

async fn redeem(s: &TestServer, staff: &str, code: &str) -> server::Res {
    s.call(Call::post("/api/support/redeem").session(staff).json(serde_json::json!({ "code": code }))).await
}

#[tokio::test]
async fn support_sees_only_what_the_code_allows_and_the_user_watches_and_ends_it() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let sam = staff(&s, "sam").await;
    let rik = s.support("rik").await; // no second factor
    let laptop = s.sign_in_new_browser("anna", Some(&server::device_key())).await;
    let res = make_code(
        &s,
        &anna,
        serde_json::json!({"scopes": ["view-settings", "view-devices", "view-sign-ins", "revoke-device"]}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let made = res.json();
    let code = made["code"].as_str().unwrap().to_owned();
    let id = made["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made["grant"]["state"], "waiting");
    assert_eq!(made["grant"]["expires_ms"], s.clock.now() + 60 * 60 * 1000, "one hour by default");
    // Before it is redeemed, support reaches nothing of the account.
    let view = |who: &str, what: &str| s.call(Call::get(&format!("/api/support/sessions/{id}/{what}")).session(who));
    assert_eq!(view(&sam, "settings").await.status, 404);
    // Staff without their second factor cannot redeem; a user who is no support staff neither.
    assert_eq!(redeem(&s, &rik, &code).await.status, 403);
    assert_eq!(redeem(&s, &anna, &code).await.status, 403);
    // Redeemed (typed in lower case, with spaces), once.
    let res = redeem(&s, &sam, &code.to_lowercase().replace('-', " ")).await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!((res.json()["state"].clone(), res.json()["username"].clone()), ("active".into(), "anna".into()));
    assert_eq!(redeem(&s, &sam, &code).await.status, 400, "once");
    assert_eq!(s.call(Call::get("/api/support/sessions").session(&sam)).await.json().as_array().unwrap().len(), 1);

    // The views the code allows, and no more.
    let settings = view(&sam, "settings").await;
    assert_eq!(settings.status, 200);
    assert_eq!(settings.json()["email"], "someone@example.org");
    let devices = view(&sam, "devices").await.json();
    assert_eq!(devices.as_array().unwrap().len(), 2);
    assert!(devices[0].get("public_key").is_none() && devices[0].get("name").is_some(), "{devices}");
    let history = view(&sam, "sign-ins").await.json();
    assert!(!history.as_array().unwrap().is_empty());
    assert!(history.as_array().unwrap().iter().all(|e| e.get("ip").is_none()), "no IP addresses: {history}");
    for refused in ["second-factor", "storage"] {
        assert_eq!(view(&sam, refused).await.status, 403, "{refused} was not allowed");
    }
    let resend = Call::post(&format!("/api/support/sessions/{id}/invitations/bram")).session(&sam);
    assert_eq!(s.call(resend).await.status, 403);
    // The action it allows: remove a device, whose sessions end.
    let laptop_id = s.current_device_id(&laptop).await;
    let remove =
        |d: &str| s.call(Call::new(Method::DELETE, &format!("/api/support/sessions/{id}/devices/{d}")).session(&sam));
    assert_eq!(remove(&laptop_id).await.status, 204);
    assert_eq!(s.call(Call::get("/api/me").session(&laptop)).await.status, 401);
    // Nothing else, ever: the staff's own session reaches no vault, approves nothing and
    // changes nothing of anna's (those endpoints act on the staff's own account).
    assert_eq!(s.call(Call::post("/api/vaults/notes").session(&sam).cbor(vec![0xa0])).await.status, 403);
    assert_eq!(s.call(Call::get("/api/practice/users").session(&sam)).await.status, 403);

    // The user sees the session live, with every step.
    let mine = s.call(Call::get("/api/account/support").session(&anna)).await.json();
    assert_eq!(mine[0]["state"], "active");
    assert_eq!(mine[0]["staff"], "sam");
    let steps: Vec<&str> =
        mine[0]["actions"].as_array().unwrap().iter().map(|a| a["scope"].as_str().unwrap()).collect();
    assert_eq!(steps, SCOPES, "every step, refused ones too");
    let allowed: Vec<bool> =
        mine[0]["actions"].as_array().unwrap().iter().map(|a| a["allowed"].as_bool().unwrap()).collect();
    assert_eq!(allowed, [true, true, true, false, false, false, true]);
    // ... and ends it at once.
    assert_eq!(
        s.call(Call::new(Method::DELETE, &format!("/api/account/support/{id}")).session(&anna)).await.status,
        204
    );
    assert_eq!(view(&sam, "settings").await.status, 404);
    assert_eq!(s.call(Call::get("/api/support/sessions").session(&sam)).await.json(), serde_json::json!([]));
    assert_eq!(s.call(Call::get("/api/account/support").session(&anna)).await.json()[0]["state"], "ended");
    let kinds: Vec<String> = s
        .call(Call::get("/api/practice/events").session(&anna))
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["support-code-created", "support-session-started", "support-session-ended"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    let mails = s.mails().await;
    assert!(mails.iter().any(|m| m.contains("Support opened your kluis account")), "the user is told");
}

#[tokio::test]
async fn codes_expire_work_once_and_guessing_them_is_throttled() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let sam = staff(&s, "sam").await;
    let ben = staff(&s, "ben").await;
    // Lifetimes and scopes from the closed lists only.
    for bad in [
        serde_json::json!({"minutes": 4, "scopes": ["view-settings"]}),
        serde_json::json!({"minutes": 24 * 60 + 1, "scopes": ["view-settings"]}),
        serde_json::json!({"scopes": []}),
        serde_json::json!({"scopes": ["view-notes"]}),
        serde_json::json!({"scopes": ["view-settings"], "also": "keys"}),
    ] {
        assert_eq!(make_code(&s, &anna, bad.clone()).await.status, 400, "{bad}");
    }
    // A code that expires before it is used is refused.
    let code = make_code(&s, &anna, serde_json::json!({"minutes": 5, "scopes": ["view-storage"]})).await.json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(5 * 60 * 1000);
    assert_eq!(redeem(&s, &sam, &code).await.status, 400);
    // A session ends with its code's time; another staff member cannot use it.
    let made = make_code(&s, &anna, serde_json::json!({"minutes": 5, "scopes": ["view-storage"]})).await.json();
    let (code, id) = (made["code"].as_str().unwrap().to_owned(), made["grant"]["id"].as_str().unwrap().to_owned());
    assert_eq!(redeem(&s, &sam, &code).await.status, 201);
    let storage = |who: &str| s.call(Call::get(&format!("/api/support/sessions/{id}/storage")).session(who));
    let used = storage(&sam).await;
    assert_eq!(used.status, 200);
    assert_eq!(used.json()["notes"], serde_json::json!({"live_records": 0, "versions": 0, "bytes": 0}));
    assert_eq!(storage(&ben).await.status, 404, "not ben's session");
    s.clock.advance(5 * 60 * 1000);
    assert_eq!(storage(&sam).await.status, 404, "expired");
    // At most five live codes per user.
    for _ in 0..kluis_server::accounts::support::MAX_LIVE_GRANTS {
        assert_eq!(make_code(&s, &anna, serde_json::json!({"scopes": ["view-settings"]})).await.status, 201);
    }
    assert_eq!(make_code(&s, &anna, serde_json::json!({"scopes": ["view-settings"]})).await.status, 400);
    // Guessing: a few tries, then each staff member waits.
    let mut statuses = Vec::new();
    for _ in 0..kluis_server::accounts::throttle::SUPPORT_REDEEM_BURST + 2 {
        statuses.push(redeem(&s, &ben, "0000-0000-0000-0000-0000").await.status.as_u16());
    }
    assert!(statuses.ends_with(&[429, 429]), "{statuses:?}");
    assert!(statuses.iter().take(5).all(|s| *s == 400), "{statuses:?}");
}

#[tokio::test]
async fn support_sends_an_admins_invitation_again_and_sees_storage_without_content() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let sam = staff(&s, "sam").await;
    let invite = Call::post("/api/practice/invitations")
        .session(&anna)
        .json(serde_json::json!({"username": "carl", "roles": ["practitioner"], "email": "carl@example.org"}));
    let first = s.call(invite).await;
    assert_eq!(first.status, 201);
    let first_code = first.json()["code"].as_str().unwrap().to_owned();
    let mails = s.mails().await;
    assert!(mails.iter().any(|m| m.contains("To: carl@example.org") && m.contains("Your invitation to kluis")));
    let made = make_code(&s, &anna, serde_json::json!({"scopes": ["resend-invitation"]})).await.json();
    let id = made["grant"]["id"].as_str().unwrap().to_owned();
    assert_eq!(redeem(&s, &sam, made["code"].as_str().unwrap()).await.status, 201);
    let resend =
        |name: &str| s.call(Call::post(&format!("/api/support/sessions/{id}/invitations/{name}")).session(&sam));
    assert_eq!(resend("anna").await.status, 400, "enrolled already");
    assert_eq!(resend("nobody").await.status, 404);
    assert_eq!(resend("carl").await.status, 204);
    let mails = s.mails().await;
    let second: Vec<&String> = mails.iter().filter(|m| m.contains("Your invitation to kluis")).collect();
    assert_eq!(second.len(), 2);
    // The first code stopped working; the new one enrolls.
    let enroll = |code: &str| {
        s.call(
            Call::post("/api/enroll")
                .json(serde_json::json!({"code": code, "password": PASSWORD, "email": "carl@example.org"})),
        )
    };
    assert_eq!(enroll(&first_code).await.status, 400);
    let text = second[1].replace("=\r\n", "").replace("=\n", "");
    let at = text.find("type this code:").unwrap() + "type this code:".len();
    let new_code: String = text[at..].trim_start().chars().take(24).collect();
    assert_eq!(enroll(&new_code).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn disabling_an_account_ends_its_support_access_and_support_writes_nothing_of_its_own() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[kluis_server::accounts::model::Role::Practitioner]).await;
    let sam = staff(&s, "sam").await;
    let waiting = make_code(&s, &bram, serde_json::json!({"scopes": ["view-settings"]})).await.json();
    let active = make_code(&s, &bram, serde_json::json!({"scopes": ["revoke-device"]})).await.json();
    assert_eq!(redeem(&s, &sam, active["code"].as_str().unwrap()).await.status, 201);
    let id = active["grant"]["id"].as_str().unwrap().to_owned();
    // A made-up device handle is refused before it could be written into bram's list.
    let odd = s
        .call(
            Call::new(Method::DELETE, &format!("/api/support/sessions/{id}/devices/x%29%20ended%20by%20user"))
                .session(&sam),
        )
        .await;
    assert_eq!(odd.status, 404);
    assert_eq!(s.call(Call::post("/api/practice/users/bram/disable").session(&anna)).await.status, 204);
    // Both grants ended: the code no longer opens anything, even once bram is enabled again.
    assert_eq!(s.call(Call::get("/api/support/sessions").session(&sam)).await.json(), serde_json::json!([]));
    assert_eq!(s.call(Call::post("/api/practice/users/bram/enable").session(&anna)).await.status, 204);
    assert_eq!(redeem(&s, &sam, waiting["code"].as_str().unwrap()).await.status, 400);
    assert_eq!(s.call(Call::get(&format!("/api/support/sessions/{id}/settings")).session(&sam)).await.status, 404);
    let bram = s.sign_in("bram", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap();
    let mine = s.call(Call::get("/api/account/support").session(&bram)).await.json();
    assert!(mine.as_array().unwrap().iter().all(|g| g["state"] == "ended"), "{mine}");
    assert!(mine.as_array().unwrap().iter().all(|g| g["actions"].as_array().unwrap().is_empty()), "{mine}");
    // Bram sees what happened to his account in the app, not only by e-mail.
    let events = s.call(Call::get("/api/account/events").session(&bram)).await.json();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"user-disabled") && kinds.contains(&"support-session-ended"), "{kinds:?}");
}

/// Codes asked for at the same moment, from as many threads, still stop at the limit: the
/// count and the insert are one step.
#[test]
fn codes_asked_for_at_once_stop_at_the_limit() {
    use kluis_server::accounts::model::SupportScope;
    use kluis_server::accounts::support::MAX_LIVE_GRANTS;
    const THREADS: usize = 12;
    const ROUNDS: usize = 20;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = TestServer::cheap();
    for round in 0..ROUNDS {
        let name = format!("user{round}");
        rt.block_on(s.practice(&format!("P{round}"), &name));
        let user = s.state.accounts.user_by_name(&name).unwrap().unwrap();
        let start = std::sync::Barrier::new(THREADS);
        let made = std::thread::scope(|scope| {
            let asks: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        let single = tokio::runtime::Builder::new_current_thread().build().unwrap();
                        start.wait();
                        single.block_on(s.state.accounts.create_support_code(
                            &user,
                            60,
                            [SupportScope::ViewStorage].into(),
                        ))
                    })
                })
                .collect();
            asks.into_iter().map(|a| a.join().unwrap()).filter(Result::is_ok).count()
        });
        assert_eq!(made, MAX_LIVE_GRANTS, "round {round}");
        assert_eq!(s.state.accounts.support_of(&user.id).unwrap().len(), MAX_LIVE_GRANTS, "round {round}");
    }
}

/// Every scope's route answers only to a session whose code grants that scope: with all the
/// others it is refused, with that one alone it is not.
#[tokio::test]
async fn each_scope_is_refused_unless_the_code_grants_it() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    // Fourteen redemptions: a staff member may redeem a burst of five at once.
    let mut crew = Vec::new();
    for name in ["sam", "ben", "eva"] {
        crew.push(staff(&s, name).await);
    }
    let invite = Call::post("/api/practice/invitations")
        .session(&anna)
        .json(serde_json::json!({"username": "carl", "roles": ["practitioner"], "email": "carl@example.org"}));
    assert_eq!(s.call(invite).await.status, 201);
    let laptop = s.sign_in_new_browser("anna", Some(&server::device_key())).await;
    let laptop_id = s.current_device_id(&laptop).await;
    let step = |sam: &str, id: &str, scope: &str| {
        let base = format!("/api/support/sessions/{id}");
        let call = match scope {
            "resend-invitation" => Call::post(&format!("{base}/invitations/carl")),
            "revoke-device" => Call::new(Method::DELETE, &format!("{base}/devices/{laptop_id}")),
            view => Call::get(&format!("{base}/{}", view.trim_start_matches("view-"))),
        };
        s.call(call.session(sam))
    };
    let mut redeemed = 0;
    for scope in SCOPES {
        for (grant, allowed) in
            [(SCOPES.iter().filter(|s| **s != scope).collect::<Vec<_>>(), false), (vec![&scope], true)]
        {
            let made = make_code(&s, &anna, serde_json::json!({ "scopes": grant })).await.json();
            let id = made["grant"]["id"].as_str().unwrap().to_owned();
            let sam = &crew[redeemed / kluis_server::accounts::throttle::SUPPORT_REDEEM_BURST as usize];
            redeemed += 1;
            assert_eq!(redeem(&s, sam, made["code"].as_str().unwrap()).await.status, 201);
            let status = step(sam, &id, scope).await.status;
            if allowed {
                assert!(status.is_success(), "{scope} granted: {status}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{scope} not granted");
            }
            let end = Call::new(Method::DELETE, &format!("/api/account/support/{id}")).session(&anna);
            assert_eq!(s.call(end).await.status, 204);
        }
    }
}

/// A support code is kept only as a hash: no file of the accounts store holds the code, in
/// any of the ways it may be typed.
#[tokio::test]
async fn a_support_code_is_stored_only_hashed() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let made = make_code(&s, &anna, serde_json::json!({"scopes": ["view-settings"]})).await.json();
    let code = made["code"].as_str().unwrap().to_owned();
    let bare = code.replace('-', "");
    let needles = [code.clone(), code.to_lowercase(), bare.clone(), bare.to_lowercase()];
    let holding = s.accounts_files_holding(&needles.iter().map(String::as_bytes).collect::<Vec<_>>()).await;
    assert!(holding.is_empty(), "{holding:?} hold the code");
    // The hash it is kept as does find it.
    let sam = staff(&s, "sam").await;
    assert_eq!(redeem(&s, &sam, &code).await.status, 201);
}
