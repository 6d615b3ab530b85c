//! What the server tells users by e-mail (and SMS): a sign-in (in HIPAA mode every one, with a
//! "this was not me" link that ends that session; otherwise if the user asked for it); the code
//! that confirms a new browser; a new trusted browser; and changes to the account's protection
//! (second factor on, new recovery codes, a reset, a new password). Sent in the background: a
//! relay that fails delays and loses no sign-in (the failure is logged, without content).
//!
//! Security notices are always sent. The optional ones (a new browser, every sign-in outside
//! HIPAA mode) carry a one-click unsubscribe link (RFC 8058) that works once, for 60 days.
//!
//! The texts name only the account, times, the browser and system in kluis's own words, the
//! address and what it tells of a place: never a client, a service or a note (the server holds
//! none of them), and never the User-Agent text itself, which whoever signs in chooses.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use zeroize::Zeroizing;

use super::model::{Device, EventKind, NotMe, NoticeKind, Session, Unsubscribe, User};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::signin::Client;
use super::{AccountError, Accounts, from_json, to_json};
use crate::clock::Millis;
use crate::mail::{Mail, Mailer};

/// The page a "this was not me" link opens (its token in the fragment).
pub(super) const NOT_ME_PAGE: &str = "/act.html";
/// Where the one-click unsubscribe link of an optional notice points (its token in the query,
/// which the request log never writes).
pub const UNSUBSCRIBE_PATH: &str = "/api/unsubscribe";
/// How long an unsubscribe link works, ms (60 days).
pub const UNSUBSCRIBE_LIFETIME_MS: Millis = 60 * 24 * 60 * 60 * 1000;

impl Accounts {
    /// Uses `mailer` for notices.
    #[must_use]
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// Sends one-time codes by SMS through `gateway` too.
    #[must_use]
    pub fn with_sms(mut self, gateway: crate::sms::SmsGateway) -> Self {
        self.sms = Some(Arc::new(gateway));
        self
    }

    /// The mailer, if mail is set up.
    pub fn mailer(&self) -> Option<&Mailer> {
        self.mailer.as_deref()
    }

    /// Runs `send` in the background, counted until it ends (see [`Accounts::mail_sent`]).
    fn background(
        &self,
        user: &User,
        what: &'static str,
        send: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let user = user.id;
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(user = %user, what, "no runtime: not sent");
            return;
        };
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            if let Err(e) = send.await {
                tracing::warn!(user = %user, error = %e, what, "not sent");
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Sends `mail` in the background.
    fn send(&self, user: &User, mail: Mail) {
        let Some(mailer) = self.mailer.clone() else { return };
        self.background(user, "notice", async move { mailer.send(&mail).await.map_err(|e| e.to_string()) });
    }

    /// Waits until the notices under way have been handed over (or `limit` passed): before the
    /// process ends, so that none is lost.
    pub async fn mail_sent(&self, limit: std::time::Duration) {
        let start = std::time::Instant::now();
        while self.in_flight.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Sends a security notice (always), if mail is set up and the user has an address.
    pub(super) fn notify(&self, user: &User, subject: &str, body: String) {
        let Some(to) = user.email.clone() else { return };
        self.send(user, Mail { to, subject: subject.to_owned(), body, unsubscribe: None });
    }

    /// Sends an optional notice of `kind`, if the user wants that kind, with its one-click
    /// unsubscribe link.
    fn notify_optional(&self, user: &User, kind: NoticeKind, subject: &str, body: String) -> Result<(), AccountError> {
        let (Some(mailer), Some(to)) = (self.mailer.as_ref(), user.email.clone()) else { return Ok(()) };
        if !user.notifications.wants(kind) {
            return Ok(());
        }
        let token = Secret::token()?;
        let record =
            Unsubscribe { user: user.id, kind, expires_ms: self.clock.now().saturating_add(UNSUBSCRIBE_LIFETIME_MS) };
        self.unsubscribes.insert(token.hash(SecretKind::Unsubscribe), to_json(&record)?)?;
        let link = format!("{}?token={}", mailer.link(UNSUBSCRIBE_PATH, None), token.expose());
        let body = format!("{body}\n\nTo get no more e-mails like this one: {link}");
        self.send(user, Mail { to, subject: subject.to_owned(), body, unsubscribe: Some(link) });
        Ok(())
    }

    /// A security notice about a change to the account's protection.
    pub(super) fn notice_security_change(&self, user: &User, subject: &str, text: &str) {
        let body = format!(
            "{text}\n\nAccount: {username}\nWhen: {when}\n\nIf this was not you, tell your practice admin at once.",
            username = user.username,
            when = self.when(self.clock.now()),
        );
        self.notify(user, subject, body);
    }

    pub(super) fn when(&self, ms: u64) -> String {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
            .unwrap_or_else(|| format!("{ms} ms after 1970"))
    }

    /// Whether every sign-in of `user` is announced: always in HIPAA mode, otherwise if the
    /// user asked for it.
    fn announces_sign_ins(&self, user: &User) -> Result<bool, AccountError> {
        Ok(self.policy_of(user)?.hipaa_mode || (user.notifications.every_sign_in && user.email.is_some()))
    }

    /// After a sign-in: in a HIPAA-mode practice (or for a user who asked), the notice, with a
    /// link that ends the session.
    pub(super) fn notice_sign_in(&self, user: &User, session: &Session, ip: IpAddr) -> Result<(), AccountError> {
        let Some(mailer) = self.mailer.clone() else { return Ok(()) };
        let hipaa = self.policy_of(user)?.hipaa_mode;
        if !hipaa && !user.notifications.every_sign_in {
            return Ok(());
        }
        let token = Secret::token()?;
        let record = NotMe { user: user.id, session: session.id.clone(), expires_ms: session.expires_ms };
        self.not_me.insert(token.hash(SecretKind::NotMe), to_json(&record)?)?;
        let link = mailer.link(NOT_ME_PAGE, Some(&format!("not-me={}", token.expose())));
        let body = format!(
            "Someone signed in to your kluis account {username}.\n\n\
             When: {when}\nBrowser: {browser}\nAddress: {ip}\nPlace: {place}\n\n\
             If this was you, there is nothing to do.\n\n\
             If this was not you, open this link and choose \"End that session\"; then change your password\n\
             and tell your practice admin:\n{link}\n\n\
             (The link works once, until that session would have ended on its own.)",
            username = user.username,
            when = self.when(session.created_ms),
            browser = super::agent::describe(&session.user_agent),
            place = super::agent::place(ip),
        );
        let subject = "New sign-in to your kluis account";
        if hipaa {
            self.notify(user, subject, body);
            Ok(())
        } else {
            self.notify_optional(user, NoticeKind::EverySignIn, subject, body)
        }
    }

    /// The one-time code that confirms a new browser: by e-mail, and by SMS when a gateway and
    /// a mobile number are there. Always sent (it is how the owner gets in).
    pub(super) fn notice_device_code(&self, user: &User, code: &Secret, a: &Client<'_>) {
        let browser = super::agent::describe(a.user_agent);
        let body = format!(
            "Someone signed in to your kluis account {username} with the right password from a browser this\n\
             account does not know yet.\n\n\
             When: {when}\nBrowser: {browser}\nAddress: {ip}\nPlace: {place}\n\n\
             If this was you, type this code in that browser to confirm it: {code}\n\
             (It works once, for 15 minutes.) You can also approve it from a browser you signed in with before,\n\
             under Account and security.\n\n\
             If this was not you, give this code to nobody: someone knows your password. Change it at once and\n\
             tell your practice admin.",
            username = user.username,
            when = self.when(self.clock.now()),
            ip = a.ip,
            place = super::agent::place(a.ip),
            code = code.expose(),
        );
        self.notify(user, "Your kluis code to confirm a new browser", body);
        if let (Some(sms), Some(mobile)) = (self.sms.clone(), user.mobile.clone()) {
            let text = Zeroizing::new(format!(
                "kluis: {} confirms your new browser. Give it to nobody. Not you? Change your password.",
                code.expose()
            ));
            self.background(user, "SMS", async move { sms.send(&mobile, &text).await.map_err(|e| e.to_string()) });
        }
    }

    /// A browser became a trusted device (optional notice; a sign-in notice, when one is sent
    /// for the same sign-in, says it already).
    pub(super) fn notice_new_device(&self, user: &User, device: &Device, ip: IpAddr) {
        match self.announces_sign_ins(user) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "a notice was not sent");
                return;
            }
        }
        let body = format!(
            "A new browser can now sign in to your kluis account {username}: {name}, confirmed by {how},\n\
             at {when}, from {ip} ({place}).\n\n\
             If this was not you, remove it under Account and security, change your password and tell your\n\
             practice admin.",
            username = user.username,
            name = device.name,
            how = device.confirmed_by,
            when = self.when(device.created_ms),
            place = super::agent::place(ip),
        );
        if let Err(e) = self.notify_optional(user, NoticeKind::NewDevice, "A new browser for your kluis account", body)
        {
            tracing::warn!(user = %user.id, error = %e, "a notice was not sent");
        }
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

    /// An unsubscribe link used: that kind of notice is turned off (once; for 60 days).
    /// Returns whether the link was valid.
    pub async fn unsubscribe(&self, token: &str) -> Result<bool, AccountError> {
        let Some(key) = hash_presented(SecretKind::Unsubscribe, token) else { return Ok(false) };
        let Some(v) = self.unsubscribes.remove(key)? else { return Ok(false) };
        let record: Unsubscribe = from_json(&v)?;
        if self.clock.now() >= record.expires_ms {
            return Ok(false);
        }
        self.update_user(&record.user, |u| u.notifications.turn_off(record.kind))?;
        self.flush().await?;
        Ok(true)
    }

    /// Sets which optional notices a user gets.
    pub async fn set_notifications(
        &self,
        user: &super::model::Id,
        notifications: super::model::Notifications,
    ) -> Result<User, AccountError> {
        let u = self.update_user(user, |u| u.notifications = notifications)?;
        self.flush().await?;
        Ok(u)
    }

    /// Deletes unsubscribe links that expired (run with the session purge).
    pub fn purge_unsubscribes(&self) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let mut n = 0;
        for kv in self.unsubscribes.iter() {
            let (key, v) = kv?;
            if now >= from_json::<Unsubscribe>(&v)?.expires_ms {
                self.unsubscribes.remove(key)?;
                n += 1;
            }
        }
        Ok(n)
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
        let event = self.simple_event(EventKind::SessionEndedByLink, &user, "user:e-mail link", None);
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
