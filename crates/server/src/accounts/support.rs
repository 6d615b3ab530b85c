//! Temporary support access (SimplyBook.me's promise, and more): support staff see nothing of
//! an account until its user hands them a temporary access code. The user chooses its lifetime
//! (default one hour, at most 24) and its scope from a closed list (`SupportScope`); the code is
//! 100 random bits, stored only as a hash, redeemed once, by one support staff member with a
//! second factor, and throttled. The support session it opens ends with the code's lifetime, or
//! at once when the user ends it; every view and action it takes is recorded where the user sees
//! it live. No scope reaches a record, a manifest, an escrow copy or a key: the server has no
//! note to show, and these routes read only the accounts store and the vaults' sizes.

use std::collections::BTreeSet;

use serde::Serialize;

use super::model::{EventKind, Id, SupportAction, SupportGrant, SupportScope, User, UserState};
use super::secrets::{Secret, SecretKind, hash_presented, random_id};
use super::{AccountError, Accounts, Signed, from_json, to_json};
use crate::clock::Millis;

/// A code's lifetime by default, minutes.
pub const SUPPORT_DEFAULT_MINUTES: u32 = 60;
/// The lifetimes a user may choose, minutes (at most 24 hours).
pub const SUPPORT_MINUTES_RANGE: std::ops::RangeInclusive<u32> = 5..=24 * 60;
/// Codes and sessions one user may have live at once.
pub const MAX_LIVE_GRANTS: usize = 5;
/// Ended and expired grants a user's list shows besides every live one (newest first).
pub const GRANTS_SHOWN: usize = 20;
/// Steps one support session may take (a bound on what the user's list must show).
pub const MAX_SUPPORT_STEPS: usize = 500;
/// How long ended and expired grants, and their steps, are kept, ms (a year).
pub const SUPPORT_KEEP_MS: Millis = 365 * 24 * 60 * 60 * 1000;

/// Where a grant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantState {
    /// The code waits for support to redeem it.
    Waiting,
    /// A support session runs.
    Active,
    /// Ended before its time (by the user or support).
    Ended,
    /// Its time ran out.
    Expired,
}

/// A grant as its user (or the support staff on it) sees it.
#[derive(Debug, Clone, Serialize)]
pub struct GrantView {
    /// Its id.
    pub id: Id,
    /// The account's username.
    pub username: String,
    /// What it allows.
    pub scopes: BTreeSet<SupportScope>,
    /// When it was made.
    pub created_ms: Millis,
    /// When it ends.
    pub expires_ms: Millis,
    /// Its state now.
    pub state: GrantState,
    /// Who redeemed it (a support username), and when.
    pub staff: Option<String>,
    /// When it was redeemed.
    pub redeemed_ms: Option<Millis>,
    /// What the session did, oldest first.
    pub actions: Vec<SupportAction>,
}

fn action_key(grant: &Id, seq: u64) -> Vec<u8> {
    [&grant.0[..], &seq.to_be_bytes()].concat()
}

fn index_key(owner: &Id, grant: &Id) -> Vec<u8> {
    [&owner.0[..], &grant.0[..]].concat()
}

impl Accounts {
    fn grant(&self, id: &Id) -> Result<SupportGrant, AccountError> {
        from_json(&self.support_grants.get(id.0)?.ok_or(AccountError::NotFound)?)
    }

    fn state_of(&self, g: &SupportGrant) -> GrantState {
        if g.ended.is_some() {
            GrantState::Ended
        } else if self.clock.now() >= g.expires_ms {
            GrantState::Expired
        } else if g.redeemed_by.is_some() {
            GrantState::Active
        } else {
            GrantState::Waiting
        }
    }

    fn view_of(&self, g: SupportGrant) -> Result<GrantView, AccountError> {
        let actions =
            self.support_actions.scan_prefix(g.id.0).values().map(|v| from_json(&v?)).collect::<Result<_, _>>()?;
        let staff = g.redeemed_by.map(|s| self.user(&s).map(|u| u.username)).transpose()?;
        let username = self.user(&g.user)?.username;
        Ok(GrantView {
            state: self.state_of(&g),
            id: g.id,
            username,
            scopes: g.scopes,
            created_ms: g.created_ms,
            expires_ms: g.expires_ms,
            staff,
            redeemed_ms: g.redeemed_ms,
            actions,
        })
    }

    /// A user makes a temporary access code for support: `minutes` of life (5 to 1440), and what
    /// it allows. The code is shown once; only its hash is kept.
    pub async fn create_support_code(
        &self,
        user: &User,
        minutes: u32,
        scopes: BTreeSet<SupportScope>,
    ) -> Result<(Secret, GrantView), AccountError> {
        if !SUPPORT_MINUTES_RANGE.contains(&minutes) {
            return Err(AccountError::Invalid("a support code lives 5 minutes to 24 hours"));
        }
        if scopes.is_empty() {
            return Err(AccountError::Invalid("choose what support may see or do"));
        }
        // No await until the grant is stored: the count and the insert are one step.
        let counting = self.grants_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = self
            .grants_of(&user.id)?
            .iter()
            .filter(|g| matches!(self.state_of(g), GrantState::Waiting | GrantState::Active))
            .count();
        if live >= MAX_LIVE_GRANTS {
            return Err(AccountError::Invalid("five support codes are live already: end one first"));
        }
        let now = self.clock.now();
        let code = Secret::code()?;
        let grant = SupportGrant {
            id: Id(random_id()?),
            user: user.id,
            scopes,
            created_ms: now,
            expires_ms: now.saturating_add(u64::from(minutes).saturating_mul(60_000)),
            redeemed_by: None,
            redeemed_ms: None,
            ended: None,
            code: hex::encode(code.hash(SecretKind::SupportCode)),
        };
        self.support_grants.insert(grant.id.0, to_json(&grant)?)?;
        self.support_by_user.insert(index_key(&user.id, &grant.id), &[])?;
        self.support_codes.insert(code.hash(SecretKind::SupportCode), &grant.id.0)?;
        drop(counting);
        let event = self.detailed_event(EventKind::SupportCodeCreated, user, "user", grant.id.to_string());
        self.record_event(user.practice.as_ref(), &event)?;
        self.flush().await?;
        Ok((code, self.view_of(grant)?))
    }

    /// The grants of a user (`by_user`) or a support staff member (`by_staff`), newest first.
    fn grants_in(&self, index: &sled::Tree, owner: &Id) -> Result<Vec<SupportGrant>, AccountError> {
        let mut out = Vec::new();
        for k in index.scan_prefix(owner.0).keys() {
            let k = k?;
            let id: [u8; 16] =
                k.get(16..).and_then(|b| b.try_into().ok()).ok_or(AccountError::Internal("bad grant index"))?;
            match self.grant(&Id(id)) {
                Ok(g) => out.push(g),
                Err(AccountError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|g| std::cmp::Reverse(g.created_ms));
        Ok(out)
    }

    fn grants_of(&self, user: &Id) -> Result<Vec<SupportGrant>, AccountError> {
        self.grants_in(&self.support_by_user, user)
    }

    /// The user's support codes and sessions, newest first, with every action: every live one,
    /// and the newest of the others.
    pub fn support_of(&self, user: &Id) -> Result<Vec<GrantView>, AccountError> {
        let mut others = 0;
        let mut out = Vec::new();
        for g in self.grants_of(user)? {
            let live = matches!(self.state_of(&g), GrantState::Waiting | GrantState::Active);
            if live || others < GRANTS_SHOWN {
                others += usize::from(!live);
                out.push(self.view_of(g)?);
            }
        }
        Ok(out)
    }

    /// Whether the user has a support session under way (for the app's banner).
    pub fn support_active(&self, user: &Id) -> Result<bool, AccountError> {
        Ok(self.grants_of(user)?.iter().any(|g| self.state_of(g) == GrantState::Active))
    }

    /// Ends every live code and support session of a user (the account was disabled).
    pub(super) async fn end_support_of(&self, user: &Id, by: &str) -> Result<(), AccountError> {
        self.end_live_grants(user, by)?;
        self.flush().await
    }

    /// Ends every live code and support session of a user, leaving the flush to the caller
    /// (a second-factor reset, which flushes once at its end).
    pub(super) fn end_live_grants(&self, user: &Id, by: &str) -> Result<(), AccountError> {
        for g in self.grants_of(user)? {
            if matches!(self.state_of(&g), GrantState::Waiting | GrantState::Active) {
                self.end_grant_unflushed(&g.id, by)?;
            }
        }
        Ok(())
    }

    /// Deletes the codes of grants that are over, and grants that ended or expired more than a
    /// year ago with their steps (run with the session purge).
    pub fn purge_support(&self) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let mut n = 0;
        for v in self.support_grants.iter().values() {
            let g: SupportGrant = from_json(&v?)?;
            let over = g.ended.as_ref().map_or(g.expires_ms, |(at, _)| *at);
            if now >= over {
                self.delete_code(&g)?;
            }
            if now >= over.saturating_add(SUPPORT_KEEP_MS) {
                self.delete_grant(&g)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes a grant with its steps, its indexes and its code.
    pub(super) fn delete_grant(&self, g: &SupportGrant) -> Result<(), AccountError> {
        self.delete_code(g)?;
        for k in self.support_actions.scan_prefix(g.id.0).keys() {
            self.support_actions.remove(k?)?;
        }
        self.support_by_user.remove(index_key(&g.user, &g.id))?;
        if let Some(staff) = g.redeemed_by {
            self.support_by_staff.remove(index_key(&staff, &g.id))?;
        }
        self.support_grants.remove(g.id.0)?;
        Ok(())
    }

    fn delete_code(&self, g: &SupportGrant) -> Result<(), AccountError> {
        let mut hash = [0u8; 32];
        if hex::decode_to_slice(&g.code, &mut hash).is_ok() {
            self.support_codes.remove(hash)?;
        }
        Ok(())
    }

    /// Ends a grant at once: its code stops working, its session ends. By its user (`by` =
    /// `user`) or the support staff on it (`support`).
    async fn end_grant(&self, grant: &Id, by: &str) -> Result<(), AccountError> {
        self.end_grant_unflushed(grant, by)?;
        self.flush().await
    }

    /// As [`end_grant`](Self::end_grant), leaving the flush to the caller.
    fn end_grant_unflushed(&self, grant: &Id, by: &str) -> Result<(), AccountError> {
        let now = self.clock.now();
        let mut ended = false;
        let updated = self.support_grants.update_and_fetch(grant.0, |old| {
            let old = old?;
            let Ok(mut g) = from_json::<SupportGrant>(old) else { return Some(old.to_vec()) };
            ended = g.ended.is_none() && now < g.expires_ms;
            if ended {
                g.ended = Some((now, by.to_owned()));
            }
            to_json(&g).ok().or_else(|| Some(old.to_vec()))
        })?;
        let g: SupportGrant = from_json(&updated.ok_or(AccountError::NotFound)?)?;
        // An unredeemed code is deleted with its grant's end.
        self.delete_code(&g)?;
        if ended {
            let user = self.user(&g.user)?;
            let event = self.detailed_event(EventKind::SupportSessionEnded, &user, by, g.id.to_string());
            self.record_event(user.practice.as_ref(), &event)?;
        }
        Ok(())
    }

    /// The user ends one of their support codes or sessions.
    pub async fn end_support_by_user(&self, user: &Id, grant: &str) -> Result<(), AccountError> {
        let id = Id::parse(grant).ok_or(AccountError::NotFound)?;
        if self.grant(&id)?.user != *user {
            return Err(AccountError::NotFound);
        }
        self.end_grant(&id, "user").await
    }

    /// Support staff redeem a code (once): a support session on its account begins, and the
    /// user is told by e-mail. A wrong, used, ended or expired code gets one answer.
    pub async fn redeem_support_code(&self, staff: &Signed, code: &str) -> Result<GrantView, AccountError> {
        let bad = || AccountError::Invalid("this code is not valid: it was used, ended or expired, or mistyped");
        self.throttle.support_redeem(staff.user.id).map_err(AccountError::Throttled)?;
        let key = hash_presented(SecretKind::SupportCode, code).ok_or_else(bad)?;
        let id = self.support_codes.get(key)?.ok_or_else(bad)?;
        let id = Id(id.as_ref().try_into().map_err(|_| AccountError::Internal("bad support code index"))?);
        // The account must be usable before the code is spent: a disabled account's code stays
        // unspent (and its grants were ended when it was disabled).
        if self.user(&self.grant(&id)?.user)?.state != UserState::Active {
            return Err(bad());
        }
        // Removed atomically: of two redemptions, one gets it.
        if self.support_codes.remove(key)?.is_none() {
            return Err(bad());
        }
        let now = self.clock.now();
        let staff_id = staff.user.id;
        let mut redeemed = false;
        let updated = self.support_grants.update_and_fetch(id.0, |old| {
            let old = old?;
            let Ok(mut g) = from_json::<SupportGrant>(old) else { return Some(old.to_vec()) };
            redeemed = g.redeemed_by.is_none() && g.ended.is_none() && now < g.expires_ms;
            if redeemed {
                g.redeemed_by = Some(staff_id);
                g.redeemed_ms = Some(now);
            }
            to_json(&g).ok().or_else(|| Some(old.to_vec()))
        })?;
        let g: SupportGrant = from_json(&updated.ok_or_else(bad)?)?;
        if !redeemed {
            return Err(bad());
        }
        self.support_by_staff.insert(index_key(&staff_id, &g.id), &[])?;
        let user = self.user(&g.user)?;
        let by = format!("support:{}", staff.user.username);
        let event = self.detailed_event(EventKind::SupportSessionStarted, &user, &by, g.id.to_string());
        self.record_event(user.practice.as_ref(), &event)?;
        self.flush().await?;
        self.notice_security_change(
            &user,
            "Support opened your kluis account",
            &format!(
                "{} of the kluis support team used the access code you made, until {}.\n\
                 They see only what you allowed; every step they take is listed under Account and\n\
                 security, where you can end their session at once.",
                staff.user.username,
                self.when(g.expires_ms)
            ),
        );
        self.view_of(g)
    }

    /// The support sessions a staff member has open now.
    pub fn support_sessions_of(&self, staff: &Id) -> Result<Vec<GrantView>, AccountError> {
        self.grants_in(&self.support_by_staff, staff)?
            .into_iter()
            .filter(|g| g.redeemed_by == Some(*staff) && self.state_of(g) == GrantState::Active)
            .map(|g| self.view_of(g))
            .collect()
    }

    /// A support session's account, for one step under `scope` by the staff member who
    /// redeemed it: another's session, an ended or expired one and a missing one are "not
    /// found"; a scope the user did not allow is refused. The step is recorded with `detail`,
    /// a refused one too, where the user sees it.
    pub async fn support_step(
        &self,
        staff: &Id,
        grant: &str,
        scope: SupportScope,
        detail: &str,
    ) -> Result<(SupportGrant, User), AccountError> {
        let id = Id::parse(grant).ok_or(AccountError::NotFound)?;
        let g = self.grant(&id)?;
        if g.redeemed_by != Some(*staff) || self.state_of(&g) != GrantState::Active {
            return Err(AccountError::NotFound);
        }
        let user = self.user(&g.user)?;
        if user.state != UserState::Active {
            return Err(AccountError::NotFound);
        }
        // As with codes: the count and the insert are one step.
        let counting = self.grants_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.support_actions.scan_prefix(g.id.0).count() >= MAX_SUPPORT_STEPS {
            return Err(AccountError::Throttled(g.expires_ms.saturating_sub(self.clock.now()).max(1)));
        }
        let allowed = g.scopes.contains(&scope);
        let action = SupportAction { at_ms: self.clock.now(), scope, detail: detail.to_owned(), allowed };
        self.support_actions.insert(action_key(&g.id, self.db.generate_id()?), to_json(&action)?)?;
        drop(counting);
        let scope_name =
            serde_json::to_value(scope).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let kind = if allowed { format!("support-step-{scope_name}") } else { format!("support-refused-{scope_name}") };
        let chain = user.practice.unwrap_or(super::audit::OPERATOR_CHAIN);
        self.audit(&chain, &kind, Some(&user.id), &format!("support:{staff}"), &g.id.to_string())?;
        self.flush().await?;
        if !allowed {
            return Err(AccountError::NotAllowed("the user did not allow this in the support code"));
        }
        Ok((g, user))
    }

    /// Whether a support session is still on, right before its step takes effect (the user may
    /// have ended it meanwhile).
    pub fn support_still_active(&self, grant: &Id) -> Result<bool, AccountError> {
        Ok(self.state_of(&self.grant(grant)?) == GrantState::Active)
    }

    /// Support staff end their own session on an account.
    pub async fn end_support_by_staff(&self, staff: &Id, grant: &str) -> Result<(), AccountError> {
        let id = Id::parse(grant).ok_or(AccountError::NotFound)?;
        let g = self.grant(&id)?;
        if g.redeemed_by != Some(*staff) || self.state_of(&g) != GrantState::Active {
            return Err(AccountError::NotFound);
        }
        self.end_grant(&id, "support").await
    }
}
