//! The JSON and CBOR API under `/api`. Every route is in [`ROUTES`], which the OpenAPI
//! description (`/api/openapi.json`) and the authorisation matrix test are both checked
//! against, so a new endpoint cannot skip either.

pub mod account;
pub mod auth;
pub mod devices;
pub mod notifications;
pub mod problem;
pub mod second_factor;
pub mod support;
pub mod vaults;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};

use crate::http::AppState;

/// Largest JSON body (sign-in, enrollment, invitations).
pub const MAX_JSON_BYTES: usize = 16 * 1024;
/// Largest genesis manifest (FORMAT.md §4.1 with no entries is under 200 bytes).
pub const MAX_GENESIS_BYTES: usize = 4 * 1024;

/// Every route: method and path (axum syntax).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/enroll"),
    ("POST", "/api/sign-in"),
    ("POST", "/api/sign-in/challenge"),
    ("POST", "/api/sign-in/second-factor"),
    ("POST", "/api/sign-in/device"),
    ("POST", "/api/sign-in/device/wait"),
    ("POST", "/api/sign-out"),
    ("POST", "/api/not-me"),
    ("POST", "/api/password-reset"),
    ("POST", "/api/password-reset/complete"),
    ("GET", "/api/me"),
    ("GET", "/api/sessions"),
    ("GET", "/api/sign-ins"),
    ("GET", "/api/account/events"),
    ("DELETE", "/api/sessions/{id}"),
    ("POST", "/api/account/totp"),
    ("GET", "/api/account/totp/qr.svg"),
    ("POST", "/api/account/totp/confirm"),
    ("POST", "/api/account/recovery-codes"),
    ("GET", "/api/account/notifications"),
    ("PUT", "/api/account/notifications"),
    ("GET", "/api/devices"),
    ("PUT", "/api/devices/{id}"),
    ("DELETE", "/api/devices/{id}"),
    ("POST", "/api/devices/pending/{id}/approve"),
    ("POST", "/api/devices/pending/{id}/deny"),
    ("GET", "/api/unsubscribe"),
    ("POST", "/api/unsubscribe"),
    ("GET", "/api/practice/users"),
    ("POST", "/api/practice/invitations"),
    ("GET", "/api/practice/sign-ins"),
    ("GET", "/api/practice/events"),
    ("POST", "/api/practice/users/{username}/second-factor-reset"),
    ("POST", "/api/practice/users/{username}/disable"),
    ("POST", "/api/practice/users/{username}/enable"),
    ("POST", "/api/practice/users/{username}/invitation"),
    ("POST", "/api/practice/ip-release"),
    ("GET", "/api/practice/audit"),
    ("GET", "/api/account/support"),
    ("POST", "/api/account/support"),
    ("DELETE", "/api/account/support/{id}"),
    ("POST", "/api/support/redeem"),
    ("GET", "/api/support/sessions"),
    ("POST", "/api/support/sessions/{id}/end"),
    ("GET", "/api/support/sessions/{id}/settings"),
    ("GET", "/api/support/sessions/{id}/devices"),
    ("GET", "/api/support/sessions/{id}/sign-ins"),
    ("GET", "/api/support/sessions/{id}/second-factor"),
    ("GET", "/api/support/sessions/{id}/storage"),
    ("POST", "/api/support/sessions/{id}/invitations/{username}"),
    ("DELETE", "/api/support/sessions/{id}/devices/{device}"),
    ("GET", "/api/practice/policy"),
    ("PUT", "/api/practice/policy"),
    ("POST", "/api/vault-key"),
    ("POST", "/api/vaults/{kind}"),
    ("GET", "/api/vaults/{vault}/sync"),
    ("GET", "/api/vaults/{vault}/head"),
    ("POST", "/api/vaults/{vault}/saves"),
    ("GET", "/api/vaults/{vault}/records/{record}"),
];

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../openapi.json");

async fn health() -> axum::Json<&'static str> {
    axum::Json("ok")
}

async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The API routes.
pub fn router() -> Router<AppState> {
    let json = DefaultBodyLimit::max(MAX_JSON_BYTES);
    Router::new()
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/enroll", post(account::enroll).layer(json))
        .route("/api/sign-in", post(account::sign_in).layer(json))
        .route("/api/sign-in/challenge", post(devices::challenge))
        .route("/api/sign-in/second-factor", post(second_factor::second_step).layer(json))
        .route("/api/sign-in/device", post(devices::confirm).layer(json))
        .route("/api/sign-in/device/wait", post(devices::wait))
        .route("/api/sign-out", post(account::sign_out).layer(json))
        .route("/api/not-me", post(account::not_me).layer(json))
        .route("/api/password-reset", post(account::ask_password_reset).layer(json))
        .route("/api/password-reset/complete", post(account::complete_password_reset).layer(json))
        .route("/api/me", get(account::me))
        .route("/api/sessions", get(account::sessions))
        .route("/api/sign-ins", get(account::my_sign_ins))
        .route("/api/account/events", get(account::my_events))
        .route("/api/sessions/{id}", delete(account::revoke_session))
        .route("/api/account/totp", post(second_factor::begin).layer(json))
        .route("/api/account/totp/qr.svg", get(second_factor::qr))
        .route("/api/account/totp/confirm", post(second_factor::confirm).layer(json))
        .route("/api/account/recovery-codes", post(second_factor::regenerate).layer(json))
        .route("/api/account/notifications", get(notifications::get).put(notifications::set).layer(json))
        .route("/api/devices", get(devices::list))
        .route("/api/devices/{id}", put(devices::rename).delete(devices::revoke).layer(json))
        .route("/api/devices/pending/{id}/approve", post(devices::approve).layer(json))
        .route("/api/devices/pending/{id}/deny", post(devices::deny))
        .route("/api/unsubscribe", get(notifications::page).post(notifications::unsubscribe).layer(json))
        .route("/api/practice/users", get(account::practice_users))
        .route("/api/practice/invitations", post(account::invite).layer(json))
        .route("/api/practice/sign-ins", get(account::practice_sign_ins))
        .route("/api/practice/events", get(account::practice_events))
        .route("/api/practice/users/{username}/second-factor-reset", post(account::reset_second_factor).layer(json))
        .route("/api/practice/policy", get(account::policy).put(account::set_policy).layer(json))
        .route("/api/practice/users/{username}/disable", post(account::disable_member))
        .route("/api/practice/users/{username}/enable", post(account::enable_member))
        .route("/api/practice/users/{username}/invitation", post(account::resend_invitation))
        .route("/api/practice/ip-release", post(account::ip_release).layer(json))
        .route("/api/practice/audit", get(account::practice_audit))
        .route("/api/account/support", get(support::list).post(support::create).layer(json))
        .route("/api/account/support/{id}", delete(support::end))
        .route("/api/support/redeem", post(support::redeem).layer(json))
        .route("/api/support/sessions", get(support::sessions))
        .route("/api/support/sessions/{id}/end", post(support::end_by_staff))
        .route("/api/support/sessions/{id}/settings", get(support::settings))
        .route("/api/support/sessions/{id}/devices", get(support::devices))
        .route("/api/support/sessions/{id}/sign-ins", get(support::sign_ins))
        .route("/api/support/sessions/{id}/second-factor", get(support::second_factor))
        .route("/api/support/sessions/{id}/storage", get(support::storage))
        .route("/api/support/sessions/{id}/invitations/{username}", post(support::resend_invitation))
        .route("/api/support/sessions/{id}/devices/{device}", delete(support::revoke_device))
        .route("/api/vault-key", post(account::register_vault_key).layer(json))
        .route("/api/vaults/{kind}", post(vaults::create).layer(DefaultBodyLimit::max(MAX_GENESIS_BYTES)))
        .route("/api/vaults/{vault}/sync", get(vaults::sync))
        .route("/api/vaults/{vault}/head", get(vaults::head))
        .route(
            "/api/vaults/{vault}/saves",
            post(vaults::save).layer(DefaultBodyLimit::max(kluis_core::spec::MAX_SAVE_BYTES)),
        )
        .route("/api/vaults/{vault}/records/{record}", get(vaults::record))
}
