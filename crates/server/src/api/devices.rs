//! Trusted devices over HTTP: the challenge a browser signs, the confirmation of a new browser
//! (by code, or by waiting for an approval), and the user's own list of devices, with the new
//! browsers waiting for their approval.

use std::net::SocketAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Json, Response};
use serde::{Deserialize, Serialize};

use super::account::{Body, body, signed_in};
use super::auth::{SESSION_COOKIE, TICKET_COOKIE, cookie};
use super::problem::ApiError;
use super::second_factor::CodeRequest;
use crate::accounts::model::Device;
use crate::accounts::{PendingDevice, SecondStep, Signed};
use crate::http::AppState;

fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn ticket(headers: &HeaderMap) -> Result<&str, ApiError> {
    cookie(headers, TICKET_COOKIE).ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "sign in with your password first (a new browser waits 15 minutes)")
    })
}

/// `POST /api/sign-in/challenge`: a challenge for the browser's device key to sign (it works
/// once, for two minutes).
pub async fn challenge(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(serde_json::json!({ "challenge": state.accounts.device_challenge()? })))
}

/// `POST /api/sign-in/device`: the code sent out of band confirms this new browser.
pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Body<CodeRequest>,
) -> Result<Response, ApiError> {
    let req = body(req)?;
    let step = SecondStep {
        ticket: ticket(&headers)?,
        code: req.code.expose(),
        ip: addr.ip(),
        user_agent: user_agent(&headers),
        old_session: cookie(&headers, SESSION_COOKIE),
    };
    let outcome = state.accounts.confirm_device(step).await?;
    signed_in(&state, outcome)
}

/// `POST /api/sign-in/device/wait`: whether a trusted device approved this new browser yet
/// (the session when it has, 202 while it has not).
pub async fn wait(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = ticket(&headers)?;
    let outcome =
        state.accounts.await_device(t, addr.ip(), user_agent(&headers), cookie(&headers, SESSION_COOKIE)).await?;
    signed_in(&state, outcome)
}

/// A trusted device as its user sees it.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    id: String,
    name: String,
    created_ms: u64,
    last_seen_ms: u64,
    confirmed_by: String,
    /// Whether it is the browser asking.
    current: bool,
}

fn view(d: Device, current: Option<&str>) -> DeviceView {
    DeviceView {
        current: current == Some(d.id.as_str()),
        id: d.id,
        name: d.name,
        created_ms: d.created_ms,
        last_seen_ms: d.last_seen_ms,
        confirmed_by: d.confirmed_by,
    }
}

/// `GET /api/devices`.
#[derive(Debug, Serialize)]
pub struct Devices {
    devices: Vec<DeviceView>,
    /// New browsers waiting for an approval from one of these.
    pending: Vec<PendingDevice>,
}

/// The user's trusted devices and the new browsers waiting for approval.
pub async fn list(State(state): State<AppState>, signed: Signed) -> Result<Json<Devices>, ApiError> {
    let current = signed.session.device.as_deref();
    let devices = state.accounts.devices_of(&signed.user.id)?.into_iter().map(|d| view(d, current)).collect();
    Ok(Json(Devices { devices, pending: state.accounts.pending_devices(&signed.user.id) }))
}

/// `PUT /api/devices/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    name: String,
}

/// Renames one of the user's devices.
pub async fn rename(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
    req: Body<Rename>,
) -> Result<Json<DeviceView>, ApiError> {
    let Path(id) = id?;
    let req = body(req)?;
    let d = state.accounts.rename_device(&signed.user.id, &id, &req.name).await?;
    Ok(Json(view(d, signed.session.device.as_deref())))
}

/// `DELETE /api/devices/{id}`: removes a trusted device and ends its sessions.
pub async fn revoke(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    state.accounts.revoke_device(&signed.user, &id, "user").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/devices/pending/{id}/approve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// The number the new browser shows.
    number: String,
}

/// Lets the new browser in (from a trusted device), given the number it shows; a wrong
/// number refuses it.
pub async fn approve(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
    req: Body<Approve>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let req = body(req)?;
    // Letting a browser in takes an account that is ready (its second factor set up if
    // required or reset); refusing one does not.
    super::auth::require_ready(&state, &signed)?;
    state.accounts.decide_device(&signed, &id, Some(&req.number)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/devices/pending/{id}/deny`: refuses the new browser.
pub async fn deny(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    state.accounts.decide_device(&signed, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
