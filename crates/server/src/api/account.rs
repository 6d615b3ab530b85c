//! Enrollment, sign-in, sign-out, the signed-in user, their sessions, and a practice admin's
//! invitations.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};

use super::auth::{cleared_session_cookie, cookie, require, session_cookie};
use super::problem::ApiError;
use crate::accounts::devices::DeviceProof;
use crate::accounts::model::{Role, User};
use crate::accounts::password::Password;
use crate::accounts::{Attempt, Enrollment, Outcome, SessionView, Signed};
use crate::http::AppState;

/// Takes a JSON body, turning its rejections into problems.
pub type Body<T> = Result<Json<T>, JsonRejection>;

pub(super) fn body<T>(b: Body<T>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(ApiError::from)
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The signed-in user as the app sees them.
#[derive(Debug, Serialize)]
pub struct Me {
    username: String,
    roles: BTreeSet<Role>,
    practice: Option<String>,
    email: Option<String>,
    /// The registered public key of the key file (`kluispub1…`), once the app registered it.
    public_key: Option<String>,
    /// The practice's idle timeout, minutes: the app locks itself after this long without
    /// user activity (the server ends the session at the same time).
    idle_minutes: u32,
    /// Vault ids (hex), once created.
    vaults: Vaults,
    /// Whether the user has a second factor.
    second_factor: bool,
    /// Whether the practice requires one: without it, the app sends the user to set one up, and
    /// the server refuses vaults and practice pages until then.
    second_factor_required: bool,
    /// Whether it is required because an admin or the operator reset the user's second factor
    /// (whatever the practice's policy): the app says so.
    second_factor_due: bool,
    /// The practice's HIPAA mode: the app signs out (not only locks) after the idle time.
    hipaa_mode: bool,
    /// Which optional notices the user gets.
    notifications: crate::accounts::model::Notifications,
    /// For admins: mail goes to the server's outbox directory, not to people (no relay is set
    /// up), so codes and notices reach nobody until the operator sets one up.
    mail_to_outbox: bool,
}

#[derive(Debug, Serialize)]
struct Vaults {
    notes: Option<String>,
    identities: Option<String>,
}

fn me_of(state: &AppState, user: &User) -> Result<Me, ApiError> {
    let practice = user.practice.map(|p| state.accounts.practice(&p)).transpose()?;
    let idle_minutes =
        practice.as_ref().map_or(crate::accounts::model::DEFAULT_IDLE_MINUTES, |p| p.policy.idle_minutes);
    let second_factor_required =
        user.second_factor_due || practice.as_ref().is_some_and(|p| p.policy.requires_second_factor());
    let hipaa_mode = practice.as_ref().is_some_and(|p| p.policy.hipaa_mode);
    let practice = practice.map(|p| p.name);
    let vault = |s: &crate::store::Store| -> Result<Option<String>, ApiError> {
        Ok(s.vault_of(&user.id.0)?.map(|v| hex::encode(v.to_bytes())))
    };
    Ok(Me {
        username: user.username.clone(),
        roles: user.roles.clone(),
        practice,
        email: user.email.clone(),
        public_key: user.vault_public_key.clone(),
        idle_minutes,
        vaults: Vaults { notes: vault(&state.notes)?, identities: vault(&state.identities)? },
        second_factor: user.second_factor.is_some(),
        second_factor_required,
        second_factor_due: user.second_factor_due,
        hipaa_mode,
        notifications: user.notifications,
        mail_to_outbox: user.roles.contains(&Role::Admin) && state.accounts.mailer().is_none_or(|m| m.is_outbox()),
    })
}

/// A secret field of a request body (a password, a code): wiped on drop, never printed.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretField(String);

impl SecretField {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretField(..)")
    }
}

/// `POST /api/enroll`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    code: SecretField,
    password: SecretField,
    email: String,
    #[serde(default)]
    mobile: Option<String>,
    /// The browser's proof of its device key: it becomes a trusted device.
    #[serde(default)]
    device: Option<DeviceProof>,
}

/// Enrollment with a code; signs the new user in.
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Body<EnrollRequest>,
) -> Result<Response, ApiError> {
    let req = body(req)?;
    state.accounts.throttle_ip(addr.ip()).map_err(|ms| {
        ApiError::wait(StatusCode::TOO_MANY_REQUESTS, "too many attempts from this address; wait a moment", ms)
    })?;
    let device = req.device.as_ref().map(|p| state.accounts.check_device_proof(p)).transpose()?;
    let password = Password::new(&req.password.0);
    let (user, token) = state
        .accounts
        .enroll_and_sign_in(
            &req.code.0,
            password,
            req.email.trim(),
            req.mobile.as_deref(),
            user_agent(&headers),
            device,
        )
        .await?;
    let me = me_of(&state, &user)?;
    Ok((StatusCode::CREATED, [(header::SET_COOKIE, session_cookie(token.expose()))], Json(me)).into_response())
}

/// `POST /api/sign-in`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    username: String,
    password: SecretField,
    /// The browser's proof of its device key (a challenge from `POST /api/sign-in/challenge`,
    /// signed): a device the account trusts signs in without confirmation.
    #[serde(default)]
    device: Option<DeviceProof>,
}

/// Password sign-in.
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    req: Body<SignInRequest>,
) -> Result<Response, ApiError> {
    let req = body(req)?;
    let attempt = Attempt {
        username: &req.username,
        password: Password::new(&req.password.0),
        ip: addr.ip(),
        user_agent: user_agent(&headers),
        device: req.device.as_ref(),
        old_session: cookie(&headers, super::auth::SESSION_COOKIE),
    };
    let outcome = state.accounts.sign_in(attempt).await?;
    signed_in(&state, outcome)
}

/// The answer to a sign-in step: the session on success; on a right password for an account
/// with a second factor, the ticket cookie and `{"second_step": "totp"}`; from a browser the
/// account does not trust, the ticket cookie and `{"second_step": "device", "channels": [...]}`;
/// while a new browser waits for an approval, 202 `{"waiting": true}`; otherwise a problem.
pub fn signed_in(state: &AppState, outcome: Outcome) -> Result<Response, ApiError> {
    match outcome {
        Outcome::SecondFactor { ticket } => Ok((
            [(header::SET_COOKIE, super::auth::ticket_cookie(ticket.expose(), crate::accounts::TICKET_LIFETIME_MS))],
            Json(serde_json::json!({ "second_step": "totp" })),
        )
            .into_response()),
        Outcome::ConfirmDevice { ticket, channels, number } => Ok((
            [(
                header::SET_COOKIE,
                super::auth::ticket_cookie(ticket.expose(), crate::accounts::DEVICE_TICKET_LIFETIME_MS),
            )],
            Json(serde_json::json!({ "second_step": "device", "channels": channels, "number": number })),
        )
            .into_response()),
        Outcome::Waiting => Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "waiting": true }))).into_response()),
        Outcome::Success { user, session } => {
            let me = me_of(state, &user)?;
            let mut res = Json(me).into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie(session.expose())) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            if let Ok(v) = super::auth::cleared_ticket_cookie().parse() {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(res)
        }
        Outcome::Failed => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong username, password or code")),
        Outcome::Denied => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this browser was refused from one of the account's trusted browsers",
        )),
        Outcome::Throttled(ms) => Err(ApiError::wait(
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-in attempts; wait before trying again",
            ms,
        )),
        Outcome::Locked => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins: sign in from a browser you have used before, or ask your practice admin",
        )),
    }
}

/// Sign-out: ends the session and asks the browser to clear its cache and cookies, but not its
/// storage (which keeps the device key and the highest manifest seen).
pub async fn sign_out(State(state): State<AppState>, signed: Signed) -> Result<Response, ApiError> {
    state.accounts.sign_out(&signed).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [
            (header::SET_COOKIE, cleared_session_cookie()),
            (HeaderName::from_static("clear-site-data"), "\"cache\", \"cookies\"".to_owned()),
        ],
    )
        .into_response())
}

/// `GET /api/me`.
pub async fn me(State(state): State<AppState>, signed: Signed) -> Result<Json<Me>, ApiError> {
    Ok(Json(me_of(&state, &signed.user)?))
}

/// `GET /api/sessions`: the user's live sessions.
pub async fn sessions(State(state): State<AppState>, signed: Signed) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(state.accounts.sessions_of(&signed)?))
}

/// `DELETE /api/sessions/{id}`: ends one of the user's own sessions.
pub async fn revoke_session(
    State(state): State<AppState>,
    signed: Signed,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    state.accounts.revoke_session(&signed, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/practice/users` (admins): the practice's users, with the key-file fingerprint the
/// server holds for each (the server's word).
pub async fn practice_users(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<crate::accounts::MemberView>>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    Ok(Json(state.accounts.member_views(&practice)?))
}

/// `POST /api/practice/invitations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    username: String,
    roles: BTreeSet<Role>,
    /// Where the invitation (with its code) is sent, if given.
    #[serde(default)]
    email: Option<String>,
}

/// A practice admin invites a user to their own practice.
pub async fn invite(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<InviteRequest>,
) -> Result<(StatusCode, Json<Enrollment>), ApiError> {
    super::auth::admin_practice(&state, &signed)?;
    let req = body(req)?;
    let accounts = state.accounts.clone();
    let admin = signed.user.clone();
    let e = tokio::task::spawn_blocking(move || {
        let email = req.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        accounts.invite_member(&admin, &req.username, req.roles, email)
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))??;
    Ok((StatusCode::CREATED, Json(e)))
}

/// `POST /api/vault-key`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultKeyRequest {
    public_key: String,
}

/// A practitioner's app registers the public key of their key file on first unlock (201); the
/// same key again is 200; another key is 409.
pub async fn register_vault_key(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<VaultKeyRequest>,
) -> Result<StatusCode, ApiError> {
    require(&signed, Role::Practitioner)?;
    super::auth::require_ready(&state, &signed)?;
    let req = body(req)?;
    let accounts = state.accounts.clone();
    let user = signed.user.id;
    let created = tokio::task::spawn_blocking(move || accounts.register_vault_key(&user, &req.public_key))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))??;
    Ok(if created { StatusCode::CREATED } else { StatusCode::OK })
}

/// `GET /api/practice/policy` (admins): the practice's policy.
pub async fn policy(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<crate::accounts::model::Policy>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    Ok(Json(state.accounts.practice(&practice)?.policy))
}

/// `PUT /api/practice/policy` (admins): sets the practice's policy (the whole of it).
pub async fn set_policy(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<crate::accounts::model::Policy>,
) -> Result<Json<crate::accounts::model::Policy>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    let req = body(req)?;
    Ok(Json(state.accounts.set_policy(&practice, req).await?.policy))
}

/// A sign-in attempt as its user or their admin sees it.
#[derive(Debug, Serialize)]
pub struct SignInView {
    at_ms: u64,
    /// The account's username (none for an attempt that matched no account).
    username: Option<String>,
    /// The address: the user's own history shows it; a practice admin's view does not.
    ip: Option<String>,
    user_agent: String,
    /// The browser and system, in kluis's words.
    browser: String,
    known_device: bool,
    device: Option<String>,
    result: crate::accounts::model::SignInResult,
}

fn sign_in_views(state: &AppState, entries: Vec<crate::accounts::model::SignIn>) -> Result<Vec<SignInView>, ApiError> {
    let mut names = std::collections::BTreeMap::new();
    entries
        .into_iter()
        .map(|e| {
            let username = match e.user {
                Some(id) => match names.get(&id) {
                    Some(n) => Some(String::clone(n)),
                    None => {
                        let n = state.accounts.user(&id)?.username;
                        names.insert(id, n.clone());
                        Some(n)
                    }
                },
                None => None,
            };
            Ok(SignInView {
                at_ms: e.at_ms,
                username,
                ip: Some(e.ip),
                browser: crate::accounts::agent::describe(&e.user_agent),
                user_agent: e.user_agent,
                known_device: e.known_device,
                device: e.device,
                result: e.result,
            })
        })
        .collect()
}

/// `GET /api/sign-ins`: the user's own sign-in history, newest first.
pub async fn my_sign_ins(State(state): State<AppState>, signed: Signed) -> Result<Json<Vec<SignInView>>, ApiError> {
    let entries = state.accounts.sign_ins_of(&signed.user, crate::accounts::SIGN_IN_VIEW)?;
    Ok(Json(sign_in_views(&state, entries)?))
}

/// `GET /api/practice/sign-ins` (admins): every sign-in attempt on the practice's accounts,
/// without IP addresses (those only through the release process, `POST /api/practice/ip-release`).
pub async fn practice_sign_ins(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<SignInView>>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    let entries = state.accounts.sign_ins(Some(&practice), crate::accounts::SIGN_IN_VIEW)?;
    let mut views = sign_in_views(&state, entries)?;
    for v in &mut views {
        v.ip = None;
    }
    Ok(Json(views))
}

/// `POST /api/practice/users/{username}/disable` and `.../enable`: `true` enables.
async fn set_enabled(
    state: AppState,
    signed: Signed,
    username: Result<Path<String>, axum::extract::rejection::PathRejection>,
    enabled: bool,
) -> Result<StatusCode, ApiError> {
    super::auth::admin_practice(&state, &signed)?;
    let Path(username) = username?;
    state.accounts.set_member_enabled(&signed.user, &username, enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a member of the admin's practice: every session ends.
pub async fn disable_member(
    State(state): State<AppState>,
    signed: Signed,
    username: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    set_enabled(state, signed, username, false).await
}

/// Enables a disabled member again.
pub async fn enable_member(
    State(state): State<AppState>,
    signed: Signed,
    username: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    set_enabled(state, signed, username, true).await
}

/// `POST /api/practice/users/{username}/invitation`: sends an invitation again, with a new
/// code, to the address it was first sent to.
pub async fn resend_invitation(
    State(state): State<AppState>,
    signed: Signed,
    username: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, ApiError> {
    super::auth::admin_practice(&state, &signed)?;
    let Path(username) = username?;
    let accounts = state.accounts.clone();
    let admin = signed.user.clone();
    tokio::task::spawn_blocking(move || accounts.resend_invitation(&admin, &username))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `?since=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Since {
    #[serde(default)]
    since: u64,
}

/// `GET /api/practice/audit?since=N` (admins): the practice's audit trail after entry N (at most
/// 1000 entries), and its head. The admin's browser checks that it continues the head it saw.
pub async fn practice_audit(
    State(state): State<AppState>,
    signed: Signed,
    q: Result<axum::extract::Query<Since>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    let axum::extract::Query(q) = q?;
    let head = state.accounts.audit_head(&practice)?;
    let entries = state.accounts.audit_entries(&practice, q.since, crate::accounts::audit::AUDIT_PAGE)?;
    Ok(Json(serde_json::json!({ "head": head, "entries": entries })))
}

/// `POST /api/practice/ip-release`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRelease {
    username: String,
    reason: String,
}

/// The IP release process: one member's sign-in and write addresses, for a reason that is
/// recorded and told to the member.
pub async fn ip_release(
    State(state): State<AppState>,
    signed: Signed,
    req: Body<IpRelease>,
) -> Result<Json<Vec<crate::accounts::AddressEntry>>, ApiError> {
    super::auth::admin_practice(&state, &signed)?;
    let req = body(req)?;
    Ok(Json(state.accounts.release_addresses(&signed.user, &req.username, &req.reason).await?))
}

/// The user's own security events, newest first, with usernames instead of ids.
pub async fn my_events(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let events = state.accounts.events_of(&signed.user, crate::accounts::SIGN_IN_VIEW)?;
    event_views(&state, events).map(Json)
}

fn event_views(
    state: &AppState,
    events: Vec<crate::accounts::model::SecurityEvent>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    events
        .into_iter()
        .map(|e| {
            let username = state.accounts.user(&e.user)?.username;
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("username".into(), username.into());
                o.remove("user");
            }
            Ok(v)
        })
        .collect()
}

/// `GET /api/practice/events` (admins): the practice's security events, newest first.
pub async fn practice_events(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let practice = super::auth::admin_practice(&state, &signed)?;
    let events = state.accounts.events(Some(&practice), crate::accounts::SIGN_IN_VIEW)?;
    event_views(&state, events).map(Json)
}

/// `POST /api/practice/users/{username}/second-factor-reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    verified_by: String,
    evidence: crate::accounts::model::Evidence,
}

/// An admin removes the second factor of a user of their practice who lost it, after checking
/// their identity (never their own: another admin or the operator does that).
pub async fn reset_second_factor(
    State(state): State<AppState>,
    signed: Signed,
    username: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Body<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    require(&signed, Role::Admin)?;
    super::auth::require_ready(&state, &signed)?;
    let Path(username) = username?;
    let req = body(req)?;
    let practice = signed.user.practice.ok_or_else(ApiError::forbidden)?;
    let target = state.accounts.user_by_name(&username)?.filter(|u| u.practice == Some(practice));
    let target = target.ok_or_else(ApiError::not_found)?;
    if target.id == signed.user.id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "an admin cannot reset their own second factor: ask another admin or the operator",
        ));
    }
    let accounts = state.accounts.clone();
    let by = format!("admin:{}", signed.user.username);
    tokio::task::spawn_blocking(move || accounts.reset_second_factor(&target.id, &by, &req.verified_by, req.evidence))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/not-me`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotMeRequest {
    token: SecretField,
}

/// The "this was not me" link of a sign-in notice, used: ends the session it names. The link
/// opens a page (`/act.html`, its token in the fragment), which posts here on a click, so a mail
/// scanner that follows links changes nothing.
pub async fn not_me(State(state): State<AppState>, req: Body<NotMeRequest>) -> Result<StatusCode, ApiError> {
    let req = body(req)?;
    if state.accounts.end_session_by_link(req.token.expose()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "this link is not valid: it was used, or that session has ended anyway",
        ))
    }
}

/// `POST /api/password-reset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetAsk {
    username: String,
}

/// Asks for a password reset link by e-mail. The answer (202) is the same, and comes as soon,
/// whether the account exists or not: the lookup and the mail happen after it. Throttled per
/// address like a sign-in.
pub async fn ask_password_reset(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Body<ResetAsk>,
) -> Result<StatusCode, ApiError> {
    let req = body(req)?;
    state.accounts.throttle_ip(addr.ip()).map_err(|ms| {
        ApiError::wait(StatusCode::TOO_MANY_REQUESTS, "too many attempts from this address; wait a moment", ms)
    })?;
    let accounts = state.accounts.clone();
    tokio::spawn(async move {
        if let Err(e) = accounts.request_password_reset(&req.username).await {
            tracing::warn!(error = %e, "a password reset request failed");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/password-reset/complete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetComplete {
    token: SecretField,
    password: SecretField,
}

/// Sets a new password with the token of a reset link (from the page the link opens).
pub async fn complete_password_reset(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Body<ResetComplete>,
) -> Result<StatusCode, ApiError> {
    let req = body(req)?;
    state.accounts.throttle_ip(addr.ip()).map_err(|ms| {
        ApiError::wait(StatusCode::TOO_MANY_REQUESTS, "too many attempts from this address; wait a moment", ms)
    })?;
    state.accounts.complete_password_reset(req.token.expose(), Password::new(req.password.expose())).await?;
    Ok(StatusCode::NO_CONTENT)
}
