//! Purge and ownership transfer (issue 9). A purge deletes everything the accounts store holds
//! of an account (sessions, devices, tokens and codes, support grants with their steps, the
//! write log, its rows of the sign-in log, the security events about it, its password hash,
//! second factor, addresses and key-file registration) and leaves a tombstone: the user record,
//! state `purged`, with its id, username, practice and roles only. The vaults go with it
//! (`Store::purge_owner`, run by `admin.rs` under the write pause). The audit trail keeps its
//! entries (kinds and ids, nothing personal) and gains `purged`.
//!
//! A transfer gives a purged account to a new person: the login changes, the state goes back to
//! `invited`, and the new owner enrolls afresh with a new code, password, second factor and key
//! file. It is refused for an account that was not purged first, so no one ever takes over
//! another person's sessions, devices, records or history.

use serde::Serialize;

use super::model::{EventKind, Id, SupportGrant, UserState};
use super::username::Username;
use super::{AccountError, Accounts, Enrollment, from_json};

/// What a purge deleted from the accounts store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    /// Sessions ended.
    pub sessions: usize,
    /// Trusted devices forgotten.
    pub devices: usize,
    /// Codes and links (invitations, resets, unsubscribes, "this was not me").
    pub tokens: usize,
    /// Support grants, with their steps.
    pub support_grants: usize,
    /// Rows of the write log.
    pub writes: usize,
    /// Rows of the sign-in log.
    pub sign_ins: usize,
    /// Security events about the account.
    pub events: usize,
}

/// Which of the records naming an account a deletion leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// The record of its purge (a purge run again keeps it, for the practice's admins).
    ThePurge,
    /// None (a transfer: the new owner's history starts empty).
    Nothing,
}

/// Whether a JSON record names `user` in its `user` field and is not one `keep` spares.
fn names_user(value: &[u8], user: &Id, keep: Keep) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(value) else { return false };
    v.get("user").and_then(|u| u.as_str()) == Some(user.to_string().as_str())
        && !(keep == Keep::ThePurge && v.get("kind").and_then(|k| k.as_str()) == Some("purged"))
}

/// Deletes every key of `tree` under `prefix`; returns how many.
fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) -> Result<usize, AccountError> {
    let mut n = 0;
    for k in tree.scan_prefix(prefix).keys() {
        tree.remove(k?)?;
        n += 1;
    }
    Ok(n)
}

/// Deletes every record under `prefix` whose `user` is `user`, but what `keep` spares;
/// returns how many.
fn remove_naming(tree: &sled::Tree, prefix: &[u8], user: &Id, keep: Keep) -> Result<usize, AccountError> {
    let mut n = 0;
    for kv in tree.scan_prefix(prefix) {
        let (k, v) = kv?;
        if names_user(&v, user, keep) {
            tree.remove(k)?;
            n += 1;
        }
    }
    Ok(n)
}

impl Accounts {
    /// Purges `user`'s account from the accounts store and leaves its tombstone (see the
    /// module). Their vaults are the caller's to purge (`Store::purge_owner`). Running it again
    /// on a purged account deletes whatever a purge cut short left, and records nothing new.
    pub fn purge_user(&self, user: &Id) -> Result<Purged, AccountError> {
        let mut u = self.user(user)?;
        let first = u.state != UserState::Purged;
        // Mail waiting in the outbox to the account's address (no relay set up) goes too.
        if let (Some(m), Some(email)) = (self.mailer(), u.email.as_deref()) {
            if let Err(e) = m.forget_recipient(email) {
                tracing::warn!(error = %e, "deleting a purged account's mail from the outbox failed");
            }
        }
        // First the tombstone, so nothing of the account works from here on.
        u.state = UserState::Purged;
        u.password = None;
        u.email = None;
        u.mobile = None;
        u.vault_public_key = None;
        u.second_factor = None;
        u.pending_totp = None;
        u.failures = Default::default();
        u.notifications = Default::default();
        u.second_factor_due = false;
        self.put_user(&u)?;
        self.tickets.remove_user(user);
        let mut n = Purged::default();
        for kv in self.user_sessions.scan_prefix(user.0) {
            let (k, session) = kv?;
            self.sessions.remove(session)?;
            self.user_sessions.remove(k)?;
            n.sessions += 1;
        }
        n.devices = remove_prefix(&self.devices, &user.0)?;
        n.writes = remove_prefix(&self.writes, &user.0)?;
        for tree in [&self.invitations, &self.resets, &self.unsubscribes, &self.not_me] {
            n.tokens += remove_naming(tree, &[], user, Keep::ThePurge)?;
        }
        // As support staff: the grants they opened stay with the users they helped (whose
        // history it is); only the index by staff goes.
        remove_prefix(&self.support_by_staff, &user.0)?;
        for k in self.support_by_user.scan_prefix(user.0).keys() {
            let gid = k?.get(16..32).and_then(|b| <[u8; 16]>::try_from(b).ok());
            let Some(gid) = gid else { continue };
            if let Some(v) = self.support_grants.get(gid)? {
                let g: SupportGrant = from_json(&v)?;
                self.delete_grant(&g)?;
                n.support_grants += 1;
            }
        }
        let log = u.practice.map_or([0; 16], |p| p.0);
        n.sign_ins = remove_naming(&self.signins, &log, user, Keep::ThePurge)?;
        n.events = remove_naming(&self.events, &log, user, Keep::ThePurge)?;
        if first {
            self.record_event(u.practice.as_ref(), &self.simple_event(EventKind::Purged, &u, "operator", None))?;
        }
        self.flush_blocking()?;
        Ok(n)
    }

    /// Gives the purged account `username` to a new person under the login `to`: it is
    /// invited again, and the new owner enrolls with the code returned.
    pub fn transfer(&self, username: &str, to: &str) -> Result<Enrollment, AccountError> {
        let mut u = self.user_by_name(username)?.ok_or(AccountError::NotFound)?;
        if u.state != UserState::Purged {
            return Err(AccountError::NotAllowed(
                "only a purged account can be transferred: purge it first (`kluis-server user purge`)",
            ));
        }
        let new = Username::parse(to)?;
        let old = Username::parse(&u.username)?;
        if new.key() != old.key() {
            self.usernames
                .compare_and_swap(new.key(), None as Option<&[u8]>, Some(&u.id.0[..]))?
                .map_err(|_| AccountError::Taken("that username is taken"))?;
            self.usernames.remove(old.key())?;
        }
        // The new owner's history starts empty: the purge's own event goes too (the audit
        // trail keeps the purge), and any sign-in row that still names the account (written
        // before attempts on a purged login were logged as unmatched).
        let log = u.practice.map_or([0; 16], |p| p.0);
        remove_naming(&self.events, &log, &u.id, Keep::Nothing)?;
        remove_naming(&self.signins, &log, &u.id, Keep::Nothing)?;
        u.username = new.display().to_owned();
        u.state = UserState::Invited;
        u.second_factor_due = false;
        u.failures = Default::default();
        self.put_user(&u)?;
        let (code, expires_ms) = self.new_invitation(&u)?;
        let e = self.enrollment(&u, code, expires_ms)?;
        self.record_event(u.practice.as_ref(), &self.simple_event(EventKind::Transferred, &u, "operator", None))?;
        self.flush_blocking()?;
        Ok(e)
    }
}
