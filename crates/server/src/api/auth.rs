//! Who is asking: the session cookie, the `Origin` check on state-changing requests, and the
//! role checks. Cookies are `__Host-` prefixed, Secure, HttpOnly and SameSite=Strict.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::ApiError;
use crate::accounts::Signed;
use crate::accounts::model::Role;
use crate::http::AppState;

/// The session cookie (a `__Host-` cookie: Secure, path `/`, no Domain, so no other host or
/// path can set or shadow it).
pub const SESSION_COOKIE: &str = "__Host-kluis-session";
/// The header the browser app sets on requests caused by user input; only these extend the
/// idle timeout (background refreshes do not).
pub const ACTIVITY_HEADER: &str = "x-kluis-activity";

/// The value of a cookie, if the request carries it exactly once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(v);
                }
            }
        }
    }
    found
}

/// `Set-Cookie` for a session.
pub fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The cookie of a sign-in waiting for its second factor.
pub const TICKET_COOKIE: &str = "__Host-kluis-ticket";

/// `Set-Cookie` for a sign-in ticket (it lives as long as the server keeps the ticket, `ms`).
pub fn ticket_cookie(token: &str, ms: u64) -> String {
    let max_age = ms / 1000;
    format!("{TICKET_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

/// `Set-Cookie` that removes the ticket cookie.
pub fn cleared_ticket_cookie() -> String {
    format!("{TICKET_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Refuses (403) a user whose practice requires a second factor they have not set up: until
/// then they reach only their own account pages, where they set one up. (A session of a user
/// with a second factor passed it: `Accounts::authenticate` ends any other.)
pub fn require_ready(state: &AppState, signed: &Signed) -> Result<(), ApiError> {
    if signed.user.second_factor.is_some() && signed.session.second_factor {
        return Ok(());
    }
    if signed.user.second_factor_due {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "your second factor was reset: set up a new one first"));
    }
    let required = match signed.user.practice {
        Some(p) => state.accounts.practice(&p)?.policy.requires_second_factor(),
        None => false,
    };
    if required {
        Err(ApiError::new(StatusCode::FORBIDDEN, "your practice requires a second factor: set one up first"))
    } else {
        Ok(())
    }
}

/// The practice of a signed-in admin who may act on it now: the admin role, the practice's
/// second-factor requirement met, and a practice (the operator's staff have none).
pub fn admin_practice(state: &AppState, signed: &Signed) -> Result<crate::accounts::model::Id, ApiError> {
    require(signed, Role::Admin)?;
    require_ready(state, signed)?;
    signed.user.practice.ok_or_else(ApiError::forbidden)
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(ApiError::unauthenticated)?;
        let activity = parts.headers.get(ACTIVITY_HEADER).is_some_and(|v| v == "user");
        state.accounts.authenticate(token, activity)?.ok_or_else(ApiError::unauthenticated)
    }
}

/// Refuses unless the signed-in user has `role`.
pub fn require(signed: &Signed, role: Role) -> Result<(), ApiError> {
    if signed.user.roles.contains(&role) { Ok(()) } else { Err(ApiError::forbidden()) }
}

/// The origin this request was addressed to: `https://` and its Host (or HTTP/2 authority).
fn own_origin(req: &Request) -> Option<String> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))?;
    Some(format!("https://{host}"))
}

/// Cross-site request forgery defence: a request that can change state (anything but GET,
/// HEAD and OPTIONS) must carry an `Origin` header naming this very origin. Browsers always
/// send `Origin` on such requests, and a page elsewhere cannot forge it. The one exception is
/// the one-click unsubscribe of RFC 8058, which a mail provider posts from its own servers: it
/// uses no cookie, only the unguessable token in its link, so there is nothing to forge.
pub async fn check_origin(State(_): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == crate::accounts::UNSUBSCRIBE_PATH
    {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
    match (origin, own_origin(&req)) {
        (Some(o), Some(own)) if o.eq_ignore_ascii_case(&own) => next.run(req).await,
        _ => ApiError::new(StatusCode::FORBIDDEN, "this request must come from the kluis page itself (Origin check)")
            .into_response(),
    }
}
