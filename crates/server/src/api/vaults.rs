//! The record store over HTTP: create a vault, sync it, read its manifest and records, save.
//! Bodies are the opaque bytes of FORMAT.md §3–§4 and the wire bodies of §10, as
//! `application/cbor`. Only a practitioner reaches vaults, and only their own: another user's
//! vault, a vault that does not exist and a malformed id all get the same 404.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use kluis_core::wire::SaveRequest;
use kluis_core::{RecordId, VaultId};
use serde::Deserialize;

use super::auth::require;
use super::problem::ApiError;
use crate::accounts::Signed;
use crate::accounts::model::Role;
use crate::http::AppState;
use crate::store::Store;

/// Records the address of a write that is stored already: a failure to record it is logged,
/// never turned into an error for a save the client must then not retry.
fn log_write(state: &AppState, signed: &Signed, vault: &str, addr: SocketAddr) {
    if let Err(e) = state.accounts.log_write(&signed.user, vault, addr.ip()) {
        tracing::warn!(error = %e, "the address of a write was not recorded");
    }
}

/// The media type of every vault body.
pub const CBOR: &str = "application/cbor";

fn cbor(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, CBOR)], bytes).into_response()
}

fn require_cbor(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(t) if t.eq_ignore_ascii_case(CBOR) => Ok(()),
        _ => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the body as application/cbor")),
    }
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    let mut b = [0u8; 16];
    hex::decode_to_slice(s, &mut b).ok()?;
    // Lower case only, so one vault has one URL.
    (s.bytes().all(|c| !c.is_ascii_uppercase())).then_some(b)
}

/// The store holding `vault` if the signed-in practitioner owns it; otherwise 404 (or 403 for a
/// user who is no practitioner at all).
fn own_vault<'s>(state: &'s AppState, signed: &Signed, vault: &str) -> Result<(&'s Store, VaultId), ApiError> {
    require(signed, Role::Practitioner)?;
    super::auth::require_ready(state, signed)?;
    let id = VaultId::from_bytes(hex16(vault).ok_or_else(ApiError::not_found)?);
    for store in [&state.notes, &state.identities] {
        if store.owner(&id)? == Some(signed.user.id.0) {
            return Ok((store, id));
        }
    }
    Err(ApiError::not_found())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?
}

/// `POST /api/vaults/{kind}`: creates the user's notes or identities vault from its genesis
/// manifest (once).
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    signed: Signed,
    kind: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require(&signed, Role::Practitioner)?;
    super::auth::require_ready(&state, &signed)?;
    let Path(kind) = kind?;
    let store = match kind.as_str() {
        "notes" => &state.notes,
        "identities" => &state.identities,
        _ => return Err(ApiError::not_found()),
    };
    require_cbor(&headers)?;
    let vault = store.create_vault(signed.user.id.0, &body).await?;
    log_write(&state, &signed, &kind, addr);
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "vault": hex::encode(vault.to_bytes()) }))))
}

/// `?since=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    #[serde(default)]
    since: u64,
    /// Every live record, not only those changed after `since`.
    #[serde(default)]
    all: bool,
}

/// `GET /api/vaults/{vault}/sync?since=N[&all=true]`: the manifest, the saves after N and the records
/// changed after N, in one consistent response (FORMAT.md §10.2).
pub async fn sync(
    State(state): State<AppState>,
    signed: Signed,
    vault: Result<Path<String>, PathRejection>,
    q: Result<Query<Since>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(vault) = vault?;
    let Query(q) = q?;
    let (store, id) = own_vault(&state, &signed, &vault)?;
    let synced = store.sync(&id, q.since, q.all).await?;
    let bytes = blocking(move || Ok(synced.encode())).await?;
    Ok(cbor(bytes))
}

/// `GET /api/vaults/{vault}/head`: the current manifest (FORMAT.md §4.1).
pub async fn head(
    State(state): State<AppState>,
    signed: Signed,
    vault: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(vault) = vault?;
    let (store, id) = own_vault(&state, &signed, &vault)?;
    Ok(cbor(store.head(&id).await?))
}

/// `POST /api/vaults/{vault}/saves`: one atomic save (FORMAT.md §10.1); 409 when the vault
/// moved on since the save was prepared, and then nothing is stored.
pub async fn save(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    signed: Signed,
    vault: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let Path(vault) = vault?;
    let (store, id) = own_vault(&state, &signed, &vault)?;
    require_cbor(&headers)?;
    let req = SaveRequest::decode(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{e} (nothing was stored)")))?;
    let envelopes: Vec<(RecordId, Vec<u8>)> = req.envelopes.iter().map(|(r, e)| (*r, e.to_vec())).collect();
    store.save(&id, req.update, &envelopes).await?;
    // The address of each write is kept for the practice's IP release process (never shown
    // without a recorded reason).
    let which = if std::ptr::eq(store, &state.notes) { "notes" } else { "identities" };
    log_write(&state, &signed, which, addr);
    Ok(StatusCode::NO_CONTENT)
}

/// `?version=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    #[serde(default)]
    version: Option<u64>,
}

/// `GET /api/vaults/{vault}/records/{record}?version=N`: one envelope (the current version, or
/// any earlier one: the server keeps every version).
pub async fn record(
    State(state): State<AppState>,
    signed: Signed,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<Version>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path((vault, record)) = path?;
    let Query(q) = q?;
    let (store, id) = own_vault(&state, &signed, &vault)?;
    let record = RecordId::from_bytes(hex16(&record).ok_or_else(ApiError::not_found)?);
    Ok(cbor(store.record(&id, &record, q.version)?))
}
