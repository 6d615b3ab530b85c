//! Backups and restores, as an operator runs them: the drill (a practice with TOTP and two
//! vaults is backed up with the CLI, restored onto an empty directory, and its admin signs in
//! and reads every record back); everything a restore must refuse; the stock `age` tool
//! opening a backup; scheduled backups while serving, and one through the admin socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/cli.rs"]
mod cli;
#[path = "support/server.rs"]
mod server;
#[path = "support/vaults.rs"]
mod vaults;

use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use kluis_core::RecordKind;
use kluis_server::accounts::second_factor::code_at;
use kluis_server::backup::restore::{read_identities, restore};
use kluis_server::backup::signer::parse_public_key;
use kluis_server::backup::snapshot::{KeyFiles, Stores, write_file};
use kluis_server::backup::{BackupError, Signer, parse_recipients};
use kluis_server::clock::Clock;
use server::{Call, PASSWORD, TestServer};
use vaults::{App, id, keys};

/// Makes an age key pair with the CLI; returns the identity file and the recipient.
fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let (ok, out, err) = cli::kluis_bare(&["backup-identity", "--out", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    (file, out.trim().to_owned())
}

/// The signing key a backup message names.
fn signed_with(message: &str) -> String {
    message.lines().find_map(|l| l.strip_prefix("signed with ")).unwrap_or_else(|| panic!("{message}")).to_owned()
}

/// The TOTP code at the server's clock.
fn code(s: &TestServer, secret: &str) -> String {
    code_at(secret, s.clock.now() / 1000).unwrap()
}

/// Whatever a failed restore leaves: the target is still absent, and no staging is left.
fn nothing_left(parent: &Path, target: &Path) {
    assert!(!target.exists(), "a refused restore created {}", target.display());
    let staged: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".restoring-"))
        .collect();
    assert!(staged.is_empty(), "staging left behind: {staged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_a_backup_restores_onto_an_empty_directory_and_its_admin_signs_in() {
    // A practice whose admin has TOTP and a vault of each kind.
    let s = TestServer::cheap();
    let token = s.practice("Praktijk Jansen", "anna").await;
    let res = s.call(Call::post("/api/account/totp").session(&token)).await;
    let secret = res.json()["secret"].as_str().unwrap().to_owned();
    let res = s
        .call(
            Call::post("/api/account/totp/confirm")
                .session(&token)
                .json(serde_json::json!({"code": code(&s, &secret)})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let (note_keys, identity_keys) = keys(7);
    let mut notes = App::new(&s, &token, note_keys, "notes").await;
    let save = notes.prepare(&[(id(1), Some(b"S: slept badly")), (id(2), Some(b"O: knee swollen"))], RecordKind::Note);
    assert_eq!(notes.save(save).await, StatusCode::NO_CONTENT);
    notes.sync().await;
    let save = notes.prepare(&[(id(1), Some(b"S: slept better"))], RecordKind::Note);
    assert_eq!(notes.save(save).await, StatusCode::NO_CONTENT);
    notes.sync().await;
    let mut people = App::new(&s, &token, identity_keys, "identities").await;
    let save = people.prepare(&[(id(9), Some(b"Jan de Vries, 1961"))], RecordKind::Identity);
    assert_eq!(people.save(save).await, StatusCode::NO_CONTENT);
    people.sync().await;
    let (notes_before, people_before) = (notes.notes.clone(), people.notes.clone());
    let audit_before = s.call(Call::get("/api/practice/audit").session(&token)).await.json()["head"].clone();
    let device = s.device_of("anna").unwrap();
    drop((notes, people));
    let data = s.into_dir();

    // The operator's key pair, and a backup of the stopped server with the CLI.
    let keys_dir = tempfile::tempdir().unwrap();
    let (id_file, recipient) = identity(keys_dir.path(), "operator.age");
    let file = keys_dir.path().join("practice.kluis-backup");
    let (ok, out, err) =
        cli::kluis(&["backup", "--out", file.to_str().unwrap(), "--recipient", &recipient], data.path());
    assert!(ok, "{err}");
    let signing_key = signed_with(&out);
    assert!(signing_key.starts_with("ed25519:"), "{out}");
    let (ok, _, err) = cli::kluis(&["backup", "--out", file.to_str().unwrap(), "--recipient", &recipient], data.path());
    assert!(!ok && err.contains("exists already"), "a backup never overwrites a file: {err}");

    // The restore goes onto an empty directory, and a new server signs anna in with her
    // password, her browser's device key and a TOTP code: the server key came along.
    let target = tempfile::tempdir().unwrap();
    let (ok, out, err) = cli::kluis(
        &[
            "restore",
            "--from",
            file.to_str().unwrap(),
            "--identity",
            id_file.to_str().unwrap(),
            "--signing-key",
            &signing_key,
        ],
        target.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("restored backup") && out.contains("audit chains now end with a `restored` entry"), "{out}");
    let s = TestServer::open(target);
    let res = s.sign_in_from("anna", PASSWORD, Some(&device)).await;
    assert_eq!(res.json(), serde_json::json!({"second_step": "totp"}));
    let ticket = res.set_cookie("__Host-kluis-ticket").unwrap();
    let res = s.second_step(&ticket, &code(&s, &secret)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
    let token = res.set_cookie("__Host-kluis-session").unwrap();

    // Both vaults come back whole: a new browser verifies every save and record from genesis.
    let mut notes = App::existing(&s, &token, keys(7).0);
    assert_eq!(notes.sync().await, 2);
    assert_eq!(notes.notes, notes_before);
    assert_eq!(notes.head.manifest().counter, 2);
    let mut people = App::existing(&s, &token, keys(7).1);
    people.sync().await;
    assert_eq!(people.notes, people_before);

    // The trail says a restore happened, right after the head the admin had seen.
    let trail = s.call(Call::get("/api/practice/audit").session(&token)).await.json();
    let entries = trail["entries"].as_array().unwrap();
    let seen = audit_before["seq"].as_u64().unwrap();
    let restored = entries.iter().find(|e| e["kind"] == "restored").expect("a restored entry");
    assert_eq!(restored["seq"].as_u64().unwrap(), seen + 1, "{entries:?}");
    assert_eq!(entries.iter().find(|e| e["seq"].as_u64() == Some(seen)).unwrap()["hash"], audit_before["hash"]);
    let data = s.into_dir();
    let (ok, report, err) = cli::kluis(&["audit", "verify"], data.path());
    assert!(ok, "{report}{err}");
}

#[tokio::test]
async fn a_restore_refuses_what_it_cannot_trust_and_leaves_nothing_behind() {
    let s = TestServer::cheap();
    s.practice("P", "anna").await;
    let data = s.into_dir();
    let keys_dir = tempfile::tempdir().unwrap();
    let (id_file, recipient) = identity(keys_dir.path(), "operator.age");
    let (other_id, _) = identity(keys_dir.path(), "other.age");
    let file = keys_dir.path().join("b.kluis-backup");
    let (ok, out, err) =
        cli::kluis(&["backup", "--out", file.to_str().unwrap(), "--recipient", &recipient], data.path());
    assert!(ok, "{err}");
    let key = parse_public_key(&signed_with(&out)).unwrap();
    let ids = read_identities(&id_file).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    let restore_from = |f: &Path, ids: &[age::x25519::Identity], key| restore(f, ids, key, &target, Clock::System);

    // A store that exists is never written to, running or not.
    let err = restore(&file, &ids, &key, data.path(), Clock::System).unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    // Another server's key, another operator's identity.
    let stranger = Signer::load_or_create(&keys_dir.path().join("stranger.key")).unwrap();
    let stranger_key = parse_public_key(&stranger.public_text()).unwrap();
    assert!(matches!(restore_from(&file, &ids, &stranger_key), Err(BackupError::Signature)));
    nothing_left(parent.path(), &target);
    let others = read_identities(&other_id).unwrap();
    assert!(matches!(restore_from(&file, &others, &key), Err(BackupError::NotForThisIdentity)));
    // Damage anywhere in the age payload, or a cut, is found before anything is kept.
    let bytes = std::fs::read(&file).unwrap();
    for (name, damaged) in [
        ("flipped", {
            let mut b = bytes.clone();
            let at = b.len() / 2;
            b[at] ^= 0x01;
            b
        }),
        ("cut", bytes[..bytes.len() - 100].to_vec()),
    ] {
        let f = keys_dir.path().join(name);
        std::fs::write(&f, damaged).unwrap();
        let err = restore_from(&f, &ids, &key).unwrap_err();
        assert!(matches!(err, BackupError::Damaged | BackupError::Format(_)), "{name}: {err}");
        nothing_left(parent.path(), &target);
    }
    // A forgery: anyone can encrypt to the operator's public recipient, but only the server
    // holds its signing key. Made here from the same stores with another signing key.
    let forged = keys_dir.path().join("forged.kluis-backup");
    {
        let open = |n: &str| sled::open(data.path().join(n)).unwrap();
        let (a, n, i) = (open("accounts"), open("notes"), open("identities"));
        let files =
            KeyFiles { server_key: data.path().join("server.key"), signing_key: keys_dir.path().join("stranger.key") };
        let stores = Stores { accounts: &a, notes: &n, identities: &i, audit_lock: None };
        write_file(&forged, 1, &files, stores, &stranger, &parse_recipients(std::slice::from_ref(&recipient)).unwrap())
            .unwrap();
    }
    assert!(matches!(restore_from(&forged, &ids, &key), Err(BackupError::Signature)));
    nothing_left(parent.path(), &target);
    // Not a backup at all.
    let err = restore_from(&id_file, &ids, &key).unwrap_err();
    assert!(err.to_string().contains("not an age-encrypted kluis backup"), "{err}");
    // And the genuine one, into a directory that exists but is empty.
    std::fs::create_dir(&target).unwrap();
    let done = restore_from(&file, &ids, &key).unwrap();
    assert!(done.pairs >= 10, "{done:?}");
    assert!(target.join("server.key").exists() && target.join("signing.key").exists(), "{done:?}");
    assert_eq!(
        std::fs::read(target.join("server.key")).unwrap(),
        std::fs::read(data.path().join("server.key")).unwrap()
    );
    // Restored once: a second restore onto it is refused.
    assert!(restore_from(&file, &ids, &key).unwrap_err().to_string().contains("is not empty"));
}

#[tokio::test]
async fn the_stock_age_tool_opens_a_backup_and_its_plaintext_is_the_documented_format() {
    let s = TestServer::cheap();
    s.practice("P", "anna").await;
    let data = s.into_dir();
    let keys_dir = tempfile::tempdir().unwrap();
    let (id_file, recipient) = identity(keys_dir.path(), "operator.age");
    let file = keys_dir.path().join("b.kluis-backup");
    let (ok, out, err) =
        cli::kluis(&["backup", "--out", file.to_str().unwrap(), "--recipient", &recipient], data.path());
    assert!(ok, "{err}");
    let plain = std::process::Command::new("age")
        .args(["--decrypt", "--identity"])
        .arg(&id_file)
        .arg(&file)
        .output()
        .expect("the age tool (scripts/setup.sh installs it)");
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let backup = kluis_core::backup::decode(&plain.stdout).unwrap();
    let kluis_core::backup::Item::Signature { public_key, signature } = backup.items.last().unwrap() else {
        panic!("the last item is the signature")
    };
    let key = parse_public_key(&signed_with(&out)).unwrap();
    assert_eq!(*public_key, key.to_bytes());
    assert!(kluis_server::backup::signer::verify(&key, &backup.digest, signature));
    let server_key = std::fs::read(data.path().join("server.key")).unwrap();
    assert!(backup.items.contains(&kluis_core::backup::Item::File { name: "server.key", bytes: &server_key }));
    assert!(backup.items.iter().any(|i| matches!(i, kluis_core::backup::Item::Tree { name, .. } if *name == b"users")));
}

#[test]
fn serve_takes_backups_on_schedule_and_through_the_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = cli::kluis(&["init", "--practice", "P", "--admin", "anna"], &data);
    assert!(ok, "{err}");
    let noted = out.lines().find_map(|l| l.strip_prefix("backup signing key: ")).unwrap().trim().to_owned();
    let (id_file, recipient) = identity(dir.path(), "operator.age");
    let backups = dir.path().join("backups");
    let (server, startup) = cli::Running::serve(
        &data,
        &["--backup-dir", backups.to_str().unwrap(), "--backup-recipient", &recipient, "--keep", "1"],
    );
    assert!(startup.iter().any(|l| l.contains(&format!("backup signing key: {noted}"))), "{startup:?}");
    assert!(startup.iter().any(|l| l.contains("backups: every 1h")), "{startup:?}");
    // None was recent, so one is taken at start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let scheduled = loop {
        let found = kluis_server::backup::schedule::scheduled_backups(&backups).unwrap_or_default();
        if let Some(f) = found.first() {
            break f.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled backup");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // And one on demand, through the running server.
    let manual = dir.path().join("manual.kluis-backup");
    let (ok, out, err) = cli::kluis(&["backup", "--out", manual.to_str().unwrap(), "--recipient", &recipient], &data);
    assert!(ok, "{err}");
    assert_eq!(signed_with(&out), noted);
    server.stop();
    let (ok, report, _) = cli::kluis(&["audit", "verify"], &data);
    assert!(ok && report.contains("the operator: 2 entries"), "two backups on the operator's chain: {report}");
    for (n, f) in [scheduled, manual].iter().enumerate() {
        let target = dir.path().join(format!("restored-{n}"));
        let (ok, out, err) = cli::kluis(
            &[
                "restore",
                "--from",
                f.to_str().unwrap(),
                "--identity",
                id_file.to_str().unwrap(),
                "--signing-key",
                &noted,
            ],
            &target,
        );
        assert!(ok, "{err}");
        assert!(out.contains("restored backup"), "{out}");
        let (ok, report, err) = cli::kluis(&["audit", "verify"], &target);
        assert!(ok && report.contains("P: "), "{report}{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_taken_while_saves_go_on_restore_to_states_that_verify() {
    // Without the write pause, a snapshot could hold a head newer than its entries (sled reads
    // each tree at its own moment), and the restored vault would fail verification.
    let s: &'static TestServer = Box::leak(Box::new(TestServer::cheap()));
    let token = s.practice("P", "anna").await;
    let (vault_keys, _) = keys(3);
    let mut app = App::new(s, &token, vault_keys.clone(), "notes").await;
    let ctx = kluis_server::admin::Context {
        accounts: s.state.accounts.clone(),
        notes: s.state.notes.clone(),
        identities: s.state.identities.clone(),
        keys: KeyFiles { server_key: s.dir.path().join("server.key"), signing_key: s.dir.path().join("signing.key") },
    };
    let writer = tokio::spawn(async move {
        for i in 0..60u8 {
            let text = format!("S: visit {i}");
            let body =
                app.prepare(&[(id(i % 7), Some(text.as_bytes())), (id(100 + i), Some(b"O: -"))], RecordKind::Note);
            assert_eq!(app.save(body).await, StatusCode::NO_CONTENT);
            app.sync().await;
        }
    });
    let out = tempfile::tempdir().unwrap();
    let (id_file, recipient) = identity(out.path(), "operator.age");
    let mut files = Vec::new();
    while !writer.is_finished() {
        let f = out.path().join(format!("{}.kluis-backup", files.len()));
        kluis_server::backup::snapshot::take(&ctx, &f, parse_recipients(std::slice::from_ref(&recipient)).unwrap())
            .await
            .unwrap();
        files.push(f);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    writer.await.unwrap();
    assert!(files.len() >= 3, "only {} backups were taken during the saves", files.len());
    let key =
        parse_public_key(&Signer::load_or_create(&s.dir.path().join("signing.key")).unwrap().public_text()).unwrap();
    let ids = read_identities(&id_file).unwrap();
    let mut counters = Vec::new();
    for f in &files {
        let target = tempfile::tempdir().unwrap();
        restore(f, &ids, &key, target.path(), Clock::System).unwrap();
        let store = kluis_server::store::Store::open(&target.path().join("notes")).unwrap();
        let synced = store.sync(&vault_keys.id, 0, true).await.unwrap();
        let genesis = kluis_core::manifest::verify(
            &kluis_core::manifest::Manifest::genesis(&vault_keys, 1).encode(),
            &vault_keys,
            None,
            &[],
        )
        .unwrap();
        let updates: Vec<&[u8]> = synced.updates.iter().map(Vec::as_slice).collect();
        let head = kluis_core::manifest::verify(&synced.head, &vault_keys, Some(&genesis.high_water()), &updates)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (rid, env) in &synced.records {
            head.check_record(rid, env).unwrap();
        }
        assert_eq!(synced.records.len(), head.manifest().entries.len(), "every listed record is in the backup");
        counters.push(head.manifest().counter);
    }
    assert!(counters.windows(2).all(|w| w[0] <= w[1]), "{counters:?}");
    assert!(counters.first() < counters.last(), "the backups caught the vault at different states: {counters:?}");
}

/// `--backup-every` repeats while serving, and `--keep` leaves only the newest backups.
#[test]
fn scheduled_backups_repeat_and_only_the_newest_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) = cli::kluis(&["init", "--practice", "P", "--admin", "anna"], &data);
    assert!(ok, "{err}");
    let (_, recipient) = identity(dir.path(), "operator.age");
    let backups = dir.path().join("backups");
    let (server, startup) = cli::Running::serve(
        &data,
        &[
            "--backup-dir",
            backups.to_str().unwrap(),
            "--backup-recipient",
            &recipient,
            "--backup-every",
            "10s",
            "--keep",
            "2",
        ],
    );
    assert!(startup.iter().any(|l| l.contains("backups: every 10s")), "{startup:?}");
    let list = || kluis_server::backup::schedule::scheduled_backups(&backups).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut seen = std::collections::BTreeSet::new();
    // Three taken (at start, then every 10 s) ...
    while seen.len() < 3 {
        seen.extend(list());
        assert!(std::time::Instant::now() < deadline, "backups seen: {seen:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // ... and the oldest pruned once the third is whole.
    let newest: Vec<_> = seen.iter().rev().take(2).rev().cloned().collect();
    loop {
        let now = list();
        if now.len() <= 2 {
            let mut now = now;
            now.sort();
            assert_eq!(now, newest, "the newest two stay");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not pruned: {now:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.stop();
}
