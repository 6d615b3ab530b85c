//! Backup and restore throughput, beside baselines in the same run: reading every pair of the
//! same sled trees (what any consistent dump must do) and age-encrypting the same number of
//! bytes to one recipient (what any encrypted backup must do). The write pause lasts as long
//! as the backup, so its time is also how long writes wait.
//!
//! ```sh
//! cargo bench -p kluis-server --bench backup   # full run (20,000 records of 2 KiB)
//! cargo test  -p kluis-server --bench backup   # smoke: 200 records, figures meaningless
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    missing_docs
)]

#[path = "support/measure.rs"]
mod measure;

use std::io::Write;
use std::time::{Duration, Instant};

use kluis_server::backup::Signer;
use kluis_server::backup::snapshot::{KeyFiles, Stores, write_file};

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// The median of three runs of `f`.
fn median3(mut f: impl FnMut() -> Duration) -> Duration {
    let mut v = [f(), f(), f()];
    v.sort();
    v[1]
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let records: u32 = if smoke { 200 } else { 20_000 };
    if smoke {
        println!(
            "kluis-server backup bench, smoke mode (figures meaningless; run `cargo bench -p kluis-server --bench backup`)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Stores shaped like a practice's: records of 2 KiB of (incompressible) ciphertext with
    // their entries, and a small accounts store.
    let open = |n: &str| sled::open(data.join(n)).unwrap();
    let (accounts, notes, identities) = (open("accounts"), open("notes"), open("identities"));
    let mut bytes = 0u64;
    {
        let users = accounts.open_tree("users").unwrap();
        for i in 0..50u32 {
            users.insert(i.to_be_bytes(), vec![b'u'; 600]).unwrap();
        }
        let (recs, entries) = (notes.open_tree("records").unwrap(), notes.open_tree("entries").unwrap());
        let mut batch = (sled::Batch::default(), sled::Batch::default());
        let mut body = vec![0u8; 2048 + 100];
        for i in 0..records {
            getrandom::fill(&mut body).unwrap();
            let key = [&[7u8; 16][..], &i.to_be_bytes(), &[0; 12], &1u64.to_be_bytes()].concat();
            batch.0.insert(key.clone(), body.clone());
            batch.1.insert(&key[..32], vec![1u8; 41]);
            bytes += (body.len() + key.len() + 41 + 32) as u64;
        }
        recs.apply_batch(batch.0).unwrap();
        entries.apply_batch(batch.1).unwrap();
        notes.flush().unwrap();
    }
    let stores = Stores { accounts: &accounts, notes: &notes, identities: &identities, audit_lock: None };
    std::fs::write(data.join("server.key"), [1u8; 32]).unwrap();
    let keys = KeyFiles { server_key: data.join("server.key"), signing_key: data.join("signing.key") };
    let signer = Signer::load_or_create(&keys.signing_key).unwrap();
    let identity = age::x25519::Identity::generate();
    let recipients = vec![identity.to_public()];

    // Baseline 1: read every pair of every tree.
    let read = median3(|| {
        let t = Instant::now();
        let mut n = 0usize;
        for db in [&accounts, &notes, &identities] {
            for name in db.tree_names() {
                for kv in db.open_tree(name).unwrap().iter() {
                    let (k, v) = kv.unwrap();
                    n += k.len() + v.len();
                }
            }
        }
        assert!(n > 0);
        t.elapsed()
    });
    // Baseline 2: age-encrypt as many bytes to one recipient, into a file, synced.
    let plain = vec![0x5au8; bytes as usize];
    let mut k = 0;
    let encrypt = median3(|| {
        k += 1;
        let path = dir.path().join(format!("raw-{k}.age"));
        let t = Instant::now();
        let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).unwrap();
        let mut w = enc.wrap_output(std::io::BufWriter::new(std::fs::File::create(&path).unwrap())).unwrap();
        w.write_all(&plain).unwrap();
        let f = w.finish().unwrap().into_inner().unwrap();
        f.sync_all().unwrap();
        t.elapsed()
    });
    // Ours: the whole backup (read, frame, hash, sign, encrypt, write, sync, link).
    let mut n = 0;
    let mut size = 0;
    let backup = median3(|| {
        n += 1;
        let out = dir.path().join(format!("b-{n}.kluis-backup"));
        let t = Instant::now();
        let s = write_file(&out, 1, &keys, stores, &signer, &recipients).unwrap();
        size = s.bytes;
        t.elapsed()
    });
    // Baseline 3: write as many pairs into a new sled store, in batches, and flush.
    let pairs: Vec<(sled::IVec, sled::IVec)> = notes.open_tree("records").unwrap().iter().map(Result::unwrap).collect();
    let mut w = 0;
    let insert = median3(|| {
        w += 1;
        let t = Instant::now();
        let db = sled::open(dir.path().join(format!("raw-sled-{w}"))).unwrap();
        let tree = db.open_tree("records").unwrap();
        for chunk in pairs.chunks(10_000) {
            let mut batch = sled::Batch::default();
            for (k, v) in chunk {
                batch.insert(k, v);
            }
            tree.apply_batch(batch).unwrap();
        }
        db.flush().unwrap();
        t.elapsed()
    });
    drop((accounts, notes, identities, pairs));
    // Restore: decrypt, check, import into new sled stores, verify the signature, move into place.
    let key = kluis_server::backup::signer::parse_public_key(&signer.public_text()).unwrap();
    let mut r = 0;
    let restore = median3(|| {
        r += 1;
        let target = dir.path().join(format!("restored-{r}"));
        let t = Instant::now();
        kluis_server::backup::restore::restore(
            &dir.path().join("b-1.kluis-backup"),
            std::slice::from_ref(&identity),
            &key,
            &target,
            kluis_server::clock::Clock::System,
        )
        .unwrap();
        t.elapsed()
    });

    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!("{records} records, {mib:.1} MiB of pairs; backup file {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    // One line per measurement: time, throughput, and the ratio to its floor if it has one.
    let row = |label: &str, took: Duration, floor: Option<(Duration, &str)>| {
        let ratio =
            floor.map_or(String::new(), |(f, what)| format!("  {:.2}x ({what})", took.as_secs_f64() / f.as_secs_f64()));
        println!("  {label:<37}{:>7.1} ms  {:>7.0} MiB/s{ratio}", took.as_secs_f64() * 1e3, mib_per_s(bytes, took));
    };
    row("read every pair (baseline)", read, None);
    row("age-encrypt as many bytes (baseline)", encrypt, None);
    row("kluis backup (= the write pause)", backup, Some((read + encrypt, "read + encrypt")));
    row("sled batch insert + flush (baseline)", insert, None);
    row("kluis restore", restore, Some((encrypt + insert, "decrypt-size encrypt + insert")));
    println!("  peak memory {:.0} MiB", measure::peak_rss_mib());
}
