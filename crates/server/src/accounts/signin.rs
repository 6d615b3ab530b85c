//! Password sign-in: throttled per IP and per account, logged, and silent about which
//! usernames exist (the same answers and the same Argon2 work for both).
//!
//! A failure is counted *before* the password is checked (and cleared on success), so parallel
//! guesses cannot slip past the count.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::devices::{DeviceKey, DeviceProof};
use super::model::Id;
use super::model::{Failures, SignIn, SignInResult, User, UserState};
use super::password::{Password, Verified};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::throttle::{Gate, fail, gate};
use super::tickets::{Stage, TICKET_LIFETIME_MS, Ticket};
use super::{AccountError, Accounts, MAX_USER_AGENT_CHARS, from_json, shorten, to_json};

/// The second step of a sign-in, as it arrives.
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

impl std::fmt::Debug for SecondStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The ticket and the code are secrets.
        f.debug_struct("SecondStep").field("ip", &self.ip).finish_non_exhaustive()
    }
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
    /// The browser's proof of its device key, if it sent one (checked after the address's
    /// throttle).
    pub device: Option<&'a DeviceProof>,
    /// The session cookie it presented, if any: ended on success (a new session replaces it).
    pub old_session: Option<&'a str>,
}

/// What a sign-in step gets.
#[derive(Debug)]
pub enum Outcome {
    /// Signed in: the session token.
    Success {
        /// The user.
        user: Box<User>,
        /// The session cookie's value.
        session: Secret,
    },
    /// The password was right and the account has a second factor: ask for a code, then
    /// call [`Accounts::second_step`] with this ticket.
    SecondFactor {
        /// The ticket cookie's value.
        ticket: Secret,
    },
    /// Password (and code) right, from a browser the account does not trust: it must be
    /// confirmed with the code sent by `channels`, or approved from a trusted device.
    ConfirmDevice {
        /// The ticket cookie's value.
        ticket: Secret,
        /// `e-mail`, `sms`: where the code went; `device`: a trusted device can approve.
        channels: Vec<&'static str>,
        /// The number this browser shows, which a trusted device types to approve it.
        number: String,
    },
    /// Still waiting for a trusted device's approval.
    Waiting,
    /// Wrong username or password (one answer for both); or a wrong or spent code.
    Failed,
    /// A trusted device refused this browser.
    Denied,
    /// Too many attempts: wait this many milliseconds.
    Throttled(u64),
    /// Too many consecutive failures from browsers like this one.
    Locked,
}

/// Who is signing in, as logged and looked up (an attempt without its password).
pub(super) struct Client<'a> {
    pub(super) ip: IpAddr,
    pub(super) user_agent: &'a str,
    pub(super) device: Option<&'a DeviceKey>,
}

impl Accounts {
    /// Whether the proven device is one this user trusts.
    fn is_trusted(&self, device: Option<&DeviceKey>, user: &Id) -> Result<bool, AccountError> {
        match device {
            Some(d) => Ok(self.trusted_device(user, d)?.is_some()),
            None => Ok(false),
        }
    }

    pub(super) fn log_sign_in(
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
            known_device: known,
            device: a.device.map(DeviceKey::id),
            result,
        };
        let practice = user.and_then(|u| u.practice).map_or([0; 16], |p| p.0);
        let seq = self.db.generate_id()?;
        let key = [&practice[..], &now.to_be_bytes(), &seq.to_be_bytes()].concat();
        self.signins.insert(key, to_json(&entry)?)?;
        // Attempts on an account go into its practice's audit trail (an unmatched username is
        // no account's, and is not kept anywhere).
        if let Some(u) = user {
            let result =
                serde_json::to_value(result).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let actor = if result == "success" { format!("user:{}", u.id) } else { "system".to_owned() };
            let object = entry.device.clone().unwrap_or_default();
            self.audit(&Id(practice), &format!("sign-in-{result}"), Some(&u.id), &actor, &object)?;
        }
        tracing::info!(user = ?entry.user.map(|u| u.to_string()), known_device = known, result = ?result, "sign-in");
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

    /// Counts a failure up front if the gate is open; returns the gate and the counts before.
    pub(super) fn reserve_failure(&self, user: &User, known: bool) -> Result<(Gate, Failures), AccountError> {
        let now = self.clock.now();
        let mut decision = Gate::Open;
        let mut before = Failures::default();
        self.update_user(&user.id, |u| {
            before = u.failures;
            decision = gate(&u.failures, known, now);
            if decision == Gate::Open {
                fail(&mut u.failures, known, now);
            }
        })?;
        Ok((decision, before))
    }

    /// Takes back the failure counted up front for a step whose secret was right, when the
    /// sign-in goes on to another step (whose wrong answers count instead); stores a rehashed
    /// password in the same update.
    pub(super) fn take_back(
        &self,
        user: &User,
        known: bool,
        before: Failures,
        rehashed: Option<&String>,
    ) -> Result<(), AccountError> {
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
            if let Some(phc) = rehashed {
                u.password = Some(phc.clone());
            }
        })?;
        Ok(())
    }

    /// After a successful sign-in: clears the failure count of trusted devices, or, when `all`
    /// (a new browser confirmed out of band), of every kind; stores a rehashed password in the
    /// same atomic update, so nothing written to the user meanwhile is lost. A sign-in from a
    /// trusted device leaves the count of unknown browsers as it is, so a stranger's guesses at
    /// codes stay bounded whatever the owner does.
    pub(super) fn succeed(&self, user: &User, all: bool, rehashed: Option<String>) -> Result<User, AccountError> {
        self.update_user(&user.id, |u| {
            if all {
                u.failures = Failures::default();
            } else {
                u.failures.known = 0;
                u.failures.known_last_ms = 0;
            }
            if let Some(phc) = &rehashed {
                u.password = Some(phc.clone());
            }
        })
    }

    /// The gate of a step as an outcome, logged; `None` when the step may go ahead.
    pub(super) fn gated(
        &self,
        user: Option<&User>,
        a: &Client<'_>,
        known: bool,
        decision: Gate,
    ) -> Result<Option<Outcome>, AccountError> {
        Ok(match decision {
            Gate::Open => None,
            Gate::Wait(ms) => {
                self.log_sign_in(user, a, known, SignInResult::Throttled)?;
                Some(Outcome::Throttled(ms))
            }
            Gate::Locked => {
                self.log_sign_in(user, a, known, SignInResult::Locked)?;
                Some(Outcome::Locked)
            }
        })
    }

    /// Signs in with username and password.
    pub async fn sign_in(&self, attempt: Attempt<'_>) -> Result<Outcome, AccountError> {
        let Attempt { username, password, ip, user_agent, device, old_session } = attempt;
        // A purged login is no one's: an attempt on it is an unmatched username (logged under no
        // account, counted on no account), so nothing new ever names the purged account.
        let user = self.user_by_name(username)?.filter(|u| u.state != UserState::Purged);
        if let Err(ms) = self.throttle.ip(ip) {
            let a = Client { ip, user_agent, device: None };
            self.log_sign_in(user.as_ref(), &a, false, SignInResult::Throttled)?;
            return Ok(Outcome::Throttled(ms));
        }
        let device = device.map(|p| self.check_device_proof(p)).transpose()?;
        let a = Client { ip, user_agent, device: device.as_ref() };
        let known = match &user {
            Some(u) => self.is_trusted(a.device, &u.id)?,
            None => false,
        };
        let (decision, before) = match &user {
            Some(u) => self.reserve_failure(u, known)?,
            None => {
                let key: [u8; 32] = Sha256::digest(super::username::key_of(username).as_bytes()).into();
                (self.throttle.attempt_unmatched(key, self.clock.now()), Failures::default())
            }
        };
        if let Some(out) = self.gated(user.as_ref(), &a, known, decision)? {
            return Ok(out);
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
            self.take_back(&user, known, before, rehashed.as_ref())?;
            let ticket = Secret::token()?;
            let now = self.clock.now();
            let waiting = Ticket {
                user: user.id,
                known,
                device: device.clone(),
                second_factor: false,
                expires_ms: now.saturating_add(TICKET_LIFETIME_MS),
                tries: 0,
                ip,
                user_agent: shorten(user_agent, MAX_USER_AGENT_CHARS),
                created_ms: now,
                stage: Stage::SecondFactor,
            };
            self.tickets.insert(ticket.hash(SecretKind::Ticket), waiting, now);
            self.log_sign_in(Some(&user), &a, known, SignInResult::SecondFactor)?;
            self.flush().await?;
            return Ok(Outcome::SecondFactor { ticket });
        }
        if !known {
            self.take_back(&user, known, before, rehashed.as_ref())?;
            return self.confirm_new_device(&user, &a, false).await;
        }
        let user = self.succeed(&user, false, rehashed)?;
        self.finish_sign_in(user, &a, known, false, old_session).await
    }

    /// The session, the device's last sighting, the notices and the log entry.
    pub(super) async fn finish_sign_in(
        &self,
        user: User,
        a: &Client<'_>,
        known: bool,
        second_factor: bool,
        old_session: Option<&str>,
    ) -> Result<Outcome, AccountError> {
        if let Some(old) = old_session {
            self.end_presented_session(old)?;
        }
        if let Some(d) = a.device {
            self.touch_device(&user.id, d)?;
        }
        let (session, record) = self.start_session(&user, a.user_agent, a.device.map(DeviceKey::id), second_factor)?;
        self.notice_sign_in(&user, &record, a.ip)?;
        self.log_sign_in(Some(&user), a, known, SignInResult::Success)?;
        self.flush().await?;
        Ok(Outcome::Success { user: Box::new(user), session })
    }

    /// The second step of a sign-in: a TOTP code or a recovery code for the ticket the first
    /// step gave. Throttled per IP and counted against the account like a password; a ticket
    /// ends after [`super::MAX_TICKET_TRIES`] wrong codes or [`TICKET_LIFETIME_MS`].
    pub async fn second_step(&self, step: SecondStep<'_>) -> Result<Outcome, AccountError> {
        let now = self.clock.now();
        let Some(key) = hash_presented(SecretKind::Ticket, step.ticket) else { return Ok(Outcome::Failed) };
        let Some(ticket) = self.tickets.get(&key, now).filter(|t| matches!(t.stage, Stage::SecondFactor)) else {
            return Ok(Outcome::Failed);
        };
        let user = self.user(&ticket.user)?;
        let a = Client { ip: step.ip, user_agent: step.user_agent, device: ticket.device.as_ref() };
        // A device removed since the password step is no longer trusted.
        let known = ticket.known && self.is_trusted(a.device, &user.id)?;
        if let Err(ms) = self.throttle.ip(step.ip) {
            self.log_sign_in(Some(&user), &a, known, SignInResult::Throttled)?;
            return Ok(Outcome::Throttled(ms));
        }
        let (decision, before) = self.reserve_failure(&user, known)?;
        if decision == Gate::Locked {
            self.tickets.remove(&key);
        }
        if let Some(out) = self.gated(Some(&user), &a, known, decision)? {
            return Ok(out);
        }
        if user.state != UserState::Active || !self.spend_second_factor(&user, step.code)? {
            self.tickets.fail(&key);
            self.log_sign_in(Some(&user), &a, known, SignInResult::Failed)?;
            self.flush().await?;
            return Ok(Outcome::Failed);
        }
        if self.tickets.take(&key, now).is_none() {
            return Ok(Outcome::Failed);
        }
        if !known {
            self.take_back(&user, false, before, None)?;
            return self.confirm_new_device(&user, &a, true).await;
        }
        let user = self.succeed(&user, false, None)?;
        self.finish_sign_in(user, &a, known, true, step.old_session).await
    }

    /// Enrollment followed by the first sign-in: the session for the new user. The enrolling
    /// browser becomes a trusted device (its code came out of band).
    pub async fn enroll_and_sign_in(
        &self,
        code: &str,
        password: Password,
        email: &str,
        mobile: Option<&str>,
        user_agent: &str,
        device: Option<DeviceKey>,
    ) -> Result<(User, Secret), AccountError> {
        let user = self.enroll(code, password, email, mobile).await?;
        if let Some(d) = &device {
            self.trust_device(&user, d, user_agent, "enrollment")?;
        }
        let (session, _) = self.start_session(&user, user_agent, device.as_ref().map(DeviceKey::id), false)?;
        self.flush().await?;
        Ok((user, session))
    }

    /// Takes an attempt's IP bucket for a non-sign-in attempt (enrollment codes).
    pub fn throttle_ip(&self, ip: IpAddr) -> Result<(), u64> {
        self.throttle.ip(ip)
    }
}
