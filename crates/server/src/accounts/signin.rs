//! Password sign-in: throttled per IP and per account, logged, and silent about which
//! usernames exist (the same answers and the same Argon2 work for both).
//!
//! A failure is counted *before* the password is checked (and cleared on success), so parallel
//! guesses cannot slip past the count.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::model::{Failures, Id, KnownBrowser, SignIn, SignInResult, User, UserState};
use super::password::{Password, Verified};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::throttle::{Gate, fail, gate};
use super::{AccountError, Accounts, MAX_USER_AGENT_CHARS, from_json, shorten, to_json};

/// How long the server honours a known-browser token, ms (400 days, as the cookie).
pub const KNOWN_BROWSER_LIFETIME_MS: u64 = 400 * 24 * 60 * 60 * 1000;
/// How long a sign-in waits for its second factor after the password, ms.
pub const TICKET_LIFETIME_MS: u64 = 5 * 60 * 1000;
/// Wrong second-factor codes one ticket takes before it ends (each also counts as a failed
/// sign-in of the account, so the account's back-off applies as well).
pub const MAX_TICKET_TRIES: u32 = 5;

/// A sign-in whose password was right, waiting for its second factor; in memory only (a
/// restart asks for the password again). The key is the hash of the ticket cookie.
#[derive(Debug, Default)]
pub(super) struct Tickets(std::sync::Mutex<std::collections::HashMap<[u8; 32], Ticket>>);

#[derive(Debug, Clone)]
struct Ticket {
    user: Id,
    known: bool,
    expires_ms: u64,
    tries: u32,
}

/// The second step of a sign-in, as it arrives.
#[derive(Debug)]
pub struct SecondStep<'a> {
    /// The ticket cookie the first step set.
    pub ticket: &'a str,
    /// A TOTP code or a recovery code.
    pub code: &'a str,
    /// The client's address.
    pub ip: IpAddr,
    /// Its User-Agent.
    pub user_agent: &'a str,
    /// The session cookie it presented, if any: ended on success.
    pub old_session: Option<&'a str>,
}

/// One sign-in attempt as it arrives.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The username as typed.
    pub username: &'a str,
    /// The password.
    pub password: Password,
    /// The client's address.
    pub ip: IpAddr,
    /// Its User-Agent.
    pub user_agent: &'a str,
    /// The known-browser token it presented (cookie or header), if any.
    pub browser: Option<&'a str>,
    /// The session cookie it presented, if any: ended on success (a new session replaces it).
    pub old_session: Option<&'a str>,
}

/// What a sign-in attempt gets.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in: the session token, and a known-browser token when the browser had none.
    Success {
        /// The user.
        user: Box<User>,
        /// The session cookie's value.
        session: Secret,
        /// A new known-browser cookie's value.
        browser: Option<Secret>,
    },
    /// The password was right and the account has a second factor: ask for a code, then
    /// call [`Accounts::second_step`] with this ticket.
    SecondFactor {
        /// The ticket cookie's value.
        ticket: Secret,
    },
    /// Wrong username or password (one answer for both); or a wrong or spent code.
    Failed,
    /// Too many attempts: wait this many milliseconds.
    Throttled(u64),
    /// Too many consecutive failures from browsers like this one.
    Locked,
}

impl Accounts {
    fn known_browser(&self, token: Option<&str>, user: &Id) -> Result<bool, AccountError> {
        let Some(key) = token.and_then(|c| hash_presented(SecretKind::Browser, c)) else { return Ok(false) };
        let Some(v) = self.browsers.get(key)? else { return Ok(false) };
        let known: KnownBrowser = from_json(&v)?;
        if self.clock.now() >= known.created_ms.saturating_add(KNOWN_BROWSER_LIFETIME_MS) {
            self.browsers.remove(key)?;
            return Ok(false);
        }
        Ok(known.user == *user)
    }

    fn log_sign_in(
        &self,
        user: Option<&User>,
        a: &Client<'_>,
        known: bool,
        result: SignInResult,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        let entry = SignIn {
            at_ms: now,
            user: user.map(|u| u.id),
            ip: a.ip.to_string(),
            user_agent: shorten(a.user_agent, MAX_USER_AGENT_CHARS),
            known_browser: known,
            result,
        };
        let practice = user.and_then(|u| u.practice).map_or([0; 16], |p| p.0);
        let seq = self.db.generate_id()?;
        let key = [&practice[..], &now.to_be_bytes(), &seq.to_be_bytes()].concat();
        self.signins.insert(key, to_json(&entry)?)?;
        tracing::info!(user = ?entry.user.map(|u| u.to_string()), known_browser = known, result = ?result, "sign-in");
        Ok(())
    }

    /// The sign-in log of a practice, newest first (`None`: the operator's own staff and
    /// attempts that matched no account).
    pub fn sign_ins(&self, practice: Option<&Id>, limit: usize) -> Result<Vec<SignIn>, AccountError> {
        let prefix = practice.map_or([0; 16], |p| p.0);
        self.signins.scan_prefix(prefix).values().rev().take(limit).map(|v| from_json(&v?)).collect()
    }

    /// One user's own sign-in attempts, newest first.
    pub fn sign_ins_of(&self, user: &User, limit: usize) -> Result<Vec<SignIn>, AccountError> {
        let prefix = user.practice.map_or([0; 16], |p| p.0);
        let mut out = Vec::new();
        for v in self.signins.scan_prefix(prefix).values().rev() {
            let entry: SignIn = from_json(&v?)?;
            if entry.user == Some(user.id) {
                out.push(entry);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Counts a failure up front if the gate is open; returns the gate.
    fn reserve_failure(&self, user: &User, known: bool) -> Result<Gate, AccountError> {
        let now = self.clock.now();
        let mut decision = Gate::Open;
        self.update_user(&user.id, |u| {
            decision = gate(&u.failures, known, now);
            if decision == Gate::Open {
                fail(&mut u.failures, known, now);
            }
        })?;
        Ok(decision)
    }

    /// Clears the failure counts (and stores a rehashed password) in one atomic update, so
    /// nothing written to the user meanwhile is lost.
    fn succeed(&self, user: &User, rehashed: Option<String>) -> Result<User, AccountError> {
        self.update_user(&user.id, |u| {
            u.failures = Failures::default();
            if let Some(phc) = &rehashed {
                u.password = Some(phc.clone());
            }
        })
    }

    /// Signs in with username and password.
    pub async fn sign_in(&self, attempt: Attempt<'_>) -> Result<Outcome, AccountError> {
        let Attempt { username, password, ip, user_agent, browser, old_session } = attempt;
        let a = Client { username, ip, user_agent, browser };
        let user = self.user_by_name(a.username)?;
        let known = match &user {
            Some(u) => self.known_browser(a.browser, &u.id)?,
            None => false,
        };
        if let Err(ms) = self.throttle.ip(a.ip) {
            self.log_sign_in(user.as_ref(), &a, known, SignInResult::Throttled)?;
            return Ok(Outcome::Throttled(ms));
        }
        let decision = match &user {
            Some(u) => self.reserve_failure(u, known)?,
            None => {
                let key: [u8; 32] = Sha256::digest(super::username::key_of(a.username).as_bytes()).into();
                self.throttle.attempt_unmatched(key, self.clock.now())
            }
        };
        match decision {
            Gate::Open => {}
            Gate::Wait(ms) => {
                self.log_sign_in(user.as_ref(), &a, known, SignInResult::Throttled)?;
                return Ok(Outcome::Throttled(ms));
            }
            Gate::Locked => {
                self.log_sign_in(user.as_ref(), &a, known, SignInResult::Locked)?;
                return Ok(Outcome::Locked);
            }
        }
        let phc = user.as_ref().filter(|u| u.state == UserState::Active).and_then(|u| u.password.clone());
        let verified = self.hasher.verify(password, phc).await?;
        let (user, rehashed) = match (user, verified) {
            (Some(u), Verified::Yes) => (u, None),
            (Some(u), Verified::YesRehashed(phc)) => (u, Some(phc)),
            (user, _) => {
                let result = match &user {
                    Some(u) if u.state == UserState::Disabled => SignInResult::Disabled,
                    _ => SignInResult::Failed,
                };
                self.log_sign_in(user.as_ref(), &a, known, result)?;
                self.flush().await?;
                return Ok(Outcome::Failed);
            }
        };
        if user.second_factor.is_some() {
            // The password was right, so the failure counted up front is taken back; each
            // wrong code of the second step counts instead.
            let before = user.failures;
            self.update_user(&user.id, |u| {
                let (n, last, was, was_last) = if known {
                    (&mut u.failures.known, &mut u.failures.known_last_ms, before.known, before.known_last_ms)
                } else {
                    (&mut u.failures.unknown, &mut u.failures.unknown_last_ms, before.unknown, before.unknown_last_ms)
                };
                *n = n.saturating_sub(1);
                if *n == was {
                    *last = was_last;
                }
                if let Some(phc) = &rehashed {
                    u.password = Some(phc.clone());
                }
            })?;
            let ticket = Secret::token()?;
            let waiting = Ticket {
                user: user.id,
                known,
                expires_ms: self.clock.now().saturating_add(TICKET_LIFETIME_MS),
                tries: 0,
            };
            self.tickets.insert(ticket.hash(SecretKind::Ticket), waiting, self.clock.now());
            self.log_sign_in(Some(&user), &a, known, SignInResult::SecondFactor)?;
            self.flush().await?;
            return Ok(Outcome::SecondFactor { ticket });
        }
        let user = self.succeed(&user, rehashed)?;
        self.finish_sign_in(user, &a, known, old_session).await
    }

    /// The session, a known-browser token for a browser that had none, and the log entry.
    async fn finish_sign_in(
        &self,
        user: User,
        a: &Client<'_>,
        known: bool,
        old_session: Option<&str>,
    ) -> Result<Outcome, AccountError> {
        if let Some(old) = old_session {
            self.end_presented_session(old)?;
        }
        let (session, record) = self.start_session(&user, a.user_agent)?;
        let hipaa = match user.practice {
            Some(p) => self.practice(&p)?.policy.hipaa_mode,
            None => false,
        };
        if hipaa {
            self.notice_sign_in(&user, &record, &a.ip.to_string())?;
        }
        let browser = if known {
            None
        } else {
            let token = Secret::token()?;
            let record = KnownBrowser { user: user.id, created_ms: self.clock.now() };
            self.browsers.insert(token.hash(SecretKind::Browser), to_json(&record)?)?;
            Some(token)
        };
        self.log_sign_in(Some(&user), a, known, SignInResult::Success)?;
        self.flush().await?;
        Ok(Outcome::Success { user: Box::new(user), session, browser })
    }

    /// The second step of a sign-in: a TOTP code or a recovery code for the ticket the first
    /// step gave. Throttled per IP and counted against the account like a password; a ticket
    /// ends after [`MAX_TICKET_TRIES`] wrong codes or [`TICKET_LIFETIME_MS`].
    pub async fn second_step(&self, step: SecondStep<'_>) -> Result<Outcome, AccountError> {
        let now = self.clock.now();
        let Some(key) = hash_presented(SecretKind::Ticket, step.ticket) else { return Ok(Outcome::Failed) };
        let Some(ticket) = self.tickets.get(&key, now) else { return Ok(Outcome::Failed) };
        let user = self.user(&ticket.user)?;
        let a = Client { username: &user.username, ip: step.ip, user_agent: step.user_agent, browser: None };
        if let Err(ms) = self.throttle.ip(step.ip) {
            self.log_sign_in(Some(&user), &a, ticket.known, SignInResult::Throttled)?;
            return Ok(Outcome::Throttled(ms));
        }
        match self.reserve_failure(&user, ticket.known)? {
            Gate::Open => {}
            Gate::Wait(ms) => {
                self.log_sign_in(Some(&user), &a, ticket.known, SignInResult::Throttled)?;
                return Ok(Outcome::Throttled(ms));
            }
            Gate::Locked => {
                self.tickets.remove(&key);
                self.log_sign_in(Some(&user), &a, ticket.known, SignInResult::Locked)?;
                return Ok(Outcome::Locked);
            }
        }
        if user.state != UserState::Active || !self.spend_second_factor(&user, step.code)? {
            self.tickets.fail(&key);
            self.log_sign_in(Some(&user), &a, ticket.known, SignInResult::Failed)?;
            self.flush().await?;
            return Ok(Outcome::Failed);
        }
        self.tickets.remove(&key);
        let user = self.succeed(&user, None)?;
        self.finish_sign_in(user, &a, ticket.known, step.old_session).await
    }

    /// Enrollment followed by the first sign-in: the session for the new user.
    pub async fn enroll_and_sign_in(
        &self,
        code: &str,
        password: Password,
        email: &str,
        mobile: Option<&str>,
        user_agent: &str,
    ) -> Result<(User, Secret), AccountError> {
        let user = self.enroll(code, password, email, mobile).await?;
        let (session, _) = self.start_session(&user, user_agent)?;
        self.flush().await?;
        Ok((user, session))
    }

    /// Takes an attempt's IP bucket for a non-sign-in attempt (enrollment codes).
    pub fn throttle_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.throttle.ip(ip)
    }
}

/// An attempt without its password (what is logged and looked up).
struct Client<'a> {
    username: &'a str,
    ip: IpAddr,
    user_agent: &'a str,
    browser: Option<&'a str>,
}

impl Tickets {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Ticket>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a ticket, dropping the expired ones.
    fn insert(&self, key: [u8; 32], ticket: Ticket, now: u64) {
        let mut t = self.lock();
        t.retain(|_, w| w.expires_ms > now);
        t.insert(key, ticket);
    }

    /// A live ticket.
    fn get(&self, key: &[u8; 32], now: u64) -> Option<Ticket> {
        let mut t = self.lock();
        match t.get(key) {
            Some(w) if w.expires_ms > now => Some(w.clone()),
            Some(_) => {
                t.remove(key);
                None
            }
            None => None,
        }
    }

    /// Counts a wrong code; the ticket ends at the limit.
    fn fail(&self, key: &[u8; 32]) {
        let mut t = self.lock();
        if let Some(w) = t.get_mut(key) {
            w.tries = w.tries.saturating_add(1);
            if w.tries >= MAX_TICKET_TRIES {
                t.remove(key);
            }
        }
    }

    fn remove(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }
}
