//! Crash safety (security-anchors §4.7): a child process saves in a loop and reports each save
//! once it is acknowledged; the parent kills it with SIGKILL at a random moment, reopens the
//! store, and checks that every acknowledged save is there with its manifest, that the manifest
//! verifies and chains, and that no record is without its manifest or the reverse.
//!
//! CI runs a few rounds; `KLUIS_CRASH_ROUNDS=100 cargo test -p kluis-server --test crash` runs
//! the long version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};
use kluis_server::store::Store;

const CHILD_ENV: &str = "KLUIS_CRASH_CHILD_DIR";

fn keys() -> VaultKeys {
    KeyHierarchy::derive(&VaultSecret::from_bytes([7; 32])).notes
}

/// The child: create the vault if needed, then save forever, printing each acknowledged counter.
async fn writer(dir: &str) {
    let store = Store::open(std::path::Path::new(dir)).unwrap();
    let keys = keys();
    if store.head(&keys.id).await.is_err() {
        store.create_vault([1; 16], &Manifest::genesis(&keys, 0).encode()).await.unwrap();
    }
    loop {
        let head = verify(&store.head(&keys.id).await.unwrap(), &keys, None, &[]).unwrap();
        let n = head.manifest().counter;
        let id = RecordId::from_bytes([(n % 200) as u8; 16]);
        let header = match store.record(&keys.id, &id, None) {
            Ok(prev) => envelope::header_of(&prev).unwrap().next(&prev).unwrap(),
            Err(_) => RecordHeader::first(keys.id, id, RecordKind::Note),
        };
        let env = envelope::seal(&keys, &header, format!("note after save {n}").as_bytes()).unwrap();
        let change = Entry { version: header.version, state: EntryState::Live(EnvelopeHash::of(&env)) };
        let (update, _) = head.prepare_update(&keys, BTreeMap::from([(id, change)]), n).unwrap();
        store.save(&keys.id, &update.encode(), &[(id, env)]).await.unwrap();
        println!("ack {}", n + 1);
    }
}

#[test]
fn acknowledged_saves_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        tokio::runtime::Runtime::new().unwrap().block_on(writer(&dir));
        return;
    }
    let rounds: u32 = std::env::var("KLUIS_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let mut acked = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "acknowledged_saves_survive_sigkill", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ack ") {
                    let _ = tx.send(n.parse::<u64>().unwrap());
                }
            }
        });
        // Let it save for a pseudo-random while (10 to 200 ms), then kill it mid-flight.
        let wait = 10 + (u64::from(round) * 7919 + u64::from(std::process::id())) % 190;
        std::thread::sleep(Duration::from_millis(wait));
        Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap();
        while let Ok(n) = rx.try_recv() {
            acked = acked.max(n);
        }
        // Reopen and check.
        let store = Store::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let head_bytes = rt.block_on(store.head(&keys.id)).unwrap();
        let head = verify(&head_bytes, &keys, None, &[]).unwrap();
        let m = head.manifest();
        assert!(m.counter >= acked, "round {round}: acknowledged save {acked} lost (head at {})", m.counter);
        // The saves chain from genesis to the head, and every record the head names is there.
        let genesis =
            kluis_core::manifest::HighWater { counter: 0, chain: kluis_core::manifest::genesis_chain(&keys.id) };
        let updates = store.updates_since(&keys.id, 0).unwrap();
        let updates: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
        verify(&head_bytes, &keys, Some(&genesis), &updates).unwrap();
        let records = rt.block_on(store.records_since(&keys.id, 0)).unwrap();
        head.check_listing(records.iter().map(|(id, b)| (*id, b.as_slice()))).unwrap();
        for (_, b) in &records {
            envelope::open(&keys, b).unwrap();
        }
        acked = m.counter;
    }
    assert!(acked > 0, "the writer never got a save acknowledged");
    println!("{rounds} SIGKILL rounds, {acked} saves, none lost");
}
