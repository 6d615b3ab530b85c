//! What the server tells users by e-mail: a sign-in (in HIPAA mode, every one), with a "this
//! was not me" link that ends that session; and a second-factor reset. Sent in the background:
//! a relay that fails delays and loses no sign-in (the failure is logged, without content).
//!
//! The texts name only the account, times, the browser and the address: never a client, a
//! service or a note (the server holds none of them).

use std::sync::Arc;

use super::model::{EventKind, NotMe, Session, User};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::{AccountError, Accounts, from_json, to_json};
use crate::mail::{Mail, Mailer};

/// The page a "this was not me" link opens (its token in the fragment).
pub(super) const NOT_ME_PAGE: &str = "/act.html";

impl Accounts {
    /// Uses `mailer` for notices.
    #[must_use]
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// Sends `mail` in the background, if mail is set up and the user has an address.
    pub(super) fn notify(&self, user: &User, subject: &str, body: String) {
        let (Some(mailer), Some(to)) = (self.mailer.clone(), user.email.clone()) else { return };
        let mail = Mail { to, subject: subject.to_owned(), body };
        let user = user.id;
        let send = async move {
            if let Err(e) = mailer.send(&mail).await {
                tracing::warn!(user = %user, error = %e, "a notice was not sent");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(send);
            }
            Err(_) => tracing::warn!(user = %user, "no runtime: a notice was not sent"),
        }
    }

    fn when(&self, ms: u64) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
            .unwrap_or_else(|| format!("{ms} ms after 1970"))
    }

    /// After a sign-in in a HIPAA-mode practice: the notice, with a link that ends the session.
    pub(super) fn notice_sign_in(&self, user: &User, session: &Session, ip: &str) -> Result<(), AccountError> {
        let Some(mailer) = self.mailer.clone() else { return Ok(()) };
        let token = Secret::token()?;
        let record = NotMe { user: user.id, session: session.id.clone(), expires_ms: session.expires_ms };
        self.not_me.insert(token.hash(SecretKind::NotMe), to_json(&record)?)?;
        let link = mailer.link(NOT_ME_PAGE, Some(&format!("not-me={}", token.expose())));
        let body = format!(
            "Someone signed in to your kluis account {username}.\n\n\
             When: {when}\nBrowser: {agent}\nAddress: {ip}\n\n\
             If this was you, there is nothing to do.\n\n\
             If this was not you, open this link and choose \"End that session\"; then change your password\n\
             and tell your practice admin:\n{link}\n\n\
             (The link works once, until that session would have ended on its own.)",
            username = user.username,
            when = self.when(session.created_ms),
            agent = session.user_agent,
        );
        self.notify(user, "New sign-in to your kluis account", body);
        Ok(())
    }

    /// After a second-factor reset.
    pub(super) fn notice_second_factor_reset(&self, user: &User, by: &str) {
        let body = format!(
            "The two-step sign-in of your kluis account {username} was reset by {by} at {when}.\n\n\
             At your next sign-in you set up an authenticator app again. If you did not ask for this, tell your\n\
             practice admin at once.",
            username = user.username,
            when = self.when(self.clock.now()),
        );
        self.notify(user, "Your kluis two-step sign-in was reset", body);
    }

    /// A "this was not me" link used: ends the session it names (once; until that session would
    /// have ended anyway). Returns whether there was one to end.
    pub async fn end_session_by_link(&self, token: &str) -> Result<bool, AccountError> {
        let Some(key) = hash_presented(SecretKind::NotMe, token) else { return Ok(false) };
        let Some(v) = self.not_me.remove(key)? else { return Ok(false) };
        let record: NotMe = from_json(&v)?;
        if self.clock.now() >= record.expires_ms {
            return Ok(false);
        }
        self.end_session_of(&record.user, &record.session)?;
        let user = self.user(&record.user)?;
        let event = super::model::SecurityEvent {
            at_ms: self.clock.now(),
            kind: EventKind::SessionEndedByLink,
            user: record.user,
            by: "user:e-mail link".to_owned(),
            verified_by: String::new(),
            evidence: super::model::Evidence::Other,
        };
        self.record_event(user.practice.as_ref(), &event)?;
        self.flush().await?;
        Ok(true)
    }

    /// Deletes the "not me" links whose sessions would have ended (run with the session purge).
    pub fn purge_not_me(&self) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let mut n = 0;
        for kv in self.not_me.iter() {
            let (key, v) = kv?;
            let r: NotMe = from_json(&v)?;
            if now >= r.expires_ms {
                self.not_me.remove(key)?;
                n += 1;
            }
        }
        Ok(n)
    }
}
