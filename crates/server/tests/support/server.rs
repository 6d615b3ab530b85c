//! A kluis server in the test process: the real router over real sled stores in a temporary
//! directory, with a manual clock, driven request by request (no sockets).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kluis_server::accounts::Accounts;
use kluis_server::accounts::model::Role;
use kluis_server::accounts::password::{HashParams, Hasher};
use kluis_server::clock::Clock;
use kluis_server::http::{AppState, app};
use kluis_server::store::Store;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use tower::ServiceExt;

/// The host the test requests are addressed to.
pub const HOST: &str = "kluis.test";
/// Where a test server's manual clock starts.
pub const START_MS: u64 = 1_800_000_000_000;
/// A password every test user can have.
pub const PASSWORD: &str = "lentewind over het wad";

pub struct TestServer {
    pub state: AppState,
    pub clock: Clock,
    router: Router,
    pub dir: tempfile::TempDir,
    /// Each user's own browser: the device key it enrolled with.
    devices: std::sync::Mutex<std::collections::HashMap<String, SigningKey>>,
}

/// A browser's device key (what WebCrypto makes in the app).
pub fn device_key() -> SigningKey {
    loop {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).unwrap();
        if let Ok(k) = SigningKey::from_slice(&b) {
            return k;
        }
    }
}

pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Res {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The value of a cookie this response sets.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers.get_all(header::SET_COOKIE).iter().find_map(|v| {
            let v = v.to_str().ok()?;
            let (k, rest) = v.split_once('=')?;
            (k == name).then(|| rest.split(';').next().unwrap_or("").to_owned())
        })
    }
}

/// A request under construction.
pub struct Call {
    req: axum::http::request::Builder,
    body: Vec<u8>,
    ip: IpAddr,
}

impl Call {
    pub fn new(method: Method, path: &str) -> Self {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, HOST)
            .header(header::ORIGIN, format!("https://{HOST}"));
        // Each call from its own address unless told otherwise: per-IP throttling is tested on
        // its own, and would otherwise throttle every test that makes a few users.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Call { req, body: Vec::new(), ip: IpAddr::from((0x0a00_0000 | n).to_be_bytes()) }
    }
    /// A request without an `Origin` header (what a mail provider's one-click POST looks like).
    pub fn bare(method: Method, path: &str) -> Self {
        let mut c = Self::new(method.clone(), path);
        c.req = Request::builder().method(method).uri(path).header(header::HOST, HOST);
        c
    }
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.req = self.req.header(k, v);
        self
    }
    pub fn cookie(self, cookie: &str) -> Self {
        self.header("cookie", cookie)
    }
    pub fn session(self, token: &str) -> Self {
        self.cookie(&format!("__Host-kluis-session={token}"))
    }
    pub fn json(mut self, v: serde_json::Value) -> Self {
        self.body = v.to_string().into_bytes();
        self.header("content-type", "application/json")
    }
    pub fn cbor(mut self, b: Vec<u8>) -> Self {
        self.body = b;
        self.header("content-type", "application/cbor")
    }
    pub fn raw(mut self, b: Vec<u8>) -> Self {
        self.body = b;
        self
    }
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip = ip;
        self
    }
}

impl TestServer {
    /// A server with the production password parameters.
    pub fn new() -> Self {
        Self::with_hasher(Hasher::new(HashParams::CURRENT, 2))
    }

    /// A server with the cheapest parameters the server still accepts (for tests that make a
    /// hundred failed attempts).
    pub fn cheap() -> Self {
        Self::with_hasher(Hasher::new(
            HashParams {
                m_kib: kluis_server::accounts::password::FLOOR_M_KIB,
                t: kluis_server::accounts::password::FLOOR_T,
                p: 1,
            },
            2,
        ))
    }

    pub fn with_hasher(hasher: Hasher) -> Self {
        Self::build(hasher, None, None)
    }

    /// A cheap server whose notices go to `mailer`.
    pub fn with_mail(mailer: kluis_server::mail::Mailer) -> Self {
        let params = HashParams {
            m_kib: kluis_server::accounts::password::FLOOR_M_KIB,
            t: kluis_server::accounts::password::FLOOR_T,
            p: 1,
        };
        Self::build(Hasher::new(params, 2), Some(mailer), None)
    }

    /// A cheap server that sends one-time codes by SMS through `gateway` too.
    pub fn with_sms(gateway: kluis_server::sms::SmsGateway) -> Self {
        let params = HashParams {
            m_kib: kluis_server::accounts::password::FLOOR_M_KIB,
            t: kluis_server::accounts::password::FLOOR_T,
            p: 1,
        };
        Self::build(Hasher::new(params, 2), None, Some(gateway))
    }

    fn build(
        hasher: Hasher,
        mailer: Option<kluis_server::mail::Mailer>,
        sms: Option<kluis_server::sms::SmsGateway>,
    ) -> Self {
        Self::build_in(tempfile::tempdir().unwrap(), hasher, mailer, sms, START_MS)
    }

    /// A cheap server on the data in `dir`, laid out as `serve` does (a restored backup, say),
    /// its clock a day later than a new server's.
    pub fn open(dir: tempfile::TempDir) -> Self {
        Self::build_in(dir, Hasher::new(Self::cheap_params(), 2), None, None, START_MS + 24 * 60 * 60 * 1000)
    }

    /// As [`open`](Self::open), its clock at the real time now (for codes that the binary made
    /// with the system clock).
    pub fn open_now(dir: tempfile::TempDir) -> Self {
        Self::build_in(dir, Hasher::new(Self::cheap_params(), 2), None, None, Clock::System.now())
    }

    /// Stops the server (its stores close) and hands over its data directory.
    pub fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }

    fn cheap_params() -> HashParams {
        HashParams {
            m_kib: kluis_server::accounts::password::FLOOR_M_KIB,
            t: kluis_server::accounts::password::FLOOR_T,
            p: 1,
        }
    }

    fn build_in(
        dir: tempfile::TempDir,
        hasher: Hasher,
        mailer: Option<kluis_server::mail::Mailer>,
        sms: Option<kluis_server::sms::SmsGateway>,
        start: u64,
    ) -> Self {
        let clock = Clock::manual(start);
        // Without a relay, mail goes to an outbox in the test's directory, as in `serve`.
        let mailer = mailer.unwrap_or_else(|| {
            kluis_server::mail::Mailer::outbox(
                dir.path().join("outbox"),
                "kluis <kluis@kluis.test>",
                "https://kluis.test/",
            )
            .unwrap()
        });
        let mut accounts = Accounts::open_with(&dir.path().join("accounts"), clock.clone(), hasher)
            .unwrap()
            .with_server_key(
                kluis_server::server_key::ServerKey::load_or_create(&dir.path().join("server.key")).unwrap(),
            )
            .with_mailer(mailer);
        if let Some(g) = sms {
            accounts = accounts.with_sms(g);
        }
        let state = AppState {
            accounts,
            notes: Store::open(&dir.path().join("notes")).unwrap(),
            identities: Store::open(&dir.path().join("identities")).unwrap(),
            web: None,
        };
        TestServer { router: app(state.clone()), state, clock, dir, devices: Default::default() }
    }

    pub async fn call(&self, c: Call) -> Res {
        let mut req = c.req.body(Body::from(c.body)).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(c.ip, 40000)));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Res { status, headers, body }
    }

    /// Sends a request built by hand (no default headers).
    pub async fn raw(&self, req: axum::http::request::Builder) -> Res {
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(IpAddr::from([10, 255, 0, 1]), 40000)));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Res { status, headers, body }
    }

    /// A device proof by `key` over a fresh challenge (the `device` field of sign-in and
    /// enrollment bodies).
    pub async fn proof(&self, key: &SigningKey) -> serde_json::Value {
        let res = self.call(Call::post("/api/sign-in/challenge")).await;
        assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
        let challenge = res.json()["challenge"].as_str().unwrap().to_owned();
        let bytes = data_encoding::BASE64URL_NOPAD.decode(challenge.as_bytes()).unwrap();
        let message = [kluis_server::accounts::devices::DEVICE_PROOF_LABEL, &[0], &bytes].concat();
        let sig: p256::ecdsa::Signature = key.sign(&message);
        serde_json::json!({
            "public_key": data_encoding::BASE64URL_NOPAD.encode(key.verifying_key().to_encoded_point(false).as_bytes()),
            "challenge": challenge,
            "signature": data_encoding::BASE64URL_NOPAD.encode(&sig.to_bytes()),
        })
    }

    /// The device key of `username`'s own browser (the one they enrolled with).
    pub fn device_of(&self, username: &str) -> Option<SigningKey> {
        self.devices.lock().unwrap().get(username).cloned()
    }

    /// Enrolls a user with `code` from a new browser, which becomes their trusted device;
    /// returns the session token.
    pub async fn enroll(&self, code: &str) -> String {
        self.enroll_as(code, "someone@example.org").await
    }

    /// As [`enroll`](Self::enroll), with the e-mail address `email`.
    pub async fn enroll_as(&self, code: &str, email: &str) -> String {
        let key = device_key();
        let proof = self.proof(&key).await;
        let res = self
            .call(
                Call::post("/api/enroll")
                    .json(serde_json::json!({"code": code, "password": PASSWORD, "email": email, "device": proof})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
        let username = res.json()["username"].as_str().unwrap().to_owned();
        self.devices.lock().unwrap().insert(username, key);
        res.set_cookie("__Host-kluis-session").unwrap()
    }

    /// A new practice with its first user (admin and practitioner), enrolled; their session.
    pub async fn practice(&self, practice: &str, admin: &str) -> String {
        let e = self.state.accounts.add_practice(practice, admin).unwrap();
        self.enroll(&e.code).await
    }

    /// An enrolled user of `practice` with `roles`; their session.
    pub async fn member(&self, practice: &str, name: &str, roles: &[Role]) -> String {
        let e = self.state.accounts.invite(practice, name, roles.iter().copied().collect::<BTreeSet<_>>()).unwrap();
        self.enroll(&e.code).await
    }

    /// An enrolled support user; their session.
    pub async fn support(&self, name: &str) -> String {
        let e = self.state.accounts.add_support(name).unwrap();
        self.enroll(&e.code).await
    }

    /// Signs in from the user's own browser (its trusted device, if it has one); returns the
    /// response.
    pub async fn sign_in(&self, username: &str, password: &str) -> Res {
        let key = self.device_of(username);
        self.sign_in_from(username, password, key.as_ref()).await
    }

    /// Signs in from a browser with device key `key` (or none); returns the response.
    pub async fn sign_in_from(&self, username: &str, password: &str, key: Option<&SigningKey>) -> Res {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(k) = key {
            body["device"] = self.proof(k).await;
        }
        self.call(Call::post("/api/sign-in").json(body)).await
    }

    /// The one-time codes that confirm new browsers, as sent so far to the outbox, oldest first.
    pub fn device_codes(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path().join("outbox"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| {
                let text = std::fs::read_to_string(f).ok()?.replace("=\r\n", "").replace("=\n", "");
                let at = text.find("confirm it: ")? + "confirm it: ".len();
                text.get(at..at + 6).map(str::to_owned)
            })
            .collect()
    }

    /// Signs `username` in from a new browser (device key `key`, or none) and confirms it with
    /// the code the server sends; returns the session.
    pub async fn sign_in_new_browser(&self, username: &str, key: Option<&SigningKey>) -> String {
        self.state.accounts.mail_sent(std::time::Duration::from_secs(5)).await;
        let before = self.device_codes().len();
        let res = self.sign_in_from(username, PASSWORD, key).await;
        assert_eq!(res.json()["second_step"], "device", "{}", String::from_utf8_lossy(&res.body));
        let ticket = res.set_cookie("__Host-kluis-ticket").unwrap();
        let mut code = None;
        for _ in 0..100 {
            if let Some(c) = self.device_codes().get(before) {
                code = Some(c.clone());
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let code = code.expect("the code reached the outbox");
        let res = self
            .call(
                Call::post("/api/sign-in/device")
                    .cookie(&format!("__Host-kluis-ticket={ticket}"))
                    .json(serde_json::json!({ "code": code })),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", String::from_utf8_lossy(&res.body));
        res.set_cookie("__Host-kluis-session").unwrap()
    }

    /// The second sign-in step: `code` (TOTP or recovery) for the sign-in `ticket`.
    pub async fn second_step(&self, ticket: &str, code: &str) -> Res {
        self.call(
            Call::post("/api/sign-in/second-factor")
                .cookie(&format!("__Host-kluis-ticket={ticket}"))
                .json(serde_json::json!({ "code": code })),
        )
        .await
    }

    /// The id of the device `session` was signed in from, as the devices list names it.
    pub async fn current_device_id(&self, session: &str) -> String {
        let mine = self.call(Call::get("/api/devices").session(session)).await.json();
        mine["devices"].as_array().unwrap().iter().find(|d| d["current"] == true).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The files of the accounts store (flushed first) that hold any of `needles` byte for
    /// byte; panics if the store has no file at all.
    pub async fn accounts_files_holding(&self, needles: &[&[u8]]) -> Vec<std::path::PathBuf> {
        self.state.accounts.flush().await.unwrap();
        let mut files = vec![self.dir.path().join("accounts")];
        let (mut seen, mut holding) = (0, Vec::new());
        while let Some(p) = files.pop() {
            if p.is_dir() {
                files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            seen += 1;
            if needles.iter().any(|n| bytes.windows(n.len()).any(|w| w == *n)) {
                holding.push(p);
            }
        }
        assert!(seen > 0, "the accounts store has no file");
        holding
    }

    /// Every message in the outbox once the notices under way have been written, oldest first.
    pub async fn mails(&self) -> Vec<String> {
        self.state.accounts.mail_sent(std::time::Duration::from_secs(5)).await;
        self.outbox(0).await
    }

    /// The messages in the outbox so far, oldest first (waits up to five seconds for at least
    /// `n`: notices are sent in the background).
    pub async fn outbox(&self, n: usize) -> Vec<String> {
        let dir = self.dir.path().join("outbox");
        for _ in 0..100 {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            if files.len() >= n {
                return files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} messages did not arrive in the outbox");
    }
}
