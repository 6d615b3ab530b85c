//! The authorisation matrix (security-anchors §4.5, ASVS V8): every endpoint × every kind of
//! subject × every object owner, one expected status per cell, from the table below. Each
//! route of `api::ROUTES` must have rows here, and each status seen must be documented for its
//! operation in `/api/openapi.json`, so a new endpoint cannot skip either.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

#[path = "support/server.rs"]
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::Method;
use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::wire::SaveRequest;
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};
use kluis_server::accounts::model::Role;
use kluis_server::api::{OPENAPI, ROUTES};
use server::{Call, PASSWORD, TestServer};

/// Subjects, in the table's column order.
const SUBJECTS: [&str; 8] = ["anon", "A", "B", "admin", "support", "other", "expired", "signedout"];

/// `route owner | expected status per subject`. Owners: `A` (practitioner A's vault, session,
/// device, support code or support session), `B` (practitioner B's, same practice), `C`
/// (practitioner carl of the same practice, whose account admins act on), `I` (ivy, invited to
/// it by e-mail), `none` (nobody's), `-` (no object).
/// A is admin and practitioner of practice P; B a practitioner of P; `admin` only an admin of
/// P; `support` the operator's support staff (with a second factor, and support sessions opened
/// with codes of A and B); `other` admin and practitioner of practice Q;
/// `expired` is A's session after the idle timeout; `signedout` A's session after sign-out.
const TABLE: &str = "
# route                                   owner  anon A   B   admin support other expired signedout
GET /api/health                           -      200  200 200 200   200     200   200     200
GET /api/openapi.json                     -      200  200 200 200   200     200   200     200
POST /api/enroll                          -      400  400 400 400   400     400   400     400
POST /api/sign-in                         -      401  401 401 401   401     401   401     401
GET /api/me                               -      401  200 200 200   200     200   401     401
GET /api/sessions                         -      401  200 200 200   200     200   401     401
DELETE /api/sessions/{id}                 A      401  204 404 404   404     404   401     401
DELETE /api/sessions/{id}                 B      401  404 204 404   404     404   401     401
DELETE /api/sessions/{id}                 none   401  404 404 404   404     404   401     401
GET /api/practice/users                   -      401  200 403 200   403     200   401     401
POST /api/practice/invitations            -      401  201 403 201   403     201   401     401
POST /api/vault-key                       -      401  201 201 403   403     201   401     401
POST /api/vaults/{kind}                   -      401  201 201 403   403     201   401     401
GET /api/vaults/{vault}/sync              A      401  200 404 403   403     404   401     401
GET /api/vaults/{vault}/sync              B      401  404 200 403   403     404   401     401
GET /api/vaults/{vault}/sync              none   401  404 404 403   403     404   401     401
GET /api/vaults/{vault}/head              A      401  200 404 403   403     404   401     401
GET /api/vaults/{vault}/head              B      401  404 200 403   403     404   401     401
GET /api/vaults/{vault}/head              none   401  404 404 403   403     404   401     401
POST /api/vaults/{vault}/saves            A      401  204 404 403   403     404   401     401
POST /api/vaults/{vault}/saves            B      401  404 204 403   403     404   401     401
POST /api/vaults/{vault}/saves            none   401  404 404 403   403     404   401     401
GET /api/vaults/{vault}/records/{record}  A      401  200 404 403   403     404   401     401
GET /api/vaults/{vault}/records/{record}  B      401  404 200 403   403     404   401     401
GET /api/vaults/{vault}/records/{record}  none   401  404 404 403   403     404   401     401
POST /api/sign-in/second-factor           -      401  401 401 401   401     401   401     401
POST /api/account/totp                    -      401  201 201 201   400     201   401     401
GET /api/account/totp/qr.svg              -      401  200 200 200   400     200   401     401
POST /api/account/totp/confirm            -      401  400 400 400   400     400   401     401
POST /api/account/recovery-codes          -      401  400 400 400   400     400   401     401
GET /api/sign-ins                         -      401  200 200 200   200     200   401     401
GET /api/account/events                   -      401  200 200 200   200     200   401     401
GET /api/practice/sign-ins                -      401  200 403 200   403     200   401     401
GET /api/practice/events                  -      401  200 403 200   403     200   401     401
POST /api/practice/users/{username}/second-factor-reset C 401 204 403 204 403   404   401     401
GET /api/practice/policy                  -      401  200 403 200   403     200   401     401
PUT /api/practice/policy                  -      401  200 403 200   403     200   401     401
POST /api/not-me                          -      400  400 400 400   400     400   400     400
POST /api/password-reset                  -      202  202 202 202   202     202   202     202
POST /api/password-reset/complete         -      400  400 400 400   400     400   400     400
POST /api/sign-in/challenge               -      200  200 200 200   200     200   200     200
POST /api/sign-in/device                  -      401  401 401 401   401     401   401     401
POST /api/sign-in/device/wait             -      401  401 401 401   401     401   401     401
GET /api/account/notifications            -      401  200 200 200   200     200   401     401
PUT /api/account/notifications            -      401  200 200 200   200     200   401     401
GET /api/devices                          -      401  200 200 200   200     200   401     401
PUT /api/devices/{id}                     A      401  200 404 404   404     404   401     401
PUT /api/devices/{id}                     B      401  404 200 404   404     404   401     401
PUT /api/devices/{id}                     none   401  404 404 404   404     404   401     401
DELETE /api/devices/{id}                  A      401  204 404 404   404     404   401     401
DELETE /api/devices/{id}                  B      401  404 204 404   404     404   401     401
DELETE /api/devices/{id}                  none   401  404 404 404   404     404   401     401
POST /api/devices/pending/{id}/approve    A      401  204 404 404   404     404   401     401
POST /api/devices/pending/{id}/approve    B      401  404 204 404   404     404   401     401
POST /api/devices/pending/{id}/approve    none   401  404 404 404   404     404   401     401
POST /api/devices/pending/{id}/deny       A      401  204 404 404   404     404   401     401
POST /api/devices/pending/{id}/deny       B      401  404 204 404   404     404   401     401
POST /api/devices/pending/{id}/deny       none   401  404 404 404   404     404   401     401
GET /api/unsubscribe                      -      303  303 303 303   303     303   303     303
POST /api/unsubscribe                     -      400  400 400 400   400     400   400     400
POST /api/practice/users/{username}/disable C   401  204 403 400   403     404   401     401
POST /api/practice/users/{username}/enable  C   401  204 403 400   403     404   401     401
POST /api/practice/users/{username}/invitation I 401 204 403 204   403     404   401     401
POST /api/practice/ip-release             -      401  200 403 200   403     404   401     401
GET /api/practice/audit                   -      401  200 403 200   403     200   401     401
GET /api/account/support                  -      401  200 200 200   200     200   401     401
POST /api/account/support                 -      401  201 201 201   403     201   401     401
DELETE /api/account/support/{id}          A      401  204 404 404   404     404   401     401
DELETE /api/account/support/{id}          B      401  404 204 404   404     404   401     401
DELETE /api/account/support/{id}          none   401  404 404 404   404     404   401     401
POST /api/support/redeem                  -      401  403 403 403   400     403   401     401
GET /api/support/sessions                 -      401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/settings   A      401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/settings   none   401  403 403 403   404     403   401     401
GET /api/support/sessions/{id}/devices    A      401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/devices    none   401  403 403 403   404     403   401     401
GET /api/support/sessions/{id}/sign-ins   A      401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/sign-ins   none   401  403 403 403   404     403   401     401
GET /api/support/sessions/{id}/second-factor A   401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/second-factor none 401 403 403 403   404     403   401     401
GET /api/support/sessions/{id}/storage    A      401  403 403 403   200     403   401     401
GET /api/support/sessions/{id}/storage    none   401  403 403 403   404     403   401     401
POST /api/support/sessions/{id}/invitations/{username} A 401 403 403 403 204   403   401     401
POST /api/support/sessions/{id}/invitations/{username} B 401 403 403 403 403   403   401     401
POST /api/support/sessions/{id}/invitations/{username} none 401 403 403 403 404 403   401     401
DELETE /api/support/sessions/{id}/devices/{device} A 401 403 403 403 204   403   401     401
DELETE /api/support/sessions/{id}/devices/{device} B 401 403 403 403 204   403   401     401
DELETE /api/support/sessions/{id}/devices/{device} none 401 403 403 403 404 403   401     401
POST /api/support/sessions/{id}/end       A      401  403 403 403   204     403   401     401
POST /api/support/sessions/{id}/end       B      401  403 403 403   204     403   401     401
POST /api/support/sessions/{id}/end       none   401  403 403 403   404     403   401     401
POST /api/sign-out                        -      401  204 204 204   204     204   401     401
";

fn vault_keys(seed: u8) -> VaultKeys {
    KeyHierarchy::derive(&VaultSecret::from_bytes([seed; 32])).notes
}

/// A vault with one record in it, owned by the subject whose session is `token`.
async fn make_vault(s: &TestServer, token: &str, keys: &VaultKeys) -> RecordId {
    let res = s.call(Call::post("/api/vaults/notes").session(token).cbor(Manifest::genesis(keys, 1).encode())).await;
    assert_eq!(res.status, 201);
    let rec = RecordId::from_bytes([keys.id.to_bytes()[0]; 16]);
    let res = s
        .call(
            Call::post(&format!("/api/vaults/{}/saves", hex::encode(keys.id.to_bytes())))
                .session(token)
                .cbor(save_body(s, keys, rec).await),
        )
        .await;
    assert_eq!(res.status, 204, "{}", String::from_utf8_lossy(&res.body));
    rec
}

/// A valid save of a new version of `rec` on top of the vault's current head.
async fn save_body(s: &TestServer, keys: &VaultKeys, rec: RecordId) -> Vec<u8> {
    let head = verify(&s.state.notes.head(&keys.id).await.unwrap(), keys, None, &[]).unwrap();
    let header = match s.state.notes.record(&keys.id, &rec, None) {
        Ok(prev) => envelope::header_of(&prev).unwrap().next(&prev).unwrap(),
        Err(_) => RecordHeader::first(keys.id, rec, RecordKind::Note),
    };
    let env = envelope::seal(keys, &header, b"SOAP: matrix").unwrap();
    let change = Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, _) = head.prepare_update(keys, BTreeMap::from([(rec, change)]), 2).unwrap();
    SaveRequest { update: &update.encode(), envelopes: vec![(rec, &env)] }.encode()
}

fn session_id(s: &TestServer, token: &str) -> String {
    let signed = s.state.accounts.authenticate(token, false).unwrap().unwrap();
    signed.session.id
}

#[tokio::test]
async fn every_endpoint_every_subject_every_owner() {
    let s = TestServer::new();
    // A's sessions that the matrix tests as dead ones, made before the live ones.
    let a = s.practice("P", "anna").await;
    s.clock.advance(16 * 60 * 1000);
    let expired = a;
    let signed_out = s.sign_in("anna", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap();
    assert_eq!(s.call(Call::post("/api/sign-out").session(&signed_out)).await.status, 204);
    let a = s.sign_in("anna", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap();
    let b = s.member("P", "bram", &[Role::Practitioner]).await;
    s.member("P", "carl", &[Role::Practitioner]).await;
    let admin = s.member("P", "dirk", &[Role::Admin]).await;
    let support = s.support("sam").await;
    // Support staff work with a second factor, set up in this session.
    let secret =
        s.call(Call::post("/api/account/totp").session(&support)).await.json()["secret"].as_str().unwrap().to_owned();
    let code = kluis_server::accounts::second_factor::code_at(&secret, s.clock.now() / 1000).unwrap();
    let res = s
        .call(Call::post("/api/account/totp/confirm").session(&support).json(serde_json::json!({ "code": code })))
        .await;
    assert_eq!(res.status, 200);
    let other = s.practice("Q", "olga").await;
    let sessions = [
        None,
        Some(a.clone()),
        Some(b.clone()),
        Some(admin),
        Some(support.clone()),
        Some(other),
        Some(expired),
        Some(signed_out),
    ];
    // Objects: A's and B's vaults with a record each; spare sessions of A and B to revoke.
    let (ka, kb, knone) = (vault_keys(0xa), vault_keys(0xb), vault_keys(0xc));
    let ra = make_vault(&s, &a, &ka).await;
    let rb = make_vault(&s, &b, &kb).await;
    let spare_a = session_id(&s, &s.sign_in("anna", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap());
    let spare_b = session_id(&s, &s.sign_in("bram", PASSWORD).await.set_cookie("__Host-kluis-session").unwrap());
    // Spare trusted devices of A and B to rename and revoke, and new browsers of theirs waiting
    // to be approved and refused.
    let device_a = spare_device(&s, "anna").await;
    let device_b = spare_device(&s, "bram").await;
    // Support: a session sam opened with A's code and one with B's (every scope); codes of A
    // and B nobody redeemed; devices of A and B for support to remove; ivy, invited by e-mail.
    let all_scopes = serde_json::json!({"scopes": ["view-settings", "view-devices", "view-sign-ins", "view-second-factor",
        "view-storage", "resend-invitation", "revoke-device"]});
    let grant = |token: &str| {
        let (token, body) = (token.to_owned(), all_scopes.clone());
        let s = &s;
        async move {
            let res = s.call(Call::post("/api/account/support").session(&token).json(body)).await;
            assert_eq!(res.status, 201);
            let made = res.json();
            (made["code"].as_str().unwrap().to_owned(), made["grant"]["id"].as_str().unwrap().to_owned())
        }
    };
    let redeemed = |code: String| {
        let (s, support) = (&s, support.clone());
        async move {
            let res = s
                .call(Call::post("/api/support/redeem").session(&support).json(serde_json::json!({ "code": code })))
                .await;
            assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
        }
    };
    let (code_a, session_a) = grant(&a).await;
    redeemed(code_a).await;
    let (code_b, session_b) = grant(&b).await;
    redeemed(code_b).await;
    let (_, unused_a) = grant(&a).await;
    let (_, unused_b) = grant(&b).await;
    let support_device_a = spare_device(&s, "anna").await;
    let support_device_b = spare_device(&s, "bram").await;
    let ivy = Call::post("/api/practice/invitations")
        .session(&a)
        .json(serde_json::json!({"username": "ivy", "roles": ["practitioner"], "email": "ivy@example.org"}));
    assert_eq!(s.call(ivy).await.status, 201);
    let ((approve_a, number_a), (deny_a, _)) =
        (pending_device(&s, "anna", &a).await, pending_device(&s, "anna", &a).await);
    let ((approve_b, number_b), (deny_b, _)) =
        (pending_device(&s, "bram", &b).await, pending_device(&s, "bram", &b).await);
    let openapi: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let counter = AtomicU32::new(0);

    let mut covered = BTreeSet::new();
    let mut cells = 0;
    for line in TABLE.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (method, route, owner) = (cols[0], cols[1], cols[2]);
        let expected: Vec<u16> = cols[3..].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(expected.len(), SUBJECTS.len(), "{line}");
        assert!(
            ROUTES.contains(&(method, route)),
            "the table names a route the server does not have: {method} {route}"
        );
        covered.insert((method, route));
        let (keys, rec, mut spare) = match owner {
            "A" => (Some(&ka), ra, spare_a.clone()),
            "B" => (Some(&kb), rb, spare_b.clone()),
            "C" | "I" | "none" | "-" => (Some(&knone), RecordId::from_bytes([0xcc; 16]), "00112233445566ff".to_owned()),
            _ => panic!("owner {owner}"),
        };
        let theirs = |a: &String, b: &String| match owner {
            "A" => a.clone(),
            "B" => b.clone(),
            _ => "00112233445566ff".to_owned(),
        };
        let mut device = theirs(&support_device_a, &support_device_b);
        if route.starts_with("/api/support/sessions/{id}") {
            spare = match owner {
                "A" => session_a.clone(),
                "B" => session_b.clone(),
                _ => "00112233445566778899aabbccddeeff".to_owned(),
            };
        } else if route.starts_with("/api/account/support/{id}") {
            spare = match owner {
                "A" => unused_a.clone(),
                "B" => unused_b.clone(),
                _ => "00112233445566778899aabbccddeeff".to_owned(),
            };
            device = String::new();
        } else if route.starts_with("/api/devices/{id}") {
            spare = theirs(&device_a, &device_b);
        } else if route.ends_with("/approve") {
            spare = theirs(&approve_a, &approve_b);
        } else if route.ends_with("/deny") {
            spare = theirs(&deny_a, &deny_b);
        }
        let username = match owner {
            _ if route.starts_with("/api/support/") => "ivy",
            "A" => "anna",
            "B" => "bram",
            "C" => "carl",
            "I" => "ivy",
            _ => "nobody",
        };
        let keys = keys.unwrap();
        let vault = hex::encode(keys.id.to_bytes());
        for (i, (subject, want)) in SUBJECTS.iter().zip(&expected).enumerate() {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let path = route
                .replace("{device}", &device)
                .replace("{id}", &spare)
                .replace("{vault}", &vault)
                .replace("{record}", &hex::encode(rec.to_bytes()))
                .replace("{kind}", "identities")
                .replace("{username}", username);
            let mut call = Call::new(Method::from_bytes(method.as_bytes()).unwrap(), &path);
            call = match (method, route) {
                ("POST", "/api/enroll") => call.json(serde_json::json!({"code": "0000-0000-0000-0000-0000", "password": PASSWORD, "email": "x@example.org"})),
                ("POST", "/api/sign-in") => call.json(serde_json::json!({"username": format!("nobody{n}"), "password": PASSWORD})),
                ("POST", "/api/sign-in/second-factor" | "/api/account/totp/confirm" | "/api/account/recovery-codes") => {
                    call.json(serde_json::json!({"code": "not-a-code"}))
                }
                ("POST", "/api/practice/users/{username}/second-factor-reset") => {
                    call.json(serde_json::json!({"verified_by": "Matrix", "evidence": "in-person"}))
                }
                ("POST", "/api/password-reset") => call.json(serde_json::json!({"username": format!("nobody{n}")})),
                ("POST", "/api/password-reset/complete") => {
                    call.json(serde_json::json!({"token": "AAAAAAAAAAAAAAAAAAAAAA", "password": "a long enough new password"}))
                }
                ("POST", "/api/not-me") => call.json(serde_json::json!({"token": "AAAAAAAAAAAAAAAAAAAAAA"})),
                ("POST", "/api/sign-in/device") => call.json(serde_json::json!({"code": "123456"})),
                ("PUT", "/api/account/notifications") => call.json(serde_json::json!({"new_device": true, "every_sign_in": false})),
                ("PUT", "/api/devices/{id}") => call.json(serde_json::json!({"name": format!("Device {n}")})),
                ("POST", "/api/practice/ip-release") => {
                    call.json(serde_json::json!({"username": "carl", "reason": "matrix: a documented request"}))
                }
                ("POST", "/api/account/support") => call.json(serde_json::json!({"scopes": ["view-settings"]})),
                ("POST", "/api/support/redeem") => call.json(serde_json::json!({"code": "0000-0000-0000-0000-0000"})),
                ("POST", "/api/devices/pending/{id}/approve") => {
                    let number = if owner == "B" { &number_b } else { &number_a };
                    call.json(serde_json::json!({ "number": number }))
                }
                ("GET" | "POST", "/api/unsubscribe") => {
                    Call::new(Method::from_bytes(method.as_bytes()).unwrap(), "/api/unsubscribe?token=AAAAAAAAAAAAAAAAAAAAAA")
                }
                ("PUT", "/api/practice/policy") => call.json(serde_json::json!({
                    "idle_minutes": 15, "absolute_hours": 12, "min_password_chars": 0, "second_factor_required": false
                })),
                ("POST", "/api/practice/invitations") => call.json(serde_json::json!({"username": format!("new{n}"), "roles": ["practitioner"]})),
                ("POST", "/api/vault-key") => {
                    let file = kluis_core::UnlockedKeyFile::new(VaultSecret::from_bytes([0x60 + i as u8; 32]), "m", 0, None).unwrap();
                    call.json(serde_json::json!({"public_key": file.info().public_key_text().unwrap()}))
                }
                ("POST", "/api/vaults/{kind}") => call.cbor(Manifest::genesis(&vault_keys(0x40 + i as u8), 1).encode()),
                ("POST", "/api/vaults/{vault}/saves") => {
                    let body = if owner == "none" { save_body_for_missing(&knone) } else { save_body(&s, keys, rec).await };
                    call.cbor(body)
                }
                _ => call,
            };
            if let Some(token) = &sessions[i] {
                call = call.session(token);
            }
            let res = s.call(call).await;
            assert_eq!(
                res.status.as_u16(),
                *want,
                "{method} {route} owner {owner} as {subject}: {}",
                String::from_utf8_lossy(&res.body)
            );
            let op = &openapi["paths"][route][method.to_lowercase()];
            assert!(
                op["responses"][want.to_string()].is_object(),
                "openapi.json does not document {want} for {method} {route}"
            );
            cells += 1;
        }
    }
    for r in ROUTES {
        assert!(covered.contains(r), "no matrix row for {} {}", r.0, r.1);
    }
    println!("{cells} matrix cells checked");
}

/// A second trusted device of `user` (confirmed by the code sent to the outbox); its handle.
async fn spare_device(s: &TestServer, user: &str) -> String {
    let session = s.sign_in_new_browser(user, Some(&server::device_key())).await;
    let devices = s.call(Call::get("/api/devices").session(&session)).await.json();
    devices["devices"].as_array().unwrap().iter().find(|d| d["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new browser of `user` waiting for an approval: its handle, as `session` sees it, and the
/// number it shows.
async fn pending_device(s: &TestServer, user: &str, session: &str) -> (String, String) {
    let ids = || async {
        let pending = s.call(Call::get("/api/devices").session(session)).await.json()["pending"].clone();
        pending.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>()
    };
    let before = ids().await;
    let res = s.sign_in_from(user, PASSWORD, Some(&server::device_key())).await;
    let number = res.json()["number"].as_str().unwrap().to_owned();
    let after = ids().await;
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(new.len(), 1);
    (new[0].clone(), number)
}

fn save_body_for_missing(keys: &VaultKeys) -> Vec<u8> {
    let genesis = verify(&Manifest::genesis(keys, 1).encode(), keys, None, &[]).unwrap();
    let rec = RecordId::from_bytes([1; 16]);
    let env = envelope::seal(keys, &RecordHeader::first(keys.id, rec, RecordKind::Note), b"x").unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, _) = genesis.prepare_update(keys, BTreeMap::from([(rec, change)]), 2).unwrap();
    SaveRequest { update: &update.encode(), envelopes: vec![(rec, &env)] }.encode()
}

#[test]
fn openapi_describes_exactly_the_routes() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, routes);
}
