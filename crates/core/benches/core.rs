//! kluis-core benchmarks. Every figure is printed beside a baseline measured in the same process
//! (raw AES-256-GCM, raw Argon2id), with the ratio, because these machines are shared and noisy.
//!
//! ```sh
//! cargo bench -p kluis-core          # full run (release profile, ~1 minute)
//! cargo test  -p kluis-core --benches  # smoke: each measurement runs a few times, asserts nothing
//! ```
//!
//! A hand-rolled harness rather than Criterion: the point is the ratio to a baseline in the same
//! run, which Criterion's API does not hand back to the program.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    missing_docs
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use kluis_core::envelope;
use kluis_core::manifest::{Entry, EntryState, Manifest, verify};
use kluis_core::rand_core::{OsRng, RngCore, UnwrapErr};
use kluis_core::{
    EnvelopeHash, KdfParams, KeyFile, KeyHierarchy, Passphrase, RecordHeader, RecordId, RecordKind, StrongPassphrase,
    UnlockedKeyFile, VaultSecret,
};

struct Bench {
    smoke: bool,
}

impl Bench {
    /// Median time of one call of `f`, over samples of ~`budget` each.
    fn time(&self, mut f: impl FnMut()) -> Duration {
        let (samples, budget) =
            if self.smoke { (2, Duration::from_millis(2)) } else { (15, Duration::from_millis(60)) };
        // Warm up and calibrate the number of calls per sample.
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed() < budget || calls == 0 {
            f();
            calls += 1;
        }
        let mut times: Vec<Duration> = (0..samples)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..calls {
                    f();
                }
                t.elapsed() / calls
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn envelopes(b: &Bench) {
    let h = KeyHierarchy::derive(&VaultSecret::generate());
    let raw = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let mut rng = UnwrapErr(OsRng);
    println!(
        "\nRecord envelope vs raw AES-256-GCM (same process; ratio = envelope / raw throughput; target >= 0.90 at 16 KiB)"
    );
    println!("{:<6} {:>9} {:>14} {:>14} {:>7}", "op", "size", "envelope MB/s", "raw MB/s", "ratio");
    for size in [1024usize, 16 * 1024, 1 << 20, 12_000] {
        let pt = vec![0x5au8; size];
        let header = RecordHeader::first(h.notes.id, RecordId::random(), RecordKind::Note);
        let seal = b.time(|| {
            black_box(envelope::seal(&h.notes, &header, black_box(&pt)).unwrap());
        });
        let raw_seal = b.time(|| {
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            black_box(raw.encrypt(Nonce::from_slice(&nonce), black_box(pt.as_slice())).unwrap());
        });
        let sealed = envelope::seal(&h.notes, &header, &pt).unwrap();
        let raw_ct = raw.encrypt(Nonce::from_slice(&[1; 12]), pt.as_slice()).unwrap();
        let open = b.time(|| {
            black_box(envelope::open(&h.notes, black_box(&sealed)).unwrap());
        });
        let raw_open = b.time(|| {
            black_box(raw.decrypt(Nonce::from_slice(&[1; 12]), black_box(raw_ct.as_slice())).unwrap());
        });
        for (op, ours, base) in [("seal", seal, raw_seal), ("open", open, raw_open)] {
            println!(
                "{op:<6} {:>9} {:>14.0} {:>14.0} {:>7.2}",
                human(size),
                mbps(size, ours),
                mbps(size, base),
                base.as_secs_f64() / ours.as_secs_f64()
            );
        }
    }
    println!(
        "(12,000 B is not a Padmé bucket: the body is padded to {} B, the cost of hiding sizes.)",
        kluis_core::padded_len(12_000)
    );

    // The browser split: the small steps stay in kluis-core, the bulk AES-GCM may go to WebCrypto.
    let pt = vec![0x5au8; 16 * 1024];
    let sealed =
        envelope::seal(&h.notes, &RecordHeader::first(h.notes.id, RecordId::random(), RecordKind::Note), &pt).unwrap();
    let small = b.time(|| {
        let e = envelope::Envelope::decode(&sealed).unwrap();
        black_box(envelope::unwrap_body(&h.notes, &e).unwrap());
    });
    println!("open 16 KiB, small steps only (decode, unwrap, HKDF, commitment): {:.2} us", small.as_secs_f64() * 1e6);
    let wipe = b.time(|| {
        let v = zeroize::Zeroizing::new(vec![1u8; 16 * 1024]);
        black_box(&v);
    });
    let plain = b.time(|| {
        let v = vec![1u8; 16 * 1024];
        black_box(&v);
    });
    println!(
        "zeroizing a 16 KiB plaintext on drop: {:.2} us (allocation alone {:.2} us)",
        wipe.as_secs_f64() * 1e6,
        plain.as_secs_f64() * 1e6
    );
}

fn manifests(b: &Bench) {
    let h = KeyHierarchy::derive(&VaultSecret::generate());
    println!("\nManifest verification (decode + MAC), baseline: SHA-256 over the same bytes");
    println!("{:>9} {:>10} {:>12} {:>14} {:>7}", "entries", "bytes", "verify ms", "sha256 ms", "ratio");
    for n in [10_000u32, 100_000] {
        let genesis = verify(&Manifest::genesis(&h.notes, 0).encode(), &h.notes, None, &[]).unwrap();
        let changes: BTreeMap<RecordId, Entry> = (0..n)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_be_bytes());
                (RecordId::from_bytes(id), Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&id)) })
            })
            .collect();
        let (_, m) = genesis.prepare_update(&h.notes, changes, 1).unwrap();
        let bytes = m.encode();
        let t = b.time(|| {
            black_box(verify(black_box(&bytes), &h.notes, None, &[]).unwrap());
        });
        let base = b.time(|| {
            black_box(EnvelopeHash::of(black_box(&bytes)));
        });
        println!(
            "{n:>9} {:>10} {:>12.2} {:>14.3} {:>7.1}",
            bytes.len(),
            t.as_secs_f64() * 1e3,
            base.as_secs_f64() * 1e3,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
}

fn key_file_unlock() {
    let file = UnlockedKeyFile::new(VaultSecret::generate(), "bench", 0, None).unwrap();
    let pass = StrongPassphrase::assess(
        Passphrase::new("otter quilt harbour ninety vivid".into()),
        &kluis_passphrase::Zxcvbn,
        &[],
    )
    .unwrap();
    let text = file.to_protected_text(&pass, KdfParams::DEFAULT).unwrap();
    let parsed = KeyFile::parse(text.as_bytes()).unwrap();
    let pw = Passphrase::new("otter quilt harbour ninety vivid".into());
    let bench = Bench { smoke: true }; // Argon2 at 64 MiB is slow enough that a few runs suffice.
    let unlock = bench.time(|| {
        black_box(parsed.unlock(Some(&pw)).unwrap());
    });
    let params =
        argon2::Params::new(KdfParams::DEFAULT.m_kib, KdfParams::DEFAULT.t, KdfParams::DEFAULT.p, Some(32)).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let raw = bench.time(|| {
        let mut out = [0u8; 32];
        argon.hash_password_into(b"otter quilt harbour ninety vivid", &[1; 16], &mut out).unwrap();
        black_box(out);
    });
    println!(
        "\nKey-file unlock with passphrase (Argon2id m=64 MiB, t=3, p=1): {:.0} ms; raw Argon2id {:.0} ms; ratio {:.2}",
        unlock.as_secs_f64() * 1e3,
        raw.as_secs_f64() * 1e3,
        unlock.as_secs_f64() / raw.as_secs_f64()
    );
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let b = Bench { smoke };
    if smoke {
        println!("kluis-core benches, smoke mode (figures meaningless; run `cargo bench -p kluis-core`)");
    }
    envelopes(&b);
    manifests(&b);
    key_file_unlock();
}
