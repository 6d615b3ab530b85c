//! Password reset by an e-mailed link (NIST SP 800-63B-4 §4.2: a recovery code sent to an
//! address of record). The link is valid for an hour and works once; asking for one answers the
//! same, at once, whether the username exists or not (the work happens after the answer). A
//! request never cancels a link sent earlier, so a stranger who keeps asking cannot spoil the
//! owner's; an account has at most [`MAX_LIVE_RESETS`] live links, and asking beyond that sends
//! nothing until one expires. Using a link spends all of them. A reset sets a new password and
//! ends every session; it signs nobody in, so the second factor and the confirmation of a new
//! browser are still asked at the next sign-in, and it touches no data: the notes depend on the
//! key file, not on the password.

use super::model::{EventKind, PasswordReset, UserState};
use super::password::{Password, min_chars};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::{AccountError, Accounts, from_json, to_json};
use crate::clock::Millis;

/// How long a reset link works, ms (one hour).
pub const RESET_LIFETIME_MS: Millis = 60 * 60 * 1000;
/// Live reset links one account may have (a bound on the mail a stranger can cause).
pub const MAX_LIVE_RESETS: usize = 3;
/// The page a reset link opens (its token in the fragment).
const RESET_PAGE: &str = "/act.html";

impl Accounts {
    /// Sends a reset link to the address of record of `username`, if there is such an active
    /// account with an address and mail is set up, and it has fewer than [`MAX_LIVE_RESETS`]
    /// live links. Says nothing about which: the caller answers the same either way.
    pub async fn request_password_reset(&self, username: &str) -> Result<(), AccountError> {
        let Some(user) = self.user_by_name(username)?.filter(|u| u.state == UserState::Active) else { return Ok(()) };
        let Some(mailer) = self.mailer.clone() else { return Ok(()) };
        if user.email.is_none() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut live = 0;
        for v in self.resets.iter().values() {
            let r: PasswordReset = from_json(&v?)?;
            live += usize::from(r.user == user.id && now < r.expires_ms);
        }
        if live >= MAX_LIVE_RESETS {
            tracing::info!(user = %user.id, "password reset asked again; links are out already");
            return Ok(());
        }
        let token = Secret::token()?;
        let record = PasswordReset { user: user.id, expires_ms: self.clock.now().saturating_add(RESET_LIFETIME_MS) };
        self.resets.insert(token.hash(SecretKind::Reset), to_json(&record)?)?;
        self.flush().await?;
        let link = mailer.link(RESET_PAGE, Some(&format!("reset={}", token.expose())));
        let body = format!(
            "Someone asked to reset the password of your kluis account {username}.\n\n\
             To choose a new password, open this link (it works once, for one hour):\n{link}\n\n\
             If you did not ask for this, ignore this message: your password stays as it is. Your\n\
             notes are not affected either way: they open with your key file, not your password.",
            username = user.username
        );
        self.notify(&user, "Reset your kluis password", body);
        Ok(())
    }

    /// Sets a new password with a reset link's token: checks it against the password policy,
    /// ends every session of the user, records the event and announces it. The link is spent
    /// only when this succeeds.
    pub async fn complete_password_reset(&self, token: &str, password: Password) -> Result<(), AccountError> {
        let bad = || AccountError::Invalid("this link is not valid: it was used, or it expired");
        let key = hash_presented(SecretKind::Reset, token).ok_or_else(bad)?;
        let stored = self.resets.get(key)?.ok_or_else(bad)?;
        let record: PasswordReset = from_json(&stored)?;
        if self.clock.now() >= record.expires_ms {
            self.resets.remove(key)?;
            return Err(bad());
        }
        let user = self.user(&record.user)?;
        if user.state != UserState::Active {
            return Err(bad());
        }
        let policy = match user.practice {
            Some(p) => self.practice(&p)?.policy,
            None => Default::default(),
        };
        let email = user.email.clone().unwrap_or_default();
        let mut context: Vec<&str> = vec![&user.username, &email];
        let practice_name = user.practice.map(|p| self.practice(&p).map(|p| p.name)).transpose()?;
        if let Some(n) = &practice_name {
            context.extend(n.split_whitespace());
        }
        password.check_new(min_chars(policy.requires_second_factor(), policy.min_password_chars), &context)?;
        let phc = self.hasher.hash(password).await?;
        // Spent first (compare-and-swap), so two requests with one link cannot both set a password.
        if self.resets.compare_and_swap(key, Some(stored), None as Option<&[u8]>)?.is_err() {
            return Err(bad());
        }
        let user = self.update_user(&user.id, |u| {
            u.password = Some(phc.clone());
            u.failures = Default::default();
        })?;
        self.end_all_sessions(&user.id)?;
        self.tickets.remove_user(&user.id);
        // Every other link of the account is spent with this one.
        for kv in self.resets.iter() {
            let (k, v) = kv?;
            if from_json::<PasswordReset>(&v)?.user == user.id {
                self.resets.remove(k)?;
            }
        }
        let event = self.simple_event(EventKind::PasswordReset, &user, "user:e-mail link", None);
        self.record_event(user.practice.as_ref(), &event)?;
        self.flush().await?;
        self.notice_security_change(
            &user,
            "Your kluis password was changed",
            "The password of your kluis account was changed with a reset link, and every session was ended.",
        );
        Ok(())
    }

    /// Deletes reset links that expired (run with the session purge).
    pub fn purge_resets(&self) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let mut n = 0;
        for kv in self.resets.iter() {
            let (key, v) = kv?;
            if now >= from_json::<PasswordReset>(&v)?.expires_ms {
                self.resets.remove(key)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
