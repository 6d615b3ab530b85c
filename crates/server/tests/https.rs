//! The real server: HTTPS on a loopback port with a development certificate, the security
//! headers on every response, and a graceful shutdown that flushes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kluis_server::accounts::Accounts;
use kluis_server::clock::Clock;
use kluis_server::http::{AppState, CSP, app};
use kluis_server::store::Store;
use tower::ServiceExt;

fn state(dir: &std::path::Path) -> AppState {
    AppState {
        accounts: Accounts::open(&dir.join("a"), Clock::System).unwrap(),
        notes: Store::open(&dir.join("n")).unwrap(),
        identities: Store::open(&dir.join("i")).unwrap(),
        web: None,
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    for (path, status) in [
        ("/api/health", StatusCode::OK),
        ("/../../etc/passwd", StatusCode::NOT_FOUND),
        ("/api/nope", StatusCode::NOT_FOUND),
    ] {
        let res = app(state(dir.path())).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let h = res.headers();
        assert_eq!(h["content-security-policy"], CSP);
        assert!(CSP.contains("'wasm-unsafe-eval'") && !CSP.contains("unsafe-inline") && !CSP.contains("'unsafe-eval'"));
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-resource-policy", "same-origin"),
            ("cache-control", "no-store"),
            ("strict-transport-security", "max-age=31536000; includeSubDomains"),
        ] {
            assert_eq!(h[name], value, "{path}: {name}");
        }
        if status == StatusCode::NOT_FOUND {
            assert_eq!(h["content-type"], "application/problem+json");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!((problem["status"].as_u64(), problem["detail"].as_str()), (Some(404), Some("not found")));
        }
    }
    // A dropped store handle must release sled's lock before the next test reopens it.
    drop(dir);
}

/// Starts the binary on port 0 over HTTPS, asks it with curl, and stops it with SIGTERM.
#[test]
fn the_binary_serves_https_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    // The server key kept outside the data directory, named by the environment.
    let keys = tempfile::tempdir().unwrap();
    let server_key = keys.path().join("kluis-server.key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kluis-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("KLUIS_SERVER_KEY", &server_key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first.split_whitespace().find(|w| w.starts_with("https://")).unwrap().to_owned();
    let mut early = Vec::new();
    loop {
        let line = lines.next().unwrap().unwrap();
        let done = line.contains("Stop with Ctrl-C");
        early.push(line);
        assert!(early.len() < 40, "no end of the start-up text: {early:?}");
        if done {
            break;
        }
    }
    let after = |prefix: &str| {
        early
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {early:?}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let plain = after("plain HTTP on ");
    // A first run creates the practice and prints its admin's username and enrollment code.
    let username = after("username:");
    let code = after("enrollment code:");
    assert_eq!(username, "admin");
    let out = Command::new("curl")
        .args(["-sS", "-H", "Cookie: __Host-session=SECRET-COOKIE-VALUE", "--cacert"])
        .arg(dir.path().join("tls/dev-cert.pem"))
        .args(["-D", "-", &format!("{url}api/health")])
        .output()
        .expect("curl is needed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("HTTP/2 200") || text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("strict-transport-security") && text.ends_with("\"ok\""), "{text}");
    // A real client enrolls with the printed code and signs in over real HTTPS.
    let jar = dir.path().join("cookies");
    let origin = url.trim_end_matches('/').to_owned();
    let curl_json = |path: &str, body: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}", "--cacert"])
            .arg(dir.path().join("tls/dev-cert.pem"))
            .args(["-c"])
            .arg(&jar)
            .args(["-b"])
            .arg(&jar)
            .args(["-H", &format!("Origin: {origin}"), "-H", "Content-Type: application/json", "--data", body])
            .arg(format!("{url}{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let enrolled = curl_json(
        "api/enroll",
        &format!(r#"{{"code":"{code}","password":"SECRET-PASSWORD lentewind","email":"admin@example.org"}}"#),
    );
    assert!(enrolled.ends_with("\n201"), "{enrolled}");
    // curl holds no device key: the server asks to confirm this "browser" with the code it
    // mailed (to the outbox, as no relay is set up), every time.
    let signed_in = curl_json("api/sign-in", r#"{"username":"Admin","password":"SECRET-PASSWORD lentewind"}"#);
    assert!(signed_in.ends_with("\n200") && signed_in.contains(r#""second_step":"device""#), "{signed_in}");
    // What follows `marker` in the first outbox message that has it, once it is there.
    let from_outbox = |marker: &str| -> String {
        for _ in 0..100 {
            let mails: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
                .map(|d| {
                    d.map(|f| f.unwrap().path())
                        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                        .map(|p| {
                            let text = std::fs::read_to_string(p).unwrap();
                            text.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
                        })
                        .collect()
                })
                .unwrap_or_default();
            if let Some(m) = mails.iter().find(|m| m.contains(marker)) {
                let at = m.find(marker).unwrap() + marker.len();
                return m[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no message with {marker} reached the outbox");
    };
    let device_code = from_outbox("confirm it: ");
    assert_eq!(device_code.len(), 6, "{device_code}");
    let signed_in = curl_json("api/sign-in/device", &format!(r#"{{"code":"{device_code}"}}"#));
    assert!(signed_in.ends_with("\n200") && signed_in.contains(r#""roles":["practitioner","admin"]"#), "{signed_in}");
    let me = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.path().join("tls/dev-cert.pem"))
        .arg("-b")
        .arg(&jar)
        .arg(format!("{url}api/me"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&me.stdout).contains(r#""username":"admin""#));
    // A password-reset link: its token travels in the URL fragment and a POST body only.
    assert!(curl_json("api/password-reset", r#"{"username":"admin"}"#).ends_with("\n202"));
    let reset_token = from_outbox("act.html#reset=");
    assert!(reset_token.len() >= 16, "{reset_token}");
    let body = format!(r#"{{"token":"{reset_token}","password":"SECRET-NEW-PASSWORD lange zomeravond"}}"#);
    let used = curl_json("api/password-reset/complete", &body);
    assert!(used.ends_with("\n204"), "{used}");
    // Plain HTTP is not served on the HTTPS port, and the plain port only redirects.
    let on_tls_port = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url.replace("https", "http")])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&on_tls_port.stdout), "200");
    let redirect = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            &format!("http://{plain}/api/health?x=1"),
        ])
        .output()
        .unwrap();
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap();
    assert_eq!(String::from_utf8_lossy(&redirect.stdout), format!("308 https://127.0.0.1:{port}/api/health?x=1"));
    // SIGTERM: a graceful stop with a final flush, exit status 0.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    assert!(rest.iter().any(|l| l.contains("everything is on disk")), "{rest:?}");
    // One log line per request with its id, method, path and status; never the cookie.
    let id = text.lines().find_map(|l| l.strip_prefix("x-request-id: ")).unwrap().trim().to_owned();
    let logged =
        rest.iter().chain(&early).find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no log line for {id}: {rest:?}"));
    assert!(logged.contains("GET") && logged.contains("/api/health") && logged.contains("status=200"), "{logged}");
    for secret in ["SECRET-COOKIE-VALUE", "SECRET-PASSWORD", "SECRET-NEW-PASSWORD", &code, &device_code, &reset_token] {
        assert!(!rest.iter().any(|l| l.contains(secret)), "{secret} was logged");
    }
    assert!(!early.iter().any(|l| l.contains("SECRET")), "a secret was logged");
    // The development key is private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/dev-key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // So is the server key, created on first run where KLUIS_SERVER_KEY said, and not in
        // the data directory.
        let mode = std::fs::metadata(&server_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("server.key").exists());
    }
}

/// The browser app is served from memory with its SRI hashes filled in; nothing else is served.
#[tokio::test]
async fn the_app_is_served_with_integrity_hashes() {
    use kluis_server::web::{WebApp, sri};
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("pkg")).unwrap();
    std::fs::write(web.join("app.js"), "console.log('kluis');").unwrap();
    std::fs::write(web.join("pkg/m.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(web.join("notes.secret"), "not a served type").unwrap();
    std::fs::write(
        web.join("index.html"),
        r#"<script src="/app.js" integrity="{{sri:app.js}}"></script><meta data-i="{{sri:pkg/m.wasm}}">"#,
    )
    .unwrap();
    let app_state =
        AppState { web: Some(std::sync::Arc::new(WebApp::load(&web).unwrap().unwrap())), ..state(dir.path()) };
    let get = |path: &str| {
        let router = app(app_state.clone());
        let path = path.to_owned();
        async move {
            let res = router.oneshot(Request::get(path.as_str()).body(Body::empty()).unwrap()).await.unwrap();
            let status = res.status();
            let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (status, ct, res.into_body().collect().await.unwrap().to_bytes().to_vec())
        }
    };
    let (status, ct, body) = get("/").await;
    assert_eq!((status, ct.as_deref()), (StatusCode::OK, Some("text/html; charset=utf-8")));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains(&sri(b"console.log('kluis');")), "{html}");
    assert!(html.contains(&sri(b"\0asm\x01\0\0\0")), "{html}");
    assert!(!html.contains("{{"), "{html}");
    assert_eq!(get("/pkg/m.wasm").await.1.as_deref(), Some("application/wasm"));
    for path in ["/index.html", "/notes.secret", "/../web/app.js", "/pkg/../app.jsx", "/api/nothing"] {
        assert_eq!(get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // An index that names a file that was not built is refused at start-up, not served broken.
    std::fs::write(web.join("index.html"), r#"<script integrity="{{sri:missing.js}}"></script>"#).unwrap();
    assert!(WebApp::load(&web).is_err());
    drop(app_state);
}
