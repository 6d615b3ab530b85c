//! How the sign-in hash's parameters were chosen, measured here (security-anchors §2.1): the
//! time of one Argon2id hash for OWASP's equivalent minimums and for stronger settings, then a
//! login flood of 64 concurrent verifications through the server's semaphore, with its p99
//! latency and the process's peak memory, beside the cost of one hash in the same run.
//!
//! ```sh
//! cargo bench -p kluis-server --bench password
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

use measure::{p99, peak_rss_mib};
use std::time::Instant;

use kluis_server::accounts::password::{HashParams, Hasher, Password, Verified};

#[tokio::main]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let reps = if smoke { 1 } else { 5 };
    let candidates: &[(&str, HashParams)] = &[
        ("OWASP minimum 19 MiB, t=2", HashParams { m_kib: 19 * 1024, t: 2, p: 1 }),
        ("OWASP / ASVS 46 MiB, t=1", HashParams { m_kib: 46 * 1024, t: 1, p: 1 }),
        ("kluis 64 MiB, t=3, p=1", HashParams::CURRENT),
        ("RFC 9106 2nd: 64 MiB, t=3, p=4", HashParams { m_kib: 64 * 1024, t: 3, p: 4 }),
        ("128 MiB, t=3, p=1", HashParams { m_kib: 128 * 1024, t: 3, p: 1 }),
    ];
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    println!("Argon2id, one hash at a time ({cores} cores):");
    println!("{:<34} {:>10}", "parameters", "ms/hash");
    let mut current_ms = 0.0;
    for (name, params) in candidates.iter().take(if smoke { 1 } else { candidates.len() }) {
        let h = Hasher::new(*params, 1);
        let t = Instant::now();
        for _ in 0..reps {
            h.hash(Password::new("lentewind over het wad")).await.unwrap();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        if *params == HashParams::CURRENT {
            current_ms = ms;
        }
        println!("{name:<34} {ms:>10.1}");
    }

    // A login flood: many sign-ins at once may not take more than one hash's memory per slot.
    let params = if smoke { HashParams { m_kib: 19 * 1024, t: 2, p: 1 } } else { HashParams::CURRENT };
    let hasher = Hasher::new(params, cores);
    let phc = hasher.hash(Password::new("lentewind over het wad")).await.unwrap();
    // Reset the peak-memory mark (Linux: "5" to clear_refs), so the flood's own peak shows.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_mib();
    let flood = if smoke { 4 } else { 64 };
    let t = Instant::now();
    let tasks: Vec<_> = (0..flood)
        .map(|i| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let v = hasher
                    .verify(Password::new(if i % 2 == 0 { "lentewind over het wad" } else { "wrong" }), Some(phc))
                    .await
                    .unwrap();
                assert_eq!(v == Verified::Yes, i % 2 == 0);
                t.elapsed()
            })
        })
        .collect();
    let mut lat = Vec::new();
    for task in tasks {
        lat.push(task.await.unwrap());
    }
    let total = t.elapsed();
    println!(
        "\nLogin flood: {flood} concurrent verifications, {cores} hashing slots: {:.1} sign-ins/s, p99 {:.0} ms \
         (one hash alone: {current_ms:.0} ms); peak memory {:.0} MiB (before the flood {before:.0} MiB; \
         bound: slots x {} MiB)",
        flood as f64 / total.as_secs_f64(),
        p99(lat).as_secs_f64() * 1e3,
        peak_rss_mib(),
        params.m_kib / 1024,
    );
}
