//! Purge and ownership transfer, as the operator runs them: after `user purge`, nothing of the
//! account is reachable through any API and no backup taken afterwards holds it (a backup taken
//! before does: the check can fail); its practice's other data is untouched; only a purged
//! account can be transferred, and the new owner starts from nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/server.rs"]
mod server;
#[path = "support/vaults.rs"]
mod vaults;

use std::path::Path;

use axum::http::StatusCode;
use kluis_core::RecordKind;
use kluis_server::accounts::model::Role;
use kluis_server::accounts::second_factor::code_at;
use server::{Call, PASSWORD, TestServer};
use vaults::{App, id, keys};

/// A backup of `data` with the CLI, decrypted: its plaintext; and a restore of it into a new
/// directory, whose files are returned too.
fn backup_plaintext(data: &Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let keys = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let file = keys.path().join(name);
    let (ok, out, err) = cli::kluis(&["backup", "--out", file.to_str().unwrap(), "--recipient", &recipient], data);
    assert!(ok, "{err}");
    let plain = age::decrypt(&identity, &std::fs::read(&file).unwrap()).unwrap();
    let key = out.lines().find_map(|l| l.strip_prefix("signed with ")).unwrap();
    let key = kluis_server::backup::signer::parse_public_key(key).unwrap();
    let target = keys.path().join("restored");
    kluis_server::backup::restore::restore(&file, &[identity], &key, &target, kluis_server::clock::Clock::System)
        .unwrap();
    (plain, every_byte_under(&target))
}

/// The bytes of every file under `dir`, one after the other.
fn every_byte_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(every_byte_under(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_account_is_gone_from_every_api_and_every_later_backup_and_only_then_transferred() {
    let s = TestServer::cheap();
    let anna = s.practice("Praktijk Jansen", "anna").await;
    let invited = s.state.accounts.invite("Praktijk Jansen", "bram", [Role::Practitioner].into()).unwrap();
    let bram = s.enroll_as(&invited.code, "bram@praktijk.example").await;
    let bram_id = s.state.accounts.user_by_name("bram").unwrap().unwrap().id;
    // Bram has a second factor, two vaults, a support code and a second browser.
    let res = s.call(Call::post("/api/account/totp").session(&bram)).await;
    let secret = res.json()["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, s.clock.now() / 1000).unwrap();
    let res =
        s.call(Call::post("/api/account/totp/confirm").session(&bram).json(serde_json::json!({"code": code}))).await;
    assert_eq!(res.status, StatusCode::OK);
    let (bram_notes, bram_people) = keys(21);
    let notes = App::new(&s, &bram, bram_notes.clone(), "notes").await;
    let save = notes.prepare(&[(id(1), Some(b"S: the canary note"))], RecordKind::Note);
    assert_eq!(notes.save(save).await, StatusCode::NO_CONTENT);
    let people = App::new(&s, &bram, bram_people.clone(), "identities").await;
    let save = people.prepare(&[(id(2), Some(b"a client of bram"))], RecordKind::Identity);
    assert_eq!(people.save(save).await, StatusCode::NO_CONTENT);
    let res = s
        .call(Call::post("/api/account/support").session(&bram).json(serde_json::json!({"scopes": ["view-settings"]})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    // Anna's own vault, which must survive.
    let (anna_keys, _) = keys(22);
    let mut anna_notes = App::new(&s, &anna, anna_keys.clone(), "notes").await;
    let save = anna_notes.prepare(&[(id(3), Some(b"S: anna's client"))], RecordKind::Note);
    assert_eq!(anna_notes.save(save).await, StatusCode::NO_CONTENT);
    anna_notes.sync().await;
    let anna_before = anna_notes.notes.clone();
    let bram_device = s.device_of("bram").unwrap();
    let anna_device = s.device_of("anna").unwrap();
    drop((notes, people, anna_notes));
    let data = s.into_dir();

    // The canaries are in a backup taken before the purge.
    let vault_id = bram_notes.id.to_bytes();
    let (before, restored_before) = backup_plaintext(data.path(), "before.kluis-backup");
    assert!(contains(&before, &vault_id) && contains(&before, b"bram@praktijk.example"));
    assert!(contains(&restored_before, b"bram@praktijk.example"), "the address is in the restored store's files");

    let to_bram = |d: &Path| {
        std::fs::read_dir(d.join("outbox"))
            .unwrap()
            .filter(|e| {
                std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("To: bram@praktijk.example")
            })
            .count()
    };
    assert!(to_bram(data.path()) > 0, "bram's notices are in the outbox");
    // A purge wants the username twice; then it runs on the stopped store.
    let (ok, _, err) = cli::kluis(&["user", "purge", "bram", "--confirm", "anna"], data.path());
    assert!(!ok && err.contains("--confirm must repeat the username"), "{err}");
    let (ok, out, err) = cli::kluis(&["user", "purge", "bram", "--confirm", "bram"], data.path());
    assert!(ok, "{err}");
    assert!(out.contains("purged both vaults") && out.contains("1 support grants"), "{out}");
    let (ok, _, err) = cli::kluis(&["user", "purge", "bram", "--confirm", "bram"], data.path());
    assert!(!ok && err.contains("purged already"), "{err}");
    assert_eq!(to_bram(data.path()), 0, "the mail to bram's address is gone from the outbox");

    // No backup taken now holds any of it: not the vaults, not the address, not the TOTP
    // secret's sealing, not a session. Only the login's tombstone is left.
    let (after, restored_after) = backup_plaintext(data.path(), "after.kluis-backup");
    // sled's log may keep the old pages in the purged store's files for a while; a store
    // restored from a backup taken after the purge holds none of them (docs/PURGE.md).
    assert!(!contains(&restored_after, b"bram@praktijk.example"), "a restored store's files hold bram's address");
    assert!(!contains(&restored_after, &vault_id), "a restored store's files hold bram's vault");
    assert!(!contains(&after, &vault_id), "bram's notes vault is still in the backup");
    assert!(!contains(&after, &bram_people.id.to_bytes()), "bram's identities vault is still in the backup");
    assert!(!contains(&after, b"bram@praktijk.example"), "bram's address is still in the backup");
    let backup = kluis_core::backup::decode(&after).unwrap();
    let bram_hex = bram_id.to_string();
    for item in &backup.items {
        if let kluis_core::backup::Item::Pair { key, value } = item {
            let text = String::from_utf8_lossy(value);
            if key.starts_with(&bram_id.0) && !text.contains("\"state\":\"purged\"") {
                panic!("a record keyed by bram is left: {text}");
            }
            if text.contains(&bram_hex) {
                assert!(
                    text.contains("\"state\":\"purged\"")
                        || text.contains("\"kind\":\"purged\"")
                        || !text.contains('@'),
                    "a record naming bram is left: {text}"
                );
                assert!(!text.contains("\"totp\""), "bram's second factor is left: {text}");
            }
        }
    }
    drop((before, after, restored_before, restored_after));

    // Nothing of bram answers any more; anna's practice is whole.
    let s = TestServer::open(data);
    assert_eq!(s.call(Call::get("/api/me").session(&bram)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.sign_in_from("bram", PASSWORD, Some(&bram_device)).await.status, StatusCode::UNAUTHORIZED);
    assert!(s.state.notes.vault_of(&bram_id.0).unwrap().is_none());
    assert!(s.state.identities.vault_of(&bram_id.0).unwrap().is_none());
    let vault = hex::encode(vault_id);
    let res = s.sign_in_from("anna", PASSWORD, Some(&anna_device)).await;
    let anna = res.set_cookie("__Host-kluis-session").unwrap();
    assert_eq!(
        s.call(Call::get(&format!("/api/vaults/{vault}/head")).session(&anna)).await.status,
        StatusCode::NOT_FOUND
    );
    let mut anna_notes = App::existing(&s, &anna, anna_keys);
    anna_notes.sync().await;
    assert_eq!(anna_notes.notes, anna_before);
    let users = s.call(Call::get("/api/practice/users").session(&anna)).await.json();
    let row = users.as_array().unwrap().iter().find(|u| u["username"] == "bram").unwrap().clone();
    assert_eq!((row["state"].as_str(), row["email"].as_str()), (Some("purged"), None), "{row}");
    let events = s.call(Call::get("/api/practice/events").session(&anna)).await.json();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["username"] == "bram")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["purged"], "the security events about bram are gone but the purge");
    let log = s.call(Call::get("/api/practice/sign-ins").session(&anna)).await.json();
    // Bram's rows are gone, and the attempt on the purged login since (above) names no
    // account: it is logged as an unmatched username.
    assert!(log.as_array().unwrap().iter().all(|r| r["username"] != "bram"), "{log}");
    let trail = s.call(Call::get("/api/practice/audit").session(&anna)).await.json();
    let purged: Vec<_> = trail["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "purged").collect();
    assert_eq!(purged.len(), 1);
    assert_eq!(
        (purged[0]["subject"].as_str(), purged[0]["actor"].as_str()),
        (Some(bram_hex.as_str()), Some("operator"))
    );
    // An admin can no longer act on it: no reset, no IP release (each would name it again).
    let reset = Call::post("/api/practice/users/bram/second-factor-reset")
        .session(&anna)
        .json(serde_json::json!({"verified_by": "Anna", "evidence": "in-person"}));
    assert_eq!(s.call(reset).await.status, StatusCode::NOT_FOUND);
    let release = Call::post("/api/practice/ip-release")
        .session(&anna)
        .json(serde_json::json!({"username": "bram", "reason": "a police request, ref 2026-117"}));
    assert_eq!(s.call(release).await.status, StatusCode::NOT_FOUND);
    let data = s.into_dir();
    let (ok, _, err) =
        cli::kluis(&["user", "reset-2fa", "bram", "--verified-by", "Anna", "--evidence", "in-person"], data.path());
    assert!(!ok, "the operator cannot reset a purged account either: {err}");
    // Those attempts left nothing for a purge to find.
    let (ok, _, err) = cli::kluis(&["user", "purge", "bram", "--confirm", "bram"], data.path());
    assert!(!ok && err.contains("purged already"), "{err}");

    // Transfer: refused for an account that was not purged; for bram, a new login and code.
    let (ok, _, err) = cli::kluis(&["user", "transfer", "anna", "--to", "noor"], data.path());
    assert!(!ok && err.contains("only a purged account can be transferred"), "{err}");
    let (ok, _, err) = cli::kluis(&["user", "transfer", "bram", "--to", "anna"], data.path());
    assert!(!ok && err.contains("taken"), "{err}");
    let (ok, out, err) = cli::kluis(&["user", "transfer", "bram", "--to", "carla"], data.path());
    assert!(ok, "{err}");
    let code = out.lines().find_map(|l| l.strip_prefix("enrollment code:")).unwrap().trim().to_owned();
    assert!(out.contains("username:        carla") && out.contains("practice:        Praktijk Jansen"), "{out}");
    let s = TestServer::open_now(data);
    assert_eq!(s.sign_in("bram", PASSWORD).await.status, StatusCode::UNAUTHORIZED, "the old login is gone");
    let carla = s.enroll(&code).await;
    let me = s.call(Call::get("/api/me").session(&carla)).await.json();
    assert_eq!((me["username"].as_str(), me["second_factor"].as_bool()), (Some("carla"), Some(false)), "{me}");
    // Her history starts at the transfer: the purge is in the practice's audit trail, not hers.
    let events = s.call(Call::get("/api/account/events").session(&carla)).await.json();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"transferred") && !kinds.contains(&"purged"), "{events}");
    assert_eq!(me["second_factor_due"], false, "{me}");
    let sign_ins = s.call(Call::get("/api/sign-ins").session(&carla)).await.json();
    assert!(sign_ins.as_array().unwrap().iter().all(|r| r["at_ms"].as_u64() >= Some(s.clock.now())), "{sign_ins}");
    let devices = s.call(Call::get("/api/devices").session(&carla)).await.json();
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1, "only the browser carla enrolled with: {devices}");
    // She starts with no vault, and makes her own.
    let (carla_keys, _) = keys(23);
    assert!(s.state.notes.vault_of(&bram_id.0).unwrap().is_none());
    let mut carla_notes = App::new(&s, &carla, carla_keys, "notes").await;
    assert_eq!(carla_notes.sync().await, 0);
    drop(carla_notes);
    let (ok, _, err) = cli::kluis(&["user", "transfer", "carla", "--to", "dirk"], s.into_dir().path());
    assert!(!ok && err.contains("only a purged account"), "an enrolled account is not transferred again: {err}");
}

#[tokio::test]
async fn a_purge_cut_short_between_the_account_and_its_vaults_is_finished_by_running_it_again() {
    let s = TestServer::cheap();
    let bram = s.practice("P", "bram").await;
    let (k, _) = keys(31);
    let notes = App::new(&s, &bram, k.clone(), "notes").await;
    let save = notes.prepare(&[(id(1), Some(b"S: kept until the purge ends"))], RecordKind::Note);
    assert_eq!(notes.save(save).await, StatusCode::NO_CONTENT);
    drop(notes);
    // The crash: the account is purged, its vault not yet.
    let bram_id = s.state.accounts.user_by_name("bram").unwrap().unwrap().id;
    s.state.accounts.purge_user(&bram_id).unwrap();
    assert!(s.state.notes.vault_of(&bram_id.0).unwrap().is_some());
    let data = s.into_dir();
    // The new owner would inherit the vault: no transfer until the purge is finished.
    let (ok, _, err) = cli::kluis(&["user", "transfer", "bram", "--to", "carla"], data.path());
    assert!(!ok && err.contains("a vault of this account is left"), "{err}");
    let (ok, out, err) = cli::kluis(&["user", "purge", "bram", "--confirm", "bram"], data.path());
    assert!(ok, "{err}");
    assert!(out.contains("purged the notes vault"), "{out}");
    let s = TestServer::open(data);
    assert!(s.state.notes.vault_of(&bram_id.0).unwrap().is_none());
    assert!(matches!(s.state.notes.record(&k.id, &id(1), None), Err(kluis_server::store::StoreError::NotFound)));
}
