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
    /// Wrong username or password (one answer for both).
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
        let user = self.succeed(&user, rehashed)?;
        if let Some(old) = old_session {
            self.end_presented_session(old)?;
        }
        let (session, _) = self.start_session(&user, a.user_agent)?;
        let browser = if known {
            None
        } else {
            let token = Secret::token()?;
            let record = KnownBrowser { user: user.id, created_ms: self.clock.now() };
            self.browsers.insert(token.hash(SecretKind::Browser), to_json(&record)?)?;
            Some(token)
        };
        self.log_sign_in(Some(&user), &a, known, SignInResult::Success)?;
        self.flush().await?;
        Ok(Outcome::Success { user: Box::new(user), session, browser })
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
