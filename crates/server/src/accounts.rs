//! Accounts: practices, users, invitations, sessions, known browsers and the sign-in log, in
//! their own sled database (`DATA/accounts`, FORMAT.md §9.2).
//!
//! Everything here is server policy, not cryptography: the server can read and change these
//! records. What they protect is access to ciphertext; the notes stay sealed whatever happens
//! here (THREAT-MODEL.md).

pub mod model;
pub mod password;
pub mod secrets;
pub mod throttle;
pub mod username;

pub mod agent;
pub mod audit;
pub mod devices;
pub mod second_factor;

mod confirm;
pub mod members;
mod notices;
mod operator;
pub mod purge;
mod reset;
mod session;
mod signin;
pub mod support;
mod tickets;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Tree;

use crate::clock::{Clock, Millis};
use model::{Id, Invitation, Practice, Role, User, UserState};
use password::Hasher;
use secrets::{Secret, SecretKind};
use username::Username;

pub use confirm::PendingDevice;
pub use members::{AddressEntry, MemberView};
pub use notices::{UNSUBSCRIBE_LIFETIME_MS, UNSUBSCRIBE_PATH};
pub use operator::Enrollment;
pub use reset::{MAX_LIVE_RESETS, RESET_LIFETIME_MS};
pub use session::{SessionView, Signed};
pub use signin::{Attempt, Outcome, SecondStep};
pub use tickets::{DEVICE_TICKET_LIFETIME_MS, MAX_PENDING_DEVICES, MAX_TICKET_TRIES, TICKET_LIFETIME_MS};

/// How long an enrollment or invitation code works, ms (three days).
pub const CODE_LIFETIME_MS: Millis = 72 * 60 * 60 * 1000;
/// Longest practice name, in code points.
pub const MAX_PRACTICE_NAME_CHARS: usize = 100;
/// Longest e-mail address (RFC 5321 §4.5.3.1.3 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest User-Agent kept.
pub const MAX_USER_AGENT_CHARS: usize = 200;
/// Longest name of whoever checked a user's identity.
pub const MAX_VERIFIER_CHARS: usize = 100;
/// Sign-in log entries a user or an admin sees at most.
pub const SIGN_IN_VIEW: usize = 200;

/// What can go wrong with accounts.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Input that breaks a rule (HTTP 400), with the rule.
    #[error("{0}")]
    Invalid(&'static str),
    /// A new password that the policy refuses (HTTP 400), with the reason.
    #[error("{0}")]
    WeakPassword(String),
    /// The name is taken (HTTP 409).
    #[error("{0}")]
    Taken(&'static str),
    /// No such thing, or not yours (HTTP 404).
    #[error("not found")]
    NotFound,
    /// Known, but not allowed to this caller (HTTP 403), with why.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// A code that is unknown, used or expired: one message for all three (HTTP 400).
    #[error("this code is not valid (codes work once and expire after three days)")]
    BadCode,
    /// Too many hashes waiting (HTTP 503).
    #[error("the server is busy; try again in a moment")]
    Busy,
    /// A check of stored data failed (an audit chain that does not verify), with the report.
    #[error("{0}")]
    CheckFailed(String),
    /// Too many wrong codes: wait this many milliseconds (HTTP 429).
    #[error("too many wrong codes; wait before trying again")]
    Throttled(u64),
    /// A failure of the server itself (HTTP 500); the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// sled failed.
    #[error("storage failure: {0}")]
    Storage(#[from] sled::Error),
}

/// The accounts database.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: sled::Db,
    practices: Tree,
    practice_names: Tree,
    users: Tree,
    usernames: Tree,
    invitations: Tree,
    sessions: Tree,
    user_sessions: Tree,
    devices: Tree,
    signins: Tree,
    events: Tree,
    not_me: Tree,
    resets: Tree,
    unsubscribes: Tree,
    support_grants: Tree,
    support_by_user: Tree,
    support_by_staff: Tree,
    support_codes: Tree,
    support_actions: Tree,
    writes: Tree,
    audit_entries: Tree,
    audit_heads: Tree,
    clock: Clock,
    hasher: Hasher,
    throttle: std::sync::Arc<throttle::Throttle>,
    server_key: Option<std::sync::Arc<crate::server_key::ServerKey>>,
    mailer: Option<std::sync::Arc<crate::mail::Mailer>>,
    sms: Option<std::sync::Arc<crate::sms::SmsGateway>>,
    tickets: std::sync::Arc<tickets::Tickets>,
    challenges: std::sync::Arc<devices::Challenges>,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    audit_lock: std::sync::Arc<std::sync::Mutex<()>>,
    /// Held while a support code (or a support step) is counted against its limit and stored,
    /// so that requests made at once cannot pass `MAX_LIVE_GRANTS` (`MAX_SUPPORT_STEPS`) together.
    grants_lock: std::sync::Arc<std::sync::Mutex<()>>,
    pause: crate::pause::WritePause,
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, AccountError> {
    serde_json::to_vec(v).map_err(|_| AccountError::Internal("encoding a record failed"))
}

fn from_json<T: DeserializeOwned>(b: &[u8]) -> Result<T, AccountError> {
    serde_json::from_slice(b).map_err(|_| AccountError::Internal("a stored record is unreadable"))
}

/// The number of hashes allowed at once: one per core.
fn hash_slots() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl Accounts {
    /// Opens (or creates) the accounts database in `dir`.
    pub fn open(dir: &Path, clock: Clock) -> Result<Self, AccountError> {
        Self::open_with(dir, clock, Hasher::new(password::HashParams::CURRENT, hash_slots()))
    }

    /// Opens with a given hasher (tests and benchmarks).
    pub fn open_with(dir: &Path, clock: Clock, hasher: Hasher) -> Result<Self, AccountError> {
        Self::on(sled::open(dir)?, clock, hasher)
    }

    /// The accounts database in a sled database this process has open already (a restore
    /// that has just filled it: reopening it could find its lock still held by sled's own
    /// threads).
    pub fn on_db(db: sled::Db, clock: Clock) -> Result<Self, AccountError> {
        Self::on(db, clock, Hasher::new(password::HashParams::CURRENT, hash_slots()))
    }

    fn on(db: sled::Db, clock: Clock, hasher: Hasher) -> Result<Self, AccountError> {
        // Known-browser tokens (before devices had keys) are no longer honoured.
        db.drop_tree("browsers")?;
        Ok(Accounts {
            practices: db.open_tree("practices")?,
            practice_names: db.open_tree("practice_names")?,
            users: db.open_tree("users")?,
            usernames: db.open_tree("usernames")?,
            invitations: db.open_tree("invitations")?,
            sessions: db.open_tree("sessions")?,
            user_sessions: db.open_tree("user_sessions")?,
            devices: db.open_tree("devices")?,
            signins: db.open_tree("signins")?,
            events: db.open_tree("events")?,
            not_me: db.open_tree("not_me")?,
            resets: db.open_tree("resets")?,
            unsubscribes: db.open_tree("unsubscribes")?,
            support_grants: db.open_tree("support_grants")?,
            support_by_user: db.open_tree("support_by_user")?,
            support_by_staff: db.open_tree("support_by_staff")?,
            support_codes: db.open_tree("support_codes")?,
            support_actions: db.open_tree("support_actions")?,
            writes: db.open_tree("writes")?,
            audit_entries: db.open_tree("audit")?,
            audit_heads: db.open_tree("audit_heads")?,
            db,
            clock,
            hasher,
            throttle: std::sync::Arc::default(),
            server_key: None,
            mailer: None,
            sms: None,
            tickets: std::sync::Arc::default(),
            challenges: std::sync::Arc::default(),
            in_flight: std::sync::Arc::default(),
            audit_lock: std::sync::Arc::default(),
            grants_lock: std::sync::Arc::default(),
            pause: crate::pause::WritePause::default(),
        })
    }

    /// The pause every write takes part in, and a backup takes (`pause.rs`).
    pub fn write_pause(&self) -> &crate::pause::WritePause {
        &self.pause
    }

    /// The sled database, for a backup's snapshot and a restore.
    pub(crate) fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Uses `key` to seal and open the secrets the server reads back (TOTP secrets).
    #[must_use]
    pub fn with_server_key(mut self, key: crate::server_key::ServerKey) -> Self {
        self.server_key = Some(std::sync::Arc::new(key));
        self
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Waits until every write so far is on disk.
    pub async fn flush(&self) -> Result<(), AccountError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|_| AccountError::Internal("flush task failed"))??;
        Ok(())
    }

    pub(crate) fn flush_blocking(&self) -> Result<(), AccountError> {
        self.db.flush()?;
        Ok(())
    }

    /// A user by id.
    pub fn user(&self, id: &Id) -> Result<User, AccountError> {
        from_json(&self.users.get(id.0)?.ok_or(AccountError::NotFound)?)
    }

    /// Changes a user in one atomic step and returns the stored result. sled runs `change` again
    /// if the record changed meanwhile, so nothing written concurrently is lost; a record that
    /// cannot be read is left as it is.
    fn update_user(&self, id: &Id, mut change: impl FnMut(&mut User)) -> Result<User, AccountError> {
        let updated = self.users.update_and_fetch(id.0, |old| {
            let old = old?;
            let Ok(mut u) = from_json::<User>(old) else { return Some(old.to_vec()) };
            change(&mut u);
            to_json(&u).ok().or_else(|| Some(old.to_vec()))
        })?;
        from_json(&updated.ok_or(AccountError::NotFound)?)
    }

    fn put_user(&self, user: &User) -> Result<(), AccountError> {
        self.users.insert(user.id.0, to_json(user)?)?;
        Ok(())
    }

    /// A user by username (any case or Unicode form).
    pub fn user_by_name(&self, name: &str) -> Result<Option<User>, AccountError> {
        let Ok(name) = Username::parse(name) else { return Ok(None) };
        match self.usernames.get(name.key())? {
            Some(id) => {
                let id: [u8; 16] = id.as_ref().try_into().map_err(|_| AccountError::Internal("bad username index"))?;
                self.user(&Id(id)).map(Some)
            }
            None => Ok(None),
        }
    }

    /// A practice by id.
    pub fn practice(&self, id: &Id) -> Result<Practice, AccountError> {
        from_json(&self.practices.get(id.0)?.ok_or(AccountError::NotFound)?)
    }

    /// Sets a practice's policy, within the limits of [`model::Policy::check`].
    pub async fn set_policy(&self, id: &Id, policy: model::Policy) -> Result<Practice, AccountError> {
        policy.check()?;
        let mut practice = self.practice(id)?;
        practice.policy = policy;
        self.practices.insert(id.0, to_json(&practice)?)?;
        self.flush().await?;
        Ok(practice)
    }

    /// Records a security event under its practice (zeros for the operator's staff).
    fn record_event(&self, practice: Option<&Id>, event: &model::SecurityEvent) -> Result<(), AccountError> {
        let prefix = practice.map_or([0; 16], |p| p.0);
        let seq = self.db.generate_id()?;
        let key = [&prefix[..], &event.at_ms.to_be_bytes(), &seq.to_be_bytes()].concat();
        self.events.insert(key, to_json(event)?)?;
        // The audit trail holds its kind and ids only (never the names, reasons or evidence).
        let kind =
            serde_json::to_value(event.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let object = match event.kind {
            model::EventKind::SupportCodeCreated
            | model::EventKind::SupportSessionStarted
            | model::EventKind::SupportSessionEnded => event.detail.clone().unwrap_or_default(),
            _ => event.device.clone().unwrap_or_default(),
        };
        let actor = self.actor_of(&event.by, &event.user);
        self.audit(&Id(prefix), &kind, Some(&event.user), &actor, &object)?;
        Ok(())
    }

    /// A security event without an identity check: `by` did `kind` to `user`'s account.
    fn simple_event(
        &self,
        kind: model::EventKind,
        user: &User,
        by: &str,
        device: Option<&str>,
    ) -> model::SecurityEvent {
        model::SecurityEvent {
            at_ms: self.clock.now(),
            kind,
            user: user.id,
            by: by.to_owned(),
            verified_by: String::new(),
            evidence: None,
            device: device.map(str::to_owned),
            detail: None,
        }
    }

    /// As [`simple_event`](Self::simple_event), with what it concerns in `detail` (a support
    /// grant's id, the reason of an IP release).
    fn detailed_event(&self, kind: model::EventKind, user: &User, by: &str, detail: String) -> model::SecurityEvent {
        model::SecurityEvent { detail: Some(detail), ..self.simple_event(kind, user, by, None) }
    }

    /// The security events about one user, newest first (what they are told in the app, too).
    pub fn events_of(&self, user: &User, limit: usize) -> Result<Vec<model::SecurityEvent>, AccountError> {
        let prefix = user.practice.map_or([0; 16], |p| p.0);
        let mut out = Vec::new();
        for v in self.events.scan_prefix(prefix).values().rev() {
            let e: model::SecurityEvent = from_json(&v?)?;
            if e.user == user.id {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Records that the operator exported `user`'s vaults.
    pub fn record_export(&self, user: &User) -> Result<(), AccountError> {
        self.record_event(
            user.practice.as_ref(),
            &self.simple_event(model::EventKind::Exported, user, "operator", None),
        )?;
        self.flush_blocking()
    }

    /// A practice's security events, newest first.
    pub fn events(&self, practice: Option<&Id>, limit: usize) -> Result<Vec<model::SecurityEvent>, AccountError> {
        let prefix = practice.map_or([0; 16], |p| p.0);
        self.events.scan_prefix(prefix).values().rev().take(limit).map(|v| from_json(&v?)).collect()
    }

    /// A practice by name (any case or Unicode form).
    pub fn practice_by_name(&self, name: &str) -> Result<Option<Practice>, AccountError> {
        match self.practice_names.get(username::key_of(name.trim()))? {
            Some(id) => {
                let id: [u8; 16] = id.as_ref().try_into().map_err(|_| AccountError::Internal("bad practice index"))?;
                self.practice(&Id(id)).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Every user of a practice (for its admins), by username.
    pub fn practice_users(&self, practice: &Id) -> Result<Vec<User>, AccountError> {
        let mut out = Vec::new();
        for v in self.users.iter().values() {
            let u: User = from_json(&v?)?;
            if u.practice.as_ref() == Some(practice) {
                out.push(u);
            }
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// Whether any practice exists (a first run has none).
    pub fn is_empty(&self) -> bool {
        self.practices.is_empty()
    }

    /// Creates a practice.
    fn create_practice(&self, name: &str) -> Result<Practice, AccountError> {
        let name = name.trim();
        let n = name.chars().count();
        if n == 0 || n > MAX_PRACTICE_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AccountError::Invalid("a practice name has 1 to 100 characters and no control characters"));
        }
        let practice = Practice {
            id: Id(secrets::random_id()?),
            name: name.to_owned(),
            created_ms: self.clock.now(),
            policy: Default::default(),
        };
        self.practice_names
            .compare_and_swap(username::key_of(name), None as Option<&[u8]>, Some(&practice.id.0[..]))?
            .map_err(|_| AccountError::Taken("a practice with that name exists"))?;
        self.practices.insert(practice.id.0, to_json(&practice)?)?;
        Ok(practice)
    }

    /// Creates an invited user (no password yet) and the invitation code that enrolls them.
    fn create_invited(
        &self,
        name: &str,
        practice: Option<Id>,
        roles: BTreeSet<Role>,
    ) -> Result<(User, Secret, Millis), AccountError> {
        let name = Username::parse(name)?;
        if roles.is_empty() {
            return Err(AccountError::Invalid("give the user at least one role"));
        }
        if roles.contains(&Role::Support) != practice.is_none() || (roles.contains(&Role::Support) && roles.len() > 1) {
            return Err(AccountError::Invalid("support staff are in no practice and have no other role"));
        }
        let user = User {
            id: Id(secrets::random_id()?),
            username: name.display().to_owned(),
            practice,
            roles,
            state: UserState::Invited,
            password: None,
            email: None,
            mobile: None,
            created_ms: self.clock.now(),
            failures: Default::default(),
            vault_public_key: None,
            second_factor: None,
            pending_totp: None,
            notifications: Default::default(),
            second_factor_due: false,
        };
        self.usernames
            .compare_and_swap(name.key(), None as Option<&[u8]>, Some(&user.id.0[..]))?
            .map_err(|_| AccountError::Taken("that username is taken"))?;
        self.put_user(&user)?;
        let (code, expires_ms) = self.new_invitation(&user)?;
        Ok((user, code, expires_ms))
    }

    /// A fresh code for an invited user, and when it expires; earlier codes for the same user
    /// stop working.
    fn new_invitation(&self, user: &User) -> Result<(Secret, Millis), AccountError> {
        if user.state != UserState::Invited {
            return Err(AccountError::Invalid("that user has enrolled already"));
        }
        for kv in self.invitations.iter() {
            let (k, v) = kv?;
            let inv: Invitation = from_json(&v)?;
            if inv.user == user.id {
                self.invitations.remove(k)?;
            }
        }
        let code = Secret::code()?;
        let inv = Invitation { user: user.id, expires_ms: self.clock.now().saturating_add(CODE_LIFETIME_MS) };
        self.invitations.insert(code.hash(SecretKind::Code), to_json(&inv)?)?;
        Ok((code, inv.expires_ms))
    }
}

/// Keeps at most `max` characters of untrusted text for logs, dropping control characters.
pub fn shorten(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}
