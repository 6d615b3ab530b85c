//! The HTTP layer: routes, security headers on every response, body limits, JSON problems.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::accounts::Accounts;
use crate::api::problem::ApiError;
use crate::store::Store;

/// Largest request body on any route (a save); each route has its own, smaller limit too.
pub const MAX_BODY_BYTES: usize = kluis_core::spec::MAX_SAVE_BYTES;

/// The strict Content-Security-Policy (security-anchors §2.7): scripts only from this origin,
/// WebAssembly allowed without `eval`, nothing inline.
pub const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self'; \
style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
require-trusted-types-for 'script'";

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Practices, users, sessions, the sign-in log.
    pub accounts: Accounts,
    /// The notes vaults.
    pub notes: Store,
    /// The identities vaults, stored apart.
    pub identities: Store,
    /// The browser app's files, if built.
    pub web: Option<std::sync::Arc<crate::web::WebApp>>,
}

/// Everything that is no API route: the browser app's files (GET and HEAD only), else a 404
/// problem.
async fn fallback(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let path = uri.path();
    if (method == axum::http::Method::GET || method == axum::http::Method::HEAD) && !path.starts_with("/api/") {
        match &state.web {
            Some(web) => {
                if let Some(res) = web.get(path) {
                    return res;
                }
            }
            None if path == "/" => return crate::web::not_built(),
            None => {}
        }
    }
    ApiError::not_found().into_response()
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// The plain-HTTP service: every request is answered with a permanent redirect to the same path
/// over HTTPS on `https_port`, and nothing else (no content is ever served without TLS).
pub fn redirect_app(https_port: u16) -> Router {
    Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name))
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b)))
            .unwrap_or("localhost")
            .to_owned();
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let location = format!("https://{host}:{https_port}{path}");
        (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response()
    })
}

/// Makes every error a JSON problem: responses that axum or tower produce on their own (an
/// unknown method, a body over the limit) get the same RFC 9457 body as the handlers' errors.
async fn problem_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return res;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the body is larger than this endpoint takes (nothing was stored)",
        StatusCode::METHOD_NOT_ALLOWED => "this endpoint does not take that method",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "this endpoint does not take that content type",
        s if s.is_server_error() => "internal error",
        _ => "the request is not what this endpoint takes",
    };
    let mut out = ApiError::new(status, detail).into_response();
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Logs one line per request: a request id (also returned as `x-request-id`), the method, the
/// path without its query, the status and the time taken. Never bodies, cookies, headers or
/// query strings, which may carry what must not be logged.
async fn log_request(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let id = format!("{:x}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    let start = std::time::Instant::now();
    let mut res = next.run(req).await;
    tracing::info!(request = %id, %method, %path, status = res.status().as_u16(), ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX), "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    res
}

/// The application: every route, wrapped in the security headers and the body limit.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(crate::api::router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.accounts.write_pause().clone(), crate::pause::hold_writes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::auth::check_origin))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(problem_bodies))
        .layer(header_layer(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(HeaderName::from_static("cross-origin-opener-policy"), "same-origin"))
        .layer(header_layer(HeaderName::from_static("cross-origin-embedder-policy"), "require-corp"))
        .layer(header_layer(HeaderName::from_static("cross-origin-resource-policy"), "same-origin"))
        .layer(header_layer(header::CACHE_CONTROL, "no-store"))
        .layer(axum::middleware::from_fn(log_request))
}
