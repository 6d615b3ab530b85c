//! Temporary support access over HTTP: the user's side (make a code, watch and end the
//! sessions it opens) and the support staff's (redeem a code, then the scoped views and actions
//! on that one account). Support staff must be signed in with their second factor.

use std::collections::BTreeSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Json;
use serde::{Deserialize, Serialize};

use super::account::{Body, SecretField, body};
use super::auth::require;
use super::problem::ApiError;
use crate::accounts::Signed;
use crate::accounts::model::{Id, Role, SupportScope, User};
use crate::accounts::support::{GrantView, SUPPORT_DEFAULT_MINUTES};
use crate::accounts::username::Username;
use crate::http::AppState;

/// Refuses a step whose session the user ended while it was being checked.
fn still_on(state: &AppState, grant: &Id) -> Result<(), ApiError> {
    if state.accounts.support_still_active(grant)? { Ok(()) } else { Err(ApiError::not_found()) }
}

/// A view a support session takes, for its staff member (with their second factor): recorded
/// as a step of the session `id` (refused unless its code allows `scope`); the account viewed.
async fn view(
    state: &AppState,
    signed: &Signed,
    id: Result<Path<String>, PathRejection>,
    scope: SupportScope,
    detail: &str,
) -> Result<User, ApiError> {
    require_support(signed)?;
    let Path(id) = id?;
    let (_, user) = state.accounts.support_step(&signed.user.id, &id, scope, detail).await?;
    Ok(user)
}

/// Support staff, signed in with their second factor (the operator's staff must have one).
fn require_support(signed: &Signed) -> Result<(), ApiError> {
    require(signed, Role::Support)?;
    if signed.user.second_factor.is_some() && signed.session.second_factor {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "support staff must use two-step sign-in: set it up first"))
    }
}

/// `POST /api/account/support`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    /// Minutes it lives (5 to 1440; 60 when absent).
    #[serde(default)]
    minutes: Option<u32>,
    /// What support may see or do.
    scopes: BTreeSet<SupportScope>,
}

/// A new code, shown once.
#[derive(Serialize)]
pub struct Code {
    code: String,
    grant: GrantView,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code").field("grant", &self.grant.id).finish_non_exhaustive()
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

/// The user makes a temporary access code for support.
pub async fn create(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<NewCode>,
) -> Result<(StatusCode, Json<Code>), ApiError> {
    let req = body(req)?;
    if signed.user.roles.contains(&Role::Support) {
        return Err(ApiError::forbidden());
    }
    // Not while a required or reset second factor waits to be set up.
    super::auth::require_ready(&state, &signed)?;
    let minutes = req.minutes.unwrap_or(SUPPORT_DEFAULT_MINUTES);
    let (code, grant) = state.accounts.create_support_code(&signed.user, minutes, req.scopes).await?;
    Ok((StatusCode::CREATED, Json(Code { code: code.expose().to_owned(), grant })))
}

/// `GET /api/account/support`: the user's codes and support sessions, with every action.
pub async fn list(State(state): State<AppState>, signed: Signed) -> Result<Json<Vec<GrantView>>, ApiError> {
    Ok(Json(state.accounts.support_of(&signed.user.id)?))
}

/// `DELETE /api/account/support/{id}`: ends a code or a support session at once.
pub async fn end(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    state.accounts.end_support_by_user(&signed.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/support/redeem`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    code: SecretField,
}

/// Support staff redeem a code: a support session on its account begins.
pub async fn redeem(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<Redeem>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    require_support(&signed)?;
    let req = body(req)?;
    Ok((StatusCode::CREATED, Json(state.accounts.redeem_support_code(&signed, req.code.expose()).await?)))
}

/// `GET /api/support/sessions`: the staff member's open support sessions.
pub async fn sessions(State(state): State<AppState>, signed: Signed) -> Result<Json<Vec<GrantView>>, ApiError> {
    require_support(&signed)?;
    Ok(Json(state.accounts.support_sessions_of(&signed.user.id)?))
}

/// `POST /api/support/sessions/{id}/end`: the staff member ends their session.
pub async fn end_by_staff(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    require_support(&signed)?;
    let Path(id) = id?;
    state.accounts.end_support_by_staff(&signed.user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/support/sessions/{id}/settings`.
pub async fn settings(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = view(&state, &signed, id, SupportScope::ViewSettings, "settings").await?;
    let practice = user.practice.map(|p| state.accounts.practice(&p)).transpose()?;
    Ok(Json(serde_json::json!({
        "username": user.username,
        "practice": practice.as_ref().map(|p| p.name.clone()),
        "roles": user.roles,
        "state": user.state,
        "email": user.email,
        "mobile": user.mobile,
        "notifications": user.notifications,
        "policy": practice.map(|p| p.policy),
    })))
}

/// `GET /api/support/sessions/{id}/devices`: names and when last used.
pub async fn devices(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let user = view(&state, &signed, id, SupportScope::ViewDevices, "devices").await?;
    let list = state.accounts.devices_of(&user.id)?;
    Ok(Json(
        list.into_iter()
            .map(|d| serde_json::json!({ "id": d.id, "name": d.name, "last_seen_ms": d.last_seen_ms }))
            .collect(),
    ))
}

/// `GET /api/support/sessions/{id}/sign-ins`: the history, without IP addresses.
pub async fn sign_ins(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let user = view(&state, &signed, id, SupportScope::ViewSignIns, "sign-in history").await?;
    let entries = state.accounts.sign_ins_of(&user, crate::accounts::SIGN_IN_VIEW)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "at_ms": e.at_ms,
                    "result": e.result,
                    "browser": crate::accounts::agent::describe(&e.user_agent),
                    "known_device": e.known_device,
                })
            })
            .collect(),
    ))
}

/// `GET /api/support/sessions/{id}/second-factor`: whether it is on, and recovery codes left.
pub async fn second_factor(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = view(&state, &signed, id, SupportScope::ViewSecondFactor, "two-step sign-in").await?;
    Ok(Json(serde_json::json!({
        "enabled": user.second_factor.is_some(),
        "enabled_ms": user.second_factor.as_ref().map(|f| f.enabled_ms),
        "recovery_codes_left": user.second_factor.as_ref().map(|f| f.recovery.len()),
    })))
}

/// `GET /api/support/sessions/{id}/storage`: what the account's vaults take (counts and bytes
/// only; never a record).
pub async fn storage(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = view(&state, &signed, id, SupportScope::ViewStorage, "storage").await?;
    let usage = |s: &crate::store::Store| -> Result<crate::store::Usage, ApiError> {
        Ok(match s.vault_of(&user.id.0)? {
            Some(v) => s.usage(&v)?,
            None => Default::default(),
        })
    };
    Ok(Json(serde_json::json!({ "notes": usage(&state.notes)?, "identities": usage(&state.identities)? })))
}

/// `POST /api/support/sessions/{id}/invitations/{username}`: sends an invitation of the
/// account's practice again (for an admin's account).
pub async fn resend_invitation(
    State(state): State<AppState>,
    signed: Signed,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    require_support(&signed)?;
    let Path((id, username)) = ids?;
    // Only a well-formed username is recorded in the user's list of steps.
    let username = Username::parse(&username).map_err(|_| ApiError::not_found())?.display().to_owned();
    let (g, user) = state
        .accounts
        .support_step(&signed.user.id, &id, SupportScope::ResendInvitation, &format!("invitation of {username}"))
        .await?;
    if !user.roles.contains(&Role::Admin) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only an admin's account has invitations to send"));
    }
    still_on(&state, &g.id)?;
    let accounts = state.accounts.clone();
    tokio::task::spawn_blocking(move || accounts.resend_invitation(&user, &username))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/support/sessions/{id}/devices/{device}`: removes one of the account's devices.
pub async fn revoke_device(
    State(state): State<AppState>,
    signed: Signed,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    require_support(&signed)?;
    let Path((id, device)) = ids?;
    // Only a well-formed device handle is recorded in the user's list of steps.
    if device.len() != 16 || !device.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError::not_found());
    }
    let (g, user) = state
        .accounts
        .support_step(&signed.user.id, &id, SupportScope::RevokeDevice, &format!("remove device {device}"))
        .await?;
    still_on(&state, &g.id)?;
    state.accounts.revoke_device(&user, &device, &format!("support:{}", signed.user.username)).await?;
    Ok(StatusCode::NO_CONTENT)
}
