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
use tower::ServiceExt;

/// The host the test requests are addressed to.
pub const HOST: &str = "kluis.test";
/// A password every test user can have.
pub const PASSWORD: &str = "lentewind over het wad";

pub struct TestServer {
    pub state: AppState,
    pub clock: Clock,
    router: Router,
    pub dir: tempfile::TempDir,
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
        Self::build(hasher, None)
    }

    /// A cheap server whose notices go to `mailer`.
    pub fn with_mail(mailer: kluis_server::mail::Mailer) -> Self {
        let params = HashParams {
            m_kib: kluis_server::accounts::password::FLOOR_M_KIB,
            t: kluis_server::accounts::password::FLOOR_T,
            p: 1,
        };
        Self::build(Hasher::new(params, 2), Some(mailer))
    }

    fn build(hasher: Hasher, mailer: Option<kluis_server::mail::Mailer>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::manual(1_800_000_000_000);
        let mut accounts = Accounts::open_with(&dir.path().join("accounts"), clock.clone(), hasher)
            .unwrap()
            .with_server_key(kluis_server::server_key::ServerKey::generate().unwrap());
        if let Some(m) = mailer {
            accounts = accounts.with_mailer(m);
        }
        let state = AppState {
            accounts,
            notes: Store::open(&dir.path().join("notes")).unwrap(),
            identities: Store::open(&dir.path().join("identities")).unwrap(),
            web: None,
        };
        TestServer { router: app(state.clone()), state, clock, dir }
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

    /// Enrolls a user with `code`; returns the session token.
    pub async fn enroll(&self, code: &str) -> String {
        let res = self
            .call(
                Call::post("/api/enroll")
                    .json(serde_json::json!({"code": code, "password": PASSWORD, "email": "someone@example.org"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
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

    /// Signs in; returns the response.
    pub async fn sign_in(&self, username: &str, password: &str) -> Res {
        self.call(Call::post("/api/sign-in").json(serde_json::json!({"username": username, "password": password})))
            .await
    }
}
