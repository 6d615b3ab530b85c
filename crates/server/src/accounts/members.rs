//! What a practice admin does to the practice's members: invite (with the invitation sent by
//! e-mail when an address is given), send an invitation again, disable and enable accounts; and
//! the IP release process: the addresses of sign-ins and writes are recorded, but an admin sees
//! them only for one member at a time, after typing a reason, which is recorded as a security
//! event and told to that member (EasyPractice's promise).

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use super::model::{EventKind, Id, Role, User, UserState, Write};
use super::{AccountError, Accounts, Enrollment, SIGN_IN_VIEW, from_json, to_json};
use crate::clock::Millis;

/// The shortest and longest reason for an IP release, in characters.
pub const IP_REASON_CHARS: std::ops::RangeInclusive<usize> = 10..=500;
/// How long the address of a write is kept, ms (400 days, as the sign-in log's browsers).
pub const WRITES_KEEP_MS: Millis = 400 * 24 * 60 * 60 * 1000;

/// One address released: of a sign-in attempt or of a write to a vault.
#[derive(Debug, Clone, Serialize)]
pub struct AddressEntry {
    /// When.
    pub at_ms: Millis,
    /// `sign-in` or `write`.
    pub kind: &'static str,
    /// What: the sign-in's result, or the vault written to.
    pub what: String,
    /// The address.
    pub ip: String,
}

impl Accounts {
    /// A member of `admin`'s practice by username (the admin's own practice only; a purged
    /// account is no one's to act on).
    fn member(&self, admin: &User, username: &str) -> Result<User, AccountError> {
        let practice = admin.practice.ok_or(AccountError::NotFound)?;
        self.user_by_name(username)?
            .filter(|u| u.practice == Some(practice) && u.state != super::model::UserState::Purged)
            .ok_or(AccountError::NotFound)
    }

    /// An admin invites a user to their own practice; with an e-mail address, the invitation
    /// (with its code) is sent there too. The code is also returned, to be handed over.
    pub fn invite_member(
        &self,
        admin: &User,
        username: &str,
        roles: BTreeSet<Role>,
        email: Option<&str>,
    ) -> Result<Enrollment, AccountError> {
        let practice = self.practice(&admin.practice.ok_or(AccountError::NotFound)?)?;
        if let Some(e) = email {
            super::operator::check_email(e)?;
        }
        let enrollment = self.invite(&practice.name, username, roles)?;
        if let Some(e) = email {
            let user = self.user_by_name(username)?.ok_or(AccountError::NotFound)?;
            let user = self.update_user(&user.id, |u| u.email = Some(e.to_owned()))?;
            self.notice_invitation(&user, &practice.name, &enrollment.code, enrollment.expires_ms);
            self.flush_blocking()?;
        }
        Ok(enrollment)
    }

    fn notice_invitation(&self, user: &User, practice: &str, code: &str, expires_ms: Millis) {
        let Some(mailer) = self.mailer.as_ref() else { return };
        let body = format!(
            "You are invited to use kluis at {practice} as {username}.\n\n\
             Open {link} , choose \"I have an enrollment code\", and type this code:\n\n    {code}\n\n\
             It works once, until {until}. If you did not expect this, ignore this message.",
            username = user.username,
            link = mailer.link("/", None),
            until = self.when(expires_ms),
        );
        self.notify(user, "Your invitation to kluis", body);
    }

    /// Sends an invitation of `admin`'s practice again, with a fresh code (the earlier one stops
    /// working), to the address it was first sent to. `by` is recorded as who asked.
    pub fn resend_invitation(&self, admin: &User, username: &str) -> Result<Millis, AccountError> {
        let user = self.member(admin, username)?;
        if user.state != UserState::Invited {
            return Err(AccountError::Invalid("that user has enrolled already"));
        }
        if user.email.is_none() {
            return Err(AccountError::Invalid(
                "that invitation has no e-mail address: the admin hands out a new code under Practice settings",
            ));
        }
        let practice = self.practice(&admin.practice.ok_or(AccountError::NotFound)?)?;
        let (code, expires_ms) = self.new_invitation(&user)?;
        self.notice_invitation(&user, &practice.name, code.expose(), expires_ms);
        self.flush_blocking()?;
        Ok(expires_ms)
    }

    /// An admin disables (`enabled` false) or enables again a member of their practice, never
    /// themselves. Disabling ends every session and sign-in under way; both are recorded and
    /// told to the member.
    pub async fn set_member_enabled(&self, admin: &User, username: &str, enabled: bool) -> Result<User, AccountError> {
        let target = self.member(admin, username)?;
        if target.id == admin.id {
            return Err(AccountError::NotAllowed("an admin cannot disable their own account"));
        }
        let (from, to) =
            if enabled { (UserState::Disabled, UserState::Active) } else { (UserState::Active, UserState::Disabled) };
        let mut changed = false;
        let user = self.update_user(&target.id, |u| {
            changed = u.state == from;
            if changed {
                u.state = to;
            }
        })?;
        if !changed {
            return Err(AccountError::Invalid(if enabled {
                "that account is not disabled"
            } else {
                "only an enrolled, active account can be disabled"
            }));
        }
        let by = format!("admin:{}", admin.username);
        if !enabled {
            self.end_all_sessions(&user.id)?;
            self.tickets.remove_user(&user.id);
            // Support's access ends too: a disabled account is reached by nobody.
            self.end_support_of(&user.id, &by).await?;
        }
        let kind = if enabled { EventKind::UserEnabled } else { EventKind::UserDisabled };
        self.record_event(user.practice.as_ref(), &self.simple_event(kind, &user, &by, None))?;
        self.flush().await?;
        let (subject, text) = if enabled {
            ("Your kluis account is enabled again", "Your kluis account was enabled again by your practice admin.")
        } else {
            (
                "Your kluis account was disabled",
                "Your kluis account was disabled by your practice admin, and every session was ended.",
            )
        };
        self.notice_security_change(&user, subject, text);
        Ok(user)
    }

    /// Records a write to a vault and the address it came from (released only through
    /// [`Accounts::release_addresses`]).
    pub fn log_write(&self, user: &User, vault: &str, ip: IpAddr) -> Result<(), AccountError> {
        let now = self.clock.now();
        let entry = Write { at_ms: now, user: user.id, vault: vault.to_owned(), ip: ip.to_string() };
        let key = [&user.id.0[..], &now.to_be_bytes(), &self.db.generate_id()?.to_be_bytes()].concat();
        self.writes.insert(key, to_json(&entry)?)?;
        Ok(())
    }

    /// Deletes the addresses of writes older than [`WRITES_KEEP_MS`] (run with the session
    /// purge).
    pub fn purge_writes(&self) -> Result<usize, AccountError> {
        let cutoff = self.clock.now().saturating_sub(WRITES_KEEP_MS);
        let mut n = 0;
        for kv in self.writes.iter() {
            let (k, v) = kv?;
            if from_json::<Write>(&v)?.at_ms < cutoff {
                self.writes.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// The IP release: the addresses of one member's sign-ins and writes (newest first, at most
    /// 200 of each), for an admin who gives a reason. The reason is recorded as a security event
    /// and told to the member.
    pub async fn release_addresses(
        &self,
        admin: &User,
        username: &str,
        reason: &str,
    ) -> Result<Vec<AddressEntry>, AccountError> {
        let reason = reason.trim();
        if !IP_REASON_CHARS.contains(&reason.chars().count()) || reason.chars().any(char::is_control) {
            return Err(AccountError::Invalid("give a reason of 10 to 500 characters"));
        }
        let target = self.member(admin, username)?;
        let mut out: Vec<AddressEntry> = self
            .sign_ins_of(&target, SIGN_IN_VIEW)?
            .into_iter()
            .map(|e| AddressEntry {
                at_ms: e.at_ms,
                kind: "sign-in",
                what: serde_json::to_value(e.result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                ip: e.ip,
            })
            .collect();
        for v in self.writes.scan_prefix(target.id.0).values().rev().take(SIGN_IN_VIEW) {
            let w: Write = from_json(&v?)?;
            out.push(AddressEntry { at_ms: w.at_ms, kind: "write", what: w.vault, ip: w.ip });
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.at_ms));
        let by = format!("admin:{}", admin.username);
        let event = self.detailed_event(EventKind::IpRelease, &target, &by, reason.to_owned());
        self.record_event(target.practice.as_ref(), &event)?;
        self.flush().await?;
        self.notice_security_change(
            &target,
            "Your practice admin looked up your sign-in addresses",
            &format!(
                "{} saw the IP addresses of your kluis sign-ins and saves, and gave this reason:\n\n  {reason}\n\n\
                 Your practice keeps this in its security events.",
                admin.username
            ),
        );
        Ok(out)
    }

    /// Members of a practice as its admins see them, with the public key the server holds for
    /// each (the server's word, for comparison with the practice's own register).
    pub fn member_views(&self, practice: &Id) -> Result<Vec<MemberView>, AccountError> {
        let now = self.clock.now();
        let mut invitations = std::collections::HashMap::new();
        for v in self.invitations.iter().values() {
            let inv: super::model::Invitation = from_json(&v?)?;
            invitations.insert(inv.user, inv.expires_ms);
        }
        let mut out = Vec::new();
        for u in self.practice_users(practice)? {
            let fingerprint = u
                .vault_public_key
                .as_deref()
                .and_then(|k| kluis_core::keyfile::parse_public_key(k).ok())
                .map(|k| k.fingerprint().to_string());
            let invited_until =
                if u.state == UserState::Invited { invitations.get(&u.id).copied().filter(|e| *e > now) } else { None };
            out.push(MemberView {
                username: u.username,
                roles: u.roles,
                state: u.state,
                email: u.email,
                second_factor: u.second_factor.is_some(),
                fingerprint,
                invited_until,
            });
        }
        Ok(out)
    }
}

/// A practice member as its admins see them.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// The username.
    pub username: String,
    /// Their roles.
    pub roles: BTreeSet<Role>,
    /// Invited, active or disabled.
    pub state: UserState,
    /// Their address (the invitation's, before enrollment).
    pub email: Option<String>,
    /// Whether two-step sign-in is on.
    pub second_factor: bool,
    /// The fingerprint of the key file the server holds for them, as the server says it: a
    /// server can lie, so compare it with the practice's own register.
    pub fingerprint: Option<String>,
    /// Until when their invitation works, if they have not enrolled.
    pub invited_until: Option<Millis>,
}
