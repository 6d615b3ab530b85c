//! The HTTP load benchmark: the real server (router, accounts, stores, rustls) on a loopback
//! port, driven by a bounded load generator of our own (reqwest clients, one connection each,
//! a fixed number of requests per client). It prints, at 1, 16 and 64 concurrent clients:
//! durable saves (acknowledged after flush), manifest reads and bulk reads, with throughput and
//! p99 latency, beside raw sled insert + flush from one writer in the same run (the ratio);
//! then the time to serve a 10,000-record vault's bulk sync over HTTPS.
//!
//! ```sh
//! cargo bench -p kluis-server --bench http   # full run
//! cargo test  -p kluis-server --bench http   # smoke: a few requests, asserts only success
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
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kluis_core::manifest::{Entry, EntryState, Manifest, VerifiedManifest, verify};
use kluis_core::wire::{SaveRequest, SyncResponse};
use kluis_core::{EnvelopeHash, KeyHierarchy, RecordHeader, RecordId, RecordKind, VaultKeys, VaultSecret, envelope};
use kluis_server::accounts::Accounts;
use kluis_server::accounts::model::Role;
use kluis_server::accounts::password::{FLOOR_M_KIB, FLOOR_T, HashParams, Hasher, Password};
use kluis_server::clock::Clock;
use kluis_server::http::{AppState, app};
use kluis_server::store::Store;

struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
    keys: VaultKeys,
    vault: String,
    head: VerifiedManifest,
    saves: u32,
}

fn keys(n: u32) -> VaultKeys {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[31] = 7;
    KeyHierarchy::derive(&VaultSecret::from_bytes(b)).notes
}

impl Client {
    async fn new(state: &AppState, base: &str, cert: &[u8], n: u32) -> Self {
        let name = format!("user{n}");
        let e = state.accounts.invite("Bench", &name, [Role::Practitioner].into()).unwrap();
        let (_, session) = state
            .accounts
            .enroll_and_sign_in(&e.code, Password::new("lentewind over het wad"), "b@example.org", None, "bench", None)
            .await
            .unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", base.trim_end_matches('/').parse().unwrap());
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert).unwrap())
            .default_headers(headers)
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let keys = keys(n);
        let genesis = Manifest::genesis(&keys, 0).encode();
        let cookie = format!("__Host-kluis-session={}", session.expose());
        let res = http
            .post(format!("{base}api/vaults/notes"))
            .header("cookie", &cookie)
            .header("content-type", "application/cbor")
            .body(genesis.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let head = verify(&genesis, &keys, None, &[]).unwrap();
        Client { http, base: base.to_owned(), cookie, vault: hex::encode(keys.id.to_bytes()), keys, head, saves: 0 }
    }

    /// One save of a new 2 KiB note; returns its latency.
    async fn save(&mut self) -> Duration {
        self.saves += 1;
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&self.saves.to_be_bytes());
        let id = RecordId::from_bytes(id);
        let env = envelope::seal(&self.keys, &RecordHeader::first(self.keys.id, id, RecordKind::Note), &[0x5a; 2048])
            .unwrap();
        let change = Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) };
        let (update, next) = self.head.prepare_update(&self.keys, BTreeMap::from([(id, change)]), 0).unwrap();
        let body = SaveRequest { update: &update.encode(), envelopes: vec![(id, &env)] }.encode();
        let t = Instant::now();
        let res = self
            .http
            .post(format!("{}api/vaults/{}/saves", self.base, self.vault))
            .header("cookie", &self.cookie)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .await
            .unwrap();
        let lat = t.elapsed();
        assert_eq!(res.status(), 204, "{}", res.text().await.unwrap_or_default());
        self.head = verify(&next.encode(), &self.keys, None, &[]).unwrap();
        lat
    }

    async fn get(&self, path: &str) -> (Duration, usize) {
        let t = Instant::now();
        let res = self
            .http
            .get(format!("{}api/vaults/{}/{path}", self.base, self.vault))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let n = res.bytes().await.unwrap().len();
        (t.elapsed(), n)
    }
}

async fn round<F, Fut>(clients: Vec<Client>, per_client: u32, op: F) -> (Vec<Client>, f64, Duration)
where
    F: Fn(Client) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = (Client, Duration)> + Send,
{
    let t = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for _ in 0..per_client {
                    let (back, d) = op(c).await;
                    c = back;
                    lat.push(d);
                }
                (c, lat)
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut lat = Vec::new();
    for task in tasks {
        let (c, l) = task.await.unwrap();
        clients.push(c);
        lat.extend(l);
    }
    let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
    (clients, rate, p99(lat))
}

#[tokio::main]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    // For profiling the save path alone (`perf record`): KLUIS_BENCH_SAVES_ONLY=1.
    let saves_only = std::env::var_os("KLUIS_BENCH_SAVES_ONLY").is_some();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    // Accounts with the cheapest accepted hash: this benchmark measures the record API, and
    // the 64 users it signs in would otherwise take a minute of Argon2 (see --bench password).
    let hasher = Hasher::new(HashParams { m_kib: FLOOR_M_KIB, t: FLOOR_T, p: 1 }, 2);
    let state = AppState {
        accounts: Accounts::open_with(&dir.path().join("accounts"), Clock::System, hasher).unwrap(),
        notes: Store::open(&dir.path().join("notes")).unwrap(),
        identities: Store::open(&dir.path().join("identities")).unwrap(),
        web: None,
    };
    state.accounts.add_practice("Bench", "owner").unwrap();
    let (cert, key, _) = kluis_server::tls::dev_certificate(dir.path()).unwrap();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(cert.clone(), key).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = app(state.clone());
    tokio::spawn(
        axum_server::from_tcp_rustls(listener, config)
            .serve(router.into_make_service_with_connect_info::<SocketAddr>()),
    );
    let base = format!("https://localhost:{port}/");
    let cores = std::thread::available_parallelism().map_or(2, usize::from);

    // Baseline: raw sled, one writer, insert + flush.
    let raw = sled::open(dir.path().join("raw")).unwrap();
    let n_raw: u32 = if smoke { 20 } else { 300 };
    let t = Instant::now();
    for i in 0..n_raw {
        raw.insert(i.to_be_bytes(), vec![0x5a; 2200]).unwrap();
        raw.flush().unwrap();
    }
    let raw_rate = f64::from(n_raw) / t.elapsed().as_secs_f64();
    println!("raw sled insert+flush, one writer: {raw_rate:.0}/s\n");

    // For profiling one level alone: KLUIS_BENCH_CLIENTS=64.
    let only: Option<u32> = std::env::var("KLUIS_BENCH_CLIENTS").ok().and_then(|v| v.parse().ok());
    let levels: Vec<u32> = match only {
        Some(n) => vec![n],
        None if smoke => vec![1, 2],
        None => vec![1, 16, 64],
    };
    let mut next_user = 0;
    println!("{:>8} {:<22} {:>10} {:>9} {:>18}", "clients", "operation", "req/s", "p99 ms", "vs raw sled flush");
    for &n in &levels {
        let mut clients = Vec::new();
        for _ in 0..n {
            next_user += 1;
            clients.push(Client::new(&state, &base, &cert, next_user).await);
        }
        let per = if smoke { 3 } else { (4800 / n).clamp(40, 300) };
        let (cpu0, wall0, flush0) = (cpu_time(), Instant::now(), state.notes.flushes());
        let (clients, rate, p) = round(clients, per, |mut c| async move {
            let d = c.save().await;
            (c, d)
        })
        .await;
        let busy = (cpu_time() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64();
        let per_flush = f64::from(per * n) / (state.notes.flushes() - flush0).max(1) as f64;
        println!(
            "{n:>8} {:<22} {rate:>10.0} {:>9.1} {:>17.2}x   cores busy {busy:.2}/{cores}, {per_flush:.1} saves per fsync",
            "durable save (2 KiB)",
            p.as_secs_f64() * 1e3,
            rate / raw_rate
        );
        if saves_only {
            continue;
        }
        let (clients, rate, p) = round(clients, per, |c| async move {
            let (d, _) = c.get("head").await;
            (c, d)
        })
        .await;
        println!("{n:>8} {:<22} {rate:>10.0} {:>9.1}", "get manifest", p.as_secs_f64() * 1e3);
        let (_, rate, p) = round(clients, per.min(50), |c| async move {
            let (d, _) = c.get("sync?since=0").await;
            (c, d)
        })
        .await;
        println!("{n:>8} {:<22} {rate:>10.0} {:>9.1}", format!("bulk sync ({per} records)"), p.as_secs_f64() * 1e3);
    }

    if saves_only {
        return;
    }
    // The 10,000-record vault: filled through the store, then one bulk sync over HTTPS.
    next_user += 1;
    let c = Client::new(&state, &base, &cert, next_user).await;
    let records: u32 = if smoke { 100 } else { 10_000 };
    let mut head = c.head.clone();
    for chunk in (0..records).collect::<Vec<_>>().chunks(500) {
        let mut changes = BTreeMap::new();
        let mut envs = Vec::new();
        for &i in chunk {
            let mut id = [0u8; 16];
            id[4..8].copy_from_slice(&i.to_be_bytes());
            let id = RecordId::from_bytes(id);
            let env =
                envelope::seal(&c.keys, &RecordHeader::first(c.keys.id, id, RecordKind::Note), &[0x5a; 2048]).unwrap();
            changes.insert(id, Entry { version: 1, state: EntryState::Live(EnvelopeHash::of(&env)) });
            envs.push((id, env));
        }
        let (update, next) = head.prepare_update(&c.keys, changes, 0).unwrap();
        state.notes.save(&c.keys.id, &update.encode(), &envs).await.unwrap();
        head = verify(&next.encode(), &c.keys, None, &[]).unwrap();
    }
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..if smoke { 1 } else { 5 } {
        let (d, n) = c.get("sync?since=0").await;
        times.push(d);
        size = n;
    }
    times.sort();
    let res = c
        .http
        .get(format!("{}api/vaults/{}/sync?since=0", c.base, c.vault))
        .header("cookie", &c.cookie)
        .send()
        .await
        .unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(SyncResponse::decode(&body).unwrap().records.len(), records as usize);
    println!(
        "\nBulk sync of {records} records over HTTPS ({:.1} MB): median {:.0} ms, best {:.0} ms \
         (vaultwarden's sync of 10,000 notes: ~657 ms)",
        size as f64 / 1e6,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}
