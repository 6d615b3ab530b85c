//! The second factor: TOTP (RFC 6238) with an authenticator app, and single-use recovery
//! codes (FORMAT.md §9.2, §9.4).
//!
//! - The TOTP secret has 160 bits (RFC 4226 §4, R6), is sealed under the server key
//!   (`server_key.rs`) with the user's id bound to it, and is active only after the user has
//!   typed a correct code from it.
//! - Codes are 6 digits for 30-second steps (RFC 6238 §4, the values every authenticator app
//!   uses), accepted one step either side of the server's clock (RFC 6238 §5.2), and each step at
//!   most once per user: a code seen once, even within its window, is refused (replay).
//! - Ten recovery codes of 100 bits each, stored as hashes, shown once, each usable once.
//! - Guessing is throttled like passwords: a wrong code counts as a failed sign-in.

use qrcode::QrCode;
use qrcode::render::svg;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use super::model::{EventKind, Id, PendingTotp, SecondFactor, User};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::throttle::Gate;
use super::{AccountError, Accounts, Signed};
use crate::clock::Millis;

/// Bytes of a TOTP secret: 160 bits (RFC 4226 §4, requirement R6).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Seconds per TOTP step (RFC 6238 §4, the default every authenticator app uses).
pub const TOTP_STEP_SECS: u64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: usize = 6;
/// Steps of clock drift accepted either way (RFC 6238 §5.2 recommends at most one).
pub const TOTP_SKEW_STEPS: u64 = 1;
/// The issuer shown in the authenticator app.
pub const TOTP_ISSUER: &str = "kluis";
/// How long an enrollment waits for its first code, ms.
pub const TOTP_ENROLLMENT_MS: Millis = 10 * 60 * 1000;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// The purpose a TOTP secret is sealed for under the server key.
const SEALED_TOTP: &str = "totp";

/// What the user needs to add kluis to an authenticator app.
pub struct TotpEnrollment {
    /// The secret in base32 (RFC 4648), for typing in by hand.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/…` URI that the QR code holds.
    pub uri: Zeroizing<String>,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment(..)")
    }
}

fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP, AccountError> {
    // Colons would break the otpauth label; they are not allowed in usernames anyway.
    TOTP::new(
        Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP_SECS,
        secret,
        Some(TOTP_ISSUER.to_owned()),
        account.replace(':', " "),
    )
    .map_err(|_| AccountError::Internal("a TOTP secret was refused"))
}

/// The step within the accepted window whose code is `code`, if any (compared in constant time).
fn matching_step(t: &TOTP, code: &str, now_ms: Millis) -> Option<u64> {
    let code = code.trim();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = now_ms / 1000 / TOTP_STEP_SECS;
    let first = now_step.saturating_sub(TOTP_SKEW_STEPS);
    let mut found = None;
    for step in first..=now_step.saturating_add(TOTP_SKEW_STEPS) {
        let expected = t.generate(step.saturating_mul(TOTP_STEP_SECS));
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The code an authenticator app shows at `unix_secs` for a base32 secret: what the tests
/// compare with an independent implementation (`oathtool`).
pub fn code_at(secret_base32: &str, unix_secs: u64) -> Result<String, AccountError> {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.trim_end_matches('=').as_bytes())
        .map_err(|_| AccountError::Invalid("not a base32 secret"))?;
    Ok(totp(secret, "")?.generate(unix_secs))
}

impl Accounts {
    fn server_key(&self) -> Result<&crate::server_key::ServerKey, AccountError> {
        self.server_key.as_deref().ok_or(AccountError::Internal("the server key is not loaded"))
    }

    fn open_totp(&self, user: &User, sealed: &str) -> Result<TOTP, AccountError> {
        let secret = self
            .server_key()?
            .open(SEALED_TOTP, &user.id.0, sealed)
            .map_err(|_| AccountError::Internal("a TOTP secret does not open with the server key"))?;
        totp(secret.to_vec(), &user.username)
    }

    /// Begins TOTP enrollment: a fresh secret, kept sealed as pending until a code from it is
    /// confirmed. A user who has a second factor must remove it first (not offered yet).
    pub fn begin_totp(&self, user: &Id) -> Result<TotpEnrollment, AccountError> {
        let u = self.user(user)?;
        if u.second_factor.is_some() {
            return Err(AccountError::Invalid("a second factor is set up already"));
        }
        let mut secret = Zeroizing::new([0u8; TOTP_SECRET_BYTES]);
        getrandom::fill(&mut secret[..]).map_err(|_| AccountError::Internal("the system random generator failed"))?;
        let sealed = self
            .server_key()?
            .seal(SEALED_TOTP, &u.id.0, &secret[..])
            .map_err(|_| AccountError::Internal("sealing failed"))?;
        let pending = PendingTotp { totp: sealed, expires_ms: self.clock.now().saturating_add(TOTP_ENROLLMENT_MS) };
        // Checked again inside the atomic update: a second factor confirmed meanwhile stays.
        let u = self.update_user(user, |u| {
            if u.second_factor.is_none() {
                u.pending_totp = Some(pending.clone());
            }
        })?;
        if u.pending_totp.as_ref() != Some(&pending) {
            return Err(AccountError::Invalid("a second factor is set up already"));
        }
        let t = totp(secret.to_vec(), &u.username)?;
        Ok(TotpEnrollment { secret: Zeroizing::new(t.get_secret_base32()), uri: Zeroizing::new(t.get_url()) })
    }

    fn pending_totp(&self, u: &User) -> Result<TOTP, AccountError> {
        let pending = u
            .pending_totp
            .as_ref()
            .filter(|p| self.clock.now() < p.expires_ms)
            .ok_or(AccountError::Invalid("start the authenticator set-up again (it waits ten minutes)"))?;
        self.open_totp(u, &pending.totp)
    }

    /// The QR code (SVG) of the pending enrollment's `otpauth://` URI.
    pub fn totp_qr_svg(&self, user: &Id) -> Result<String, AccountError> {
        let u = self.user(user)?;
        let uri = Zeroizing::new(self.pending_totp(&u)?.get_url());
        let qr = QrCode::new(uri.as_bytes()).map_err(|_| AccountError::Internal("the QR code failed"))?;
        Ok(qr.render::<svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build())
    }

    fn fresh_recovery_codes() -> Result<(Vec<Secret>, Vec<String>), AccountError> {
        let codes = (0..RECOVERY_CODES).map(|_| Secret::code()).collect::<Result<Vec<_>, _>>()?;
        let hashes = codes.iter().map(|c| hex::encode(c.hash(SecretKind::Recovery))).collect();
        Ok((codes, hashes))
    }

    /// Confirms TOTP enrollment with a code from the new secret: the second factor becomes
    /// active, this session counts as having passed it, every other session of the user ends
    /// (they did not), and a first set of recovery codes is returned (shown once). Announced
    /// by e-mail and recorded.
    pub async fn confirm_totp(&self, signed: &Signed, code: &str) -> Result<Vec<Secret>, AccountError> {
        let user = &signed.user.id;
        let u = self.user(user)?;
        let t = self.pending_totp(&u)?;
        let now = self.clock.now();
        let step =
            matching_step(&t, code, now).ok_or(AccountError::Invalid("that code is not right; try the next one"))?;
        let pending = u.pending_totp.clone().ok_or(AccountError::NotFound)?;
        let (codes, hashes) = Self::fresh_recovery_codes()?;
        // This session passed it (marked first, so that no request in between finds the user
        // with a second factor and this session without).
        self.update_session(signed, |s| s.second_factor = true)?;
        // Checked again inside the atomic update: only the set-up this code belongs to is
        // confirmed, and only once.
        let mut confirmed = false;
        let u = self.update_user(user, |u| {
            confirmed = u.second_factor.is_none() && u.pending_totp.as_ref() == Some(&pending);
            if confirmed {
                u.second_factor = Some(SecondFactor {
                    totp: pending.totp.clone(),
                    last_step: step,
                    enabled_ms: now,
                    recovery: hashes.clone(),
                });
                u.pending_totp = None;
                u.second_factor_due = false;
            }
        })?;
        if !confirmed {
            return Err(AccountError::Invalid("start the authenticator set-up again"));
        }
        self.end_other_sessions(user, Some(&signed.session.id))?;
        // Sign-ins under way began without it: they start again.
        self.tickets.remove_user(user);
        self.record_event(u.practice.as_ref(), &self.simple_event(EventKind::SecondFactorEnabled, &u, "user", None))?;
        self.flush().await?;
        self.notice_security_change(
            &u,
            "Two-step sign-in is on for your kluis account",
            "Two-step sign-in with an authenticator app was turned on for your kluis account, and every other\n\
             session was ended. From now on kluis asks for a code from the app after your password.",
        );
        Ok(codes)
    }

    /// Checks a code against the user's second factor and spends it: a TOTP code whose step is
    /// later than the last one used, or an unused recovery code. Atomic, so two requests with
    /// the same code cannot both pass.
    pub(super) fn spend_second_factor(&self, user: &User, presented: &str) -> Result<bool, AccountError> {
        let Some(factor) = &user.second_factor else { return Ok(false) };
        let step = matching_step(&self.open_totp(user, &factor.totp)?, presented, self.clock.now());
        let recovery = hash_presented(SecretKind::Recovery, presented).map(hex::encode);
        let mut spent = false;
        self.update_user(&user.id, |u| {
            spent = false;
            let Some(f) = u.second_factor.as_mut() else { return };
            if let Some(step) = step.filter(|s| *s > f.last_step) {
                f.last_step = step;
                spent = true;
            } else if let Some(i) = recovery.as_ref().and_then(|r| f.recovery.iter().position(|h| h == r)) {
                f.recovery.remove(i);
                spent = true;
            }
        })?;
        Ok(spent)
    }

    /// A new set of recovery codes, replacing the old, for a user who proves the second factor
    /// with a current code. Guesses are bounded: a wrong code counts as a failed sign-in of the
    /// account (so its back-off applies), and the session ends at the fifth.
    pub async fn regenerate_recovery_codes(&self, signed: &Signed, code: &str) -> Result<Vec<Secret>, AccountError> {
        let user = &signed.user.id;
        let u = self.user(user)?;
        // Counted as the sign-ins of this session's kind of browser (a trusted device, or not).
        let known = signed.session.device.is_some();
        let (decision, before) = self.reserve_failure(&u, known)?;
        match decision {
            Gate::Open => {}
            Gate::Wait(ms) => return Err(AccountError::Throttled(ms)),
            Gate::Locked => return Err(AccountError::Throttled(super::throttle::MAX_DELAY_MS)),
        }
        if !self.spend_second_factor(&u, code)? {
            // Counted atomically, so parallel wrong codes cannot slip past the limit.
            let tries = self.update_session(signed, |s| s.code_failures = s.code_failures.saturating_add(1))?;
            if tries.is_none_or(|s| s.code_failures >= super::MAX_TICKET_TRIES) {
                self.end_signed(signed)?;
            }
            self.flush().await?;
            return Err(AccountError::Invalid("that code is not right; try the next one"));
        }
        self.take_back(&u, known, before, None)?;
        let (codes, hashes) = Self::fresh_recovery_codes()?;
        let u = self.update_user(user, |u| {
            if let Some(f) = u.second_factor.as_mut() {
                f.recovery.clone_from(&hashes);
            }
        })?;
        self.record_event(u.practice.as_ref(), &self.simple_event(EventKind::RecoveryCodesRenewed, &u, "user", None))?;
        self.flush().await?;
        self.notice_security_change(
            &u,
            "New recovery codes for your kluis account",
            "New recovery codes were made for your kluis account; the earlier ones no longer work.",
        );
        Ok(codes)
    }
}

impl Accounts {
    /// Removes a user's second factor after someone checked their identity (the user lost it
    /// and their recovery codes): ends their sessions, so that the next sign-in sets up a new
    /// one, and records who did it, who checked and how (never the evidence itself).
    pub fn reset_second_factor(
        &self,
        user: &Id,
        by: &str,
        verified_by: &str,
        evidence: super::model::Evidence,
    ) -> Result<User, AccountError> {
        let verified_by = verified_by.trim();
        if self.user(user)?.state == super::model::UserState::Purged {
            return Err(AccountError::NotFound);
        }
        if verified_by.is_empty() || verified_by.chars().count() > super::MAX_VERIFIER_CHARS {
            return Err(AccountError::Invalid("name who checked the user's identity (at most 100 characters)"));
        }
        let u = self.update_user(user, |u| {
            u.second_factor = None;
            u.pending_totp = None;
            // Re-enrollment is forced: until a new factor is on, nothing but its set-up.
            u.second_factor_due = true;
        })?;
        self.end_all_sessions(user)?;
        self.tickets.remove_user(user);
        // A support session opened before the reset ends with it: until a new factor is on,
        // the account reaches nothing but its set-up, through support neither.
        self.end_live_grants(user, by)?;
        let event = super::model::SecurityEvent {
            at_ms: self.clock.now(),
            kind: super::model::EventKind::SecondFactorReset,
            user: u.id,
            by: by.to_owned(),
            verified_by: verified_by.to_owned(),
            evidence: Some(evidence),
            device: None,
            detail: None,
        };
        self.record_event(u.practice.as_ref(), &event)?;
        tracing::info!(user = %u.id, by, "second factor reset");
        self.notice_second_factor_reset(&u, by);
        self.flush_blocking()?;
        Ok(u)
    }
}
