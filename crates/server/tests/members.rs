//! The practice admin console over the real router: members with the key-file fingerprints
//! the server holds, invitations by e-mail, disabling and enabling accounts, and the IP release
//! process (addresses only for a recorded reason, told to the member).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/server.rs"]
mod server;

use std::collections::BTreeMap;

use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::wire::SaveRequest;
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultSecret, envelope};
use kluis_server::accounts::model::Role;
use server::{Call, PASSWORD, TestServer};

#[tokio::test]
async fn members_are_listed_with_the_fingerprint_the_server_holds() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let file = kluis_core::UnlockedKeyFile::new(VaultSecret::from_bytes([5; 32]), "Anna", 0, None).unwrap();
    let public_key = file.info().public_key_text().unwrap();
    let res =
        s.call(Call::post("/api/vault-key").session(&anna).json(serde_json::json!({ "public_key": public_key }))).await;
    assert_eq!(res.status, 201);
    let invite = Call::post("/api/practice/invitations")
        .session(&anna)
        .json(serde_json::json!({"username": "bram", "roles": ["practitioner"], "email": "bram@example.org"}));
    assert_eq!(s.call(invite).await.status, 201);
    let bad = Call::post("/api/practice/invitations")
        .session(&anna)
        .json(serde_json::json!({"username": "carl", "roles": ["practitioner"], "email": "not an address"}));
    assert_eq!(s.call(bad).await.status, 400);
    let members = s.call(Call::get("/api/practice/users").session(&anna)).await.json();
    let anna_row = members.as_array().unwrap().iter().find(|m| m["username"] == "anna").unwrap();
    assert_eq!(anna_row["fingerprint"], file.info().public.fingerprint().to_string().as_str());
    let bram_row = members.as_array().unwrap().iter().find(|m| m["username"] == "bram").unwrap();
    assert_eq!(bram_row["state"], "invited");
    assert_eq!(bram_row["email"], "bram@example.org");
    assert_eq!(bram_row["invited_until"], s.clock.now() + kluis_server::accounts::CODE_LIFETIME_MS);
    assert!(bram_row["fingerprint"].is_null());
    // The invitation went by mail, with its code.
    let mails = s.mails().await;
    assert!(mails.iter().any(|m| m.contains("To: bram@example.org") && m.contains("I have an enrollment code")));
    // The admin sends it again: a new code.
    assert_eq!(s.call(Call::post("/api/practice/users/bram/invitation").session(&anna)).await.status, 204);
    assert_eq!(s.call(Call::post("/api/practice/users/anna/invitation").session(&anna)).await.status, 400);
    assert_eq!(s.mails().await.iter().filter(|m| m.contains("Your invitation to kluis")).count(), 2);
}

#[tokio::test]
async fn a_disabled_member_is_signed_out_and_kept_out_until_enabled() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[Role::Practitioner]).await;
    let olga = s.practice("Q", "olga").await;
    let post = |who: &str, path: &str| s.call(Call::post(path).session(who));
    assert_eq!(post(&olga, "/api/practice/users/bram/disable").await.status, 404, "another practice's");
    assert_eq!(post(&bram, "/api/practice/users/anna/disable").await.status, 403, "not an admin");
    assert_eq!(post(&anna, "/api/practice/users/anna/disable").await.status, 403, "never oneself");
    assert_eq!(post(&anna, "/api/practice/users/bram/disable").await.status, 204);
    assert_eq!(s.call(Call::get("/api/me").session(&bram)).await.status, 401, "signed out");
    assert_eq!(s.sign_in("bram", PASSWORD).await.status, 401, "kept out");
    assert_eq!(post(&anna, "/api/practice/users/bram/disable").await.status, 400, "disabled already");
    assert_eq!(post(&anna, "/api/practice/users/bram/enable").await.status, 204);
    assert_eq!(s.sign_in("bram", PASSWORD).await.status, 200);
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(events[0]["kind"], "user-enabled");
    assert_eq!(events[1]["kind"], "user-disabled");
    assert_eq!(events[1]["by"], "admin:anna");
    let mails = s.mails().await;
    assert!(mails.iter().any(|m| m.contains("Your kluis account was disabled")));
}

/// A note saved the only way the server sees it: sealed.
async fn save_note(s: &TestServer, token: &str) {
    let keys = KeyHierarchy::derive(&VaultSecret::from_bytes([8; 32])).notes;
    let res = s.call(Call::post("/api/vaults/notes").session(token).cbor(Manifest::genesis(&keys, 1).encode())).await;
    assert_eq!(res.status, 201);
    let head = verify(&s.state.notes.head(&keys.id).await.unwrap(), &keys, None, &[]).unwrap();
    let rec = RecordId::from_bytes([3; 16]);
    let env = envelope::seal(&keys, &RecordHeader::first(keys.id, rec, RecordKind::Note), b"{\"v\":1}").unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, _) = head.prepare_update(&keys, BTreeMap::from([(rec, change)]), 2).unwrap();
    let body = SaveRequest { update: &update.encode(), envelopes: vec![(rec, &env)] }.encode();
    let path = format!("/api/vaults/{}/saves", hex::encode(keys.id.to_bytes()));
    assert_eq!(s.call(Call::post(&path).session(token).cbor(body)).await.status, 204);
}

#[tokio::test]
async fn addresses_are_released_only_for_a_recorded_reason_told_to_the_member() {
    let s = TestServer::cheap();
    let anna = s.practice("P", "anna").await;
    let bram = s.member("P", "bram", &[Role::Practitioner]).await;
    let olga = s.practice("Q", "olga").await;
    save_note(&s, &bram).await;
    assert_eq!(s.sign_in("bram", PASSWORD).await.status, 200);
    // The practice's sign-in log shows no addresses; the member's own history does.
    let log = s.call(Call::get("/api/practice/sign-ins").session(&anna)).await.json();
    assert!(!log.as_array().unwrap().is_empty());
    assert!(log.as_array().unwrap().iter().all(|e| e["ip"].is_null()), "{log}");
    let own = s.call(Call::get("/api/sign-ins").session(&bram)).await.json();
    assert!(own[0]["ip"].as_str().unwrap().starts_with("10."));
    // A release needs a reason, for a member of one's own practice.
    let release = |who: &str, user: &str, reason: &str| {
        s.call(
            Call::post("/api/practice/ip-release")
                .session(who)
                .json(serde_json::json!({ "username": user, "reason": reason })),
        )
    };
    assert_eq!(release(&anna, "bram", "because").await.status, 400);
    assert_eq!(release(&olga, "bram", "a police request, ref 2026-117").await.status, 404);
    assert_eq!(release(&bram, "bram", "a police request, ref 2026-117").await.status, 403);
    let released = release(&anna, "bram", "a police request, ref 2026-117").await;
    assert_eq!(released.status, 200);
    let entries = released.json();
    let kinds: std::collections::BTreeSet<&str> =
        entries.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sign-in", "write"].into_iter().collect());
    assert!(entries.as_array().unwrap().iter().all(|e| e["ip"].as_str().unwrap().starts_with("10.")));
    assert!(entries.as_array().unwrap().iter().any(|e| e["kind"] == "write" && e["what"] == "notes"));
    // Recorded, with its reason, and told to the member.
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    assert_eq!(events[0]["kind"], "ip-release");
    assert_eq!(events[0]["detail"], "a police request, ref 2026-117");
    let mails = s.mails().await;
    let told = mails.iter().find(|m| m.contains("looked up your sign-in addresses")).unwrap();
    assert!(told.replace("=\r\n", "").replace("=\n", "").contains("a police request, ref 2026-117"));
}
