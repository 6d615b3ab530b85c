//! Record-store benchmarks: durable saves (acknowledged after flush) at 1, 16 and 64 concurrent
//! writers, beside raw sled insert + flush from one writer in the same run; and the bulk read of
//! a 10,000-record vault. `--bench http` measures the same over HTTPS.
//!
//! ```sh
//! cargo bench -p kluis-server          # full run
//! cargo test  -p kluis-server --benches  # smoke: a few operations each, asserts nothing
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

#[path = "support/measure.rs"]
mod measure;

use measure::{cpu_time, p99};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};
use kluis_server::store::Store;

fn keys(n: u32) -> VaultKeys {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[31] = 1;
    KeyHierarchy::derive(&VaultSecret::from_bytes(b)).notes
}

/// One save of a new 2 KiB note into `keys`' vault; returns its latency.
async fn save_one(store: &Store, keys: &VaultKeys, i: u32) -> Duration {
    let head = verify(&store.head(&keys.id).await.unwrap(), keys, None, &[]).unwrap();
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    let id = RecordId::from_bytes(id);
    let env = envelope::seal(keys, &RecordHeader::first(keys.id, id, RecordKind::Note), &[0x5a; 2048]).unwrap();
    let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
    let (update, _) = head.prepare_update(keys, BTreeMap::from([(id, change)]), 0).unwrap();
    let bytes = update.encode();
    let t = Instant::now();
    store.save(&keys.id, &bytes, &[(id, env)]).await.unwrap();
    t.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let per_writer: u32 = if smoke { 3 } else { 200 };
    if smoke {
        println!("kluis-server store benches, smoke mode (figures meaningless; run `cargo bench -p kluis-server`)");
    }
    let dir = tempfile::tempdir().unwrap();

    // Baseline: raw sled, one writer, 2 KiB insert + flush each.
    let raw = sled::open(dir.path().join("raw")).unwrap();
    let n_raw = per_writer * 4;
    let t = Instant::now();
    for i in 0..n_raw {
        raw.insert(i.to_be_bytes(), vec![0x5a; 2048]).unwrap();
        raw.flush().unwrap();
    }
    let raw_rate = f64::from(n_raw) / t.elapsed().as_secs_f64();
    println!("\nDurable saves (2 KiB note + manifest update, acknowledged after flush)");
    println!("raw sled insert + flush, 1 writer: {raw_rate:.0}/s (baseline)");
    println!("{:>8} {:>12} {:>10} {:>8}", "writers", "saves/s", "p99 ms", "ratio");

    let store = Store::open(&dir.path().join("store")).unwrap();
    for writers in [1u32, 16, 64] {
        let vaults: Vec<VaultKeys> = (0..writers).map(|w| keys(w + writers * 1000)).collect();
        for k in &vaults {
            store.create_vault(k.id.to_bytes(), &Manifest::genesis(k, 0).encode()).await.unwrap();
        }
        let (t, cpu0, flush0) = (Instant::now(), cpu_time(), store.flushes());
        let tasks: Vec<_> = vaults
            .into_iter()
            .map(|k| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for i in 0..per_writer {
                        lat.push(save_one(&store, &k, i).await);
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for task in tasks {
            lat.extend(task.await.unwrap());
        }
        let busy = (cpu_time() - cpu0).as_secs_f64() / t.elapsed().as_secs_f64();
        let per_flush = lat.len() as f64 / (store.flushes() - flush0).max(1) as f64;
        let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
        println!(
            "{writers:>8} {rate:>12.0} {:>10.2} {:>8.2}   cores busy {busy:.2}, {per_flush:.1} saves per fsync",
            p99(lat).as_secs_f64() * 1e3,
            rate / raw_rate
        );
    }

    // Bulk read of a 10,000-record vault (one manifest read, then every current envelope).
    let n: u32 = if smoke { 100 } else { 10_000 };
    let k = keys(999_999);
    store.create_vault(k.id.to_bytes(), &Manifest::genesis(&k, 0).encode()).await.unwrap();
    let mut head = verify(&store.head(&k.id).await.unwrap(), &k, None, &[]).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut changes = BTreeMap::new();
        let mut envs = Vec::new();
        for &i in chunk {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            let id = RecordId::from_bytes(id);
            let env = envelope::seal(&k, &RecordHeader::first(k.id, id, RecordKind::Note), &[0x5a; 2048]).unwrap();
            changes.insert(id, Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) });
            envs.push((id, env));
        }
        let (update, next) = head.prepare_update(&k, changes, 0).unwrap();
        store.save(&k.id, &update.encode(), &envs).await.unwrap();
        head = verify(&next.encode(), &k, None, &[]).unwrap();
    }
    let t = Instant::now();
    let all = store.records_since(&k.id, 0).await.unwrap();
    let read = t.elapsed();
    let bytes: usize = all.iter().map(|(_, b)| b.len()).sum();
    println!(
        "\nBulk read of {n} records ({:.1} MB of envelopes): {:.1} ms (vaultwarden's full sync of 10,000 notes: ~657 ms)",
        bytes as f64 / 1e6,
        read.as_secs_f64() * 1e3
    );
}
