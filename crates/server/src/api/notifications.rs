//! Notification preferences, and the one-click unsubscribe link of optional notices
//! (RFC 8058). A `GET` of the link changes nothing: it opens a page whose button posts; a mail
//! provider's one-click `POST` (body `List-Unsubscribe=One-Click`) acts at once.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;

use super::account::{Body, SecretField, body};
use super::problem::ApiError;
use crate::accounts::Signed;
use crate::accounts::model::Notifications;
use crate::http::AppState;

/// `GET /api/account/notifications`: which optional notices the user gets.
pub async fn get(signed: Signed) -> Json<Notifications> {
    Json(signed.user.notifications)
}

/// `PUT /api/account/notifications`: sets them.
pub async fn set(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<Notifications>,
) -> Result<Json<Notifications>, ApiError> {
    let req = body(req)?;
    Ok(Json(state.accounts.set_notifications(&signed.user.id, req).await?.notifications))
}

/// The link's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    token: SecretField,
}

/// `GET /api/unsubscribe?token=…`: the page that asks (the token goes into the fragment).
pub async fn page(q: Result<Query<Link>, QueryRejection>) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let location = format!("/act.html#unsubscribe={}", q.token.expose());
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

/// `POST /api/unsubscribe?token=…`: turns that kind of notice off (once).
pub async fn unsubscribe(
    State(state): State<AppState>,
    q: Result<Query<Link>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = q?;
    if state.accounts.unsubscribe(q.token.expose()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::BAD_REQUEST, "this link is not valid: it was used, or it expired"))
    }
}
