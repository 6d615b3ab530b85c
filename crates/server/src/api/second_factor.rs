//! The second factor: setting up TOTP (with its QR code), recovery codes, and the second step
//! of a sign-in.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};

use super::account::{Body, SecretField, body, signed_in};
use super::auth::{SESSION_COOKIE, TICKET_COOKIE, cookie};
use super::problem::ApiError;
use crate::accounts::secrets::Secret;
use crate::accounts::{SecondStep, Signed};
use crate::http::AppState;

/// What the app shows to set up an authenticator app.
#[derive(Serialize)]
pub struct TotpSetup {
    /// The secret in base32, for typing in by hand.
    secret: String,
    /// The `otpauth://` URI (also the QR code's content, `GET /api/account/totp/qr.svg`).
    uri: String,
}

/// `POST /api/account/totp`: begins setting up an authenticator app.
pub async fn begin(State(state): State<AppState>, signed: Signed) -> Result<(StatusCode, Json<TotpSetup>), ApiError> {
    let e = state.accounts.begin_totp(&signed.user.id)?;
    Ok((StatusCode::CREATED, Json(TotpSetup { secret: e.secret.to_string(), uri: e.uri.to_string() })))
}

/// `GET /api/account/totp/qr.svg`: the QR code of the set-up under way.
pub async fn qr(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    let svg = state.accounts.totp_qr_svg(&signed.user.id)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// A code, typed by the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    pub(super) code: SecretField,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup(..)")
    }
}

impl Drop for TotpSetup {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.secret.zeroize();
        self.uri.zeroize();
    }
}

/// Recovery codes, shown once.
#[derive(Serialize)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCodes(..)")
    }
}

impl Drop for RecoveryCodes {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.recovery_codes.zeroize();
    }
}

fn shown(codes: &[Secret]) -> Json<RecoveryCodes> {
    Json(RecoveryCodes { recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect() })
}

/// `POST /api/account/totp/confirm`: the first code from the app turns the second factor on;
/// the answer holds the recovery codes.
pub async fn confirm(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let req = body(req)?;
    Ok(shown(&state.accounts.confirm_totp(&signed, req.code.expose()).await?))
}

/// `POST /api/account/recovery-codes`: a new set, for a current code.
pub async fn regenerate(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<CodeRequest>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let req = body(req)?;
    Ok(shown(&state.accounts.regenerate_recovery_codes(&signed, req.code.expose()).await?))
}

/// `POST /api/sign-in/second-factor`: the code that completes a sign-in begun with the password.
pub async fn second_step(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Body<CodeRequest>,
) -> Result<Response, ApiError> {
    let req = body(req)?;
    let ticket = cookie(&headers, TICKET_COOKIE).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "sign in with your password first (it waits five minutes)")
    })?;
    let step = SecondStep {
        ticket,
        code: req.code.expose(),
        ip: addr.ip(),
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
        old_session: cookie(&headers, SESSION_COOKIE),
    };
    let outcome = state.accounts.second_step(step).await?;
    signed_in(&state, outcome)
}
