//! Server-side sessions (ASVS 5.0 V7, security-anchors §2.4): a fresh 128-bit token on every
//! sign-in, stored only as its hash; an idle timeout that only user activity extends and an
//! absolute timeout, both from the practice policy; revoked on sign-out, listed and revocable
//! by their user.

use serde::Serialize;

use super::model::{Id, Session, User, UserState};
use super::secrets::{Secret, SecretKind, hash_presented};
use super::{AccountError, Accounts, MAX_USER_AGENT_CHARS, from_json, shorten, to_json};
use crate::clock::Millis;

/// A session as its user sees it in the list.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// Handle for revoking.
    pub id: String,
    /// When it began.
    pub created_ms: Millis,
    /// Last user activity.
    pub last_active_ms: Millis,
    /// When it ends at the latest.
    pub expires_ms: Millis,
    /// Its browser.
    pub user_agent: String,
    /// The trusted device it runs on (public handle), if any.
    pub device: Option<String>,
    /// Whether it is the session asking.
    pub current: bool,
}

/// A signed-in request's user and session.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The user.
    pub user: User,
    /// The session.
    pub session: Session,
    key: [u8; 32],
}

fn index_key(user: &Id, session_id: &str) -> Vec<u8> {
    [&user.0[..], session_id.as_bytes()].concat()
}

impl Accounts {
    /// Starts a session for `user` on `device`, which passed the second factor or not; returns
    /// the token for the cookie.
    pub(super) fn start_session(
        &self,
        user: &User,
        user_agent: &str,
        device: Option<String>,
        second_factor: bool,
    ) -> Result<(Secret, Session), AccountError> {
        let policy = self.policy_of(user)?;
        let now = self.clock.now();
        let token = Secret::token()?;
        let session = Session {
            id: hex::encode(super::secrets::random_id()?.get(..8).unwrap_or_default()),
            user: user.id,
            created_ms: now,
            last_active_ms: now,
            idle_ms: u64::from(policy.idle_minutes).saturating_mul(60_000),
            expires_ms: now.saturating_add(u64::from(policy.absolute_hours).saturating_mul(3_600_000)),
            user_agent: shorten(user_agent, MAX_USER_AGENT_CHARS),
            device,
            second_factor,
            code_failures: 0,
        };
        let key = token.hash(SecretKind::Session);
        self.sessions.insert(key, to_json(&session)?)?;
        self.user_sessions.insert(index_key(&user.id, &session.id), &key)?;
        Ok((token, session))
    }

    /// The practice policy that applies to `user` (the defaults for the operator's staff).
    pub(super) fn policy_of(&self, user: &User) -> Result<super::model::Policy, AccountError> {
        match user.practice {
            Some(p) => Ok(self.practice(&p)?.policy),
            None => Ok(Default::default()),
        }
    }

    /// When a session ends, by the stricter of the rules it started with and the practice's
    /// policy now (an admin who shortens the idle time shortens the open sessions too).
    fn ends_at(session: &Session, policy: &super::model::Policy) -> Millis {
        let idle = session.idle_ms.min(u64::from(policy.idle_minutes).saturating_mul(60_000));
        let absolute = session
            .expires_ms
            .min(session.created_ms.saturating_add(u64::from(policy.absolute_hours).saturating_mul(3_600_000)));
        absolute.min(session.last_active_ms.saturating_add(idle))
    }

    fn end_session(&self, key: &[u8; 32], session: &Session) -> Result<(), AccountError> {
        self.sessions.remove(key)?;
        self.user_sessions.remove(index_key(&session.user, &session.id))?;
        Ok(())
    }

    /// The signed-in user behind a session cookie, or `None` when the cookie is unknown,
    /// expired (idle or absolute, by the practice's policy now if that is stricter), revoked,
    /// its user is no longer active, or the user has a second factor that this session did not
    /// pass. A session found dead is deleted. `user_activity` (the browser's mark on requests
    /// caused by user input) extends the idle timeout; background requests do not.
    pub fn authenticate(&self, cookie: &str, user_activity: bool) -> Result<Option<Signed>, AccountError> {
        let Some(key) = hash_presented(SecretKind::Session, cookie) else { return Ok(None) };
        let Some(v) = self.sessions.get(key)? else { return Ok(None) };
        let mut session: Session = from_json(&v)?;
        let now = self.clock.now();
        if now >= session.expires_ms || now >= session.last_active_ms.saturating_add(session.idle_ms) {
            self.end_session(&key, &session)?;
            return Ok(None);
        }
        let user = match self.user(&session.user) {
            Ok(u) if u.state == UserState::Active => u,
            Ok(_) | Err(AccountError::NotFound) => {
                self.end_session(&key, &session)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let policy = self.policy_of(&user)?;
        if now >= Self::ends_at(&session, &policy) || (user.second_factor.is_some() && !session.second_factor) {
            self.end_session(&key, &session)?;
            return Ok(None);
        }
        if user_activity {
            session.last_active_ms = now;
            // A compare-and-swap, so a touch never resurrects a session revoked meanwhile.
            let _ = self.sessions.compare_and_swap(key, Some(v), Some(to_json(&session)?))?;
        }
        Ok(Some(Signed { user, session, key }))
    }

    /// Changes the signed-in session's record in one atomic step and returns it (a session
    /// ended meanwhile stays ended: `None`).
    pub(super) fn update_session(
        &self,
        signed: &Signed,
        change: impl Fn(&mut Session),
    ) -> Result<Option<Session>, AccountError> {
        let updated = self.sessions.update_and_fetch(signed.key, |old| {
            let old = old?;
            let Ok(mut s) = from_json::<Session>(old) else { return Some(old.to_vec()) };
            change(&mut s);
            to_json(&s).ok().or_else(|| Some(old.to_vec()))
        })?;
        updated.map(|v| from_json(&v)).transpose()
    }

    /// Ends the signed-in session.
    pub(super) fn end_signed(&self, signed: &Signed) -> Result<(), AccountError> {
        self.end_session(&signed.key, &signed.session)
    }

    /// Ends the session behind a presented cookie, whoever's it is (a new sign-in replaces it).
    pub(super) fn end_presented_session(&self, cookie: &str) -> Result<(), AccountError> {
        let Some(key) = hash_presented(SecretKind::Session, cookie) else { return Ok(()) };
        if let Some(v) = self.sessions.get(key)? {
            let s: Session = from_json(&v)?;
            self.end_session(&key, &s)?;
        }
        Ok(())
    }

    /// Deletes every session past its idle or absolute timeout (run periodically; a session is
    /// also deleted when it is presented after expiring). Returns how many went.
    pub fn purge_expired(&self) -> Result<usize, AccountError> {
        let now = self.clock.now();
        let mut n = 0;
        let mut policies = std::collections::HashMap::new();
        for kv in self.sessions.iter() {
            let (key, v) = kv?;
            let s: Session = from_json(&v)?;
            let policy = match policies.get(&s.user) {
                Some(p) => *p,
                None => {
                    let p = match self.user(&s.user) {
                        Ok(u) => self.policy_of(&u)?,
                        Err(AccountError::NotFound) => Default::default(),
                        Err(e) => return Err(e),
                    };
                    policies.insert(s.user, p);
                    p
                }
            };
            if now >= Self::ends_at(&s, &policy) {
                let key: [u8; 32] = key.as_ref().try_into().map_err(|_| AccountError::Internal("bad session key"))?;
                self.end_session(&key, &s)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Sign-out: ends this session.
    pub async fn sign_out(&self, signed: &Signed) -> Result<(), AccountError> {
        self.end_session(&signed.key, &signed.session)?;
        self.flush().await
    }

    /// The user's live sessions, newest first.
    pub fn sessions_of(&self, signed: &Signed) -> Result<Vec<SessionView>, AccountError> {
        let now = self.clock.now();
        let policy = self.policy_of(&signed.user)?;
        let mut out = Vec::new();
        for kv in self.user_sessions.scan_prefix(signed.user.id.0) {
            let (_, key) = kv?;
            let Some(v) = self.sessions.get(&key)? else { continue };
            let s: Session = from_json(&v)?;
            let ends = Self::ends_at(&s, &policy);
            if now >= ends {
                continue;
            }
            out.push(SessionView {
                current: s.id == signed.session.id,
                id: s.id,
                created_ms: s.created_ms,
                last_active_ms: s.last_active_ms,
                expires_ms: ends,
                user_agent: s.user_agent,
                device: s.device,
            });
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
        Ok(out)
    }

    /// Revokes one of the user's own sessions by its handle (another user's handle is "not
    /// found", like one that does not exist).
    pub async fn revoke_session(&self, signed: &Signed, id: &str) -> Result<(), AccountError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AccountError::NotFound);
        }
        let key = self.user_sessions.get(index_key(&signed.user.id, id))?.ok_or(AccountError::NotFound)?;
        let key: [u8; 32] = key.as_ref().try_into().map_err(|_| AccountError::Internal("bad session index"))?;
        if let Some(v) = self.sessions.get(key)? {
            let s: Session = from_json(&v)?;
            self.end_session(&key, &s)?;
        } else {
            self.user_sessions.remove(index_key(&signed.user.id, id))?;
        }
        self.flush().await
    }

    /// Ends one session of a user, by its public handle.
    pub(super) fn end_session_of(&self, user: &Id, session_id: &str) -> Result<(), AccountError> {
        if let Some(key) = self.user_sessions.get(index_key(user, session_id))? {
            self.sessions.remove(&key)?;
        }
        self.user_sessions.remove(index_key(user, session_id))?;
        Ok(())
    }

    /// Ends the user's sessions opened on one device (it was revoked); returns how many.
    pub(super) fn end_device_sessions(&self, user: &Id, device: &str) -> Result<usize, AccountError> {
        let mut n = 0;
        for kv in self.user_sessions.scan_prefix(user.0) {
            let (index, key) = kv?;
            let Some(v) = self.sessions.get(&key)? else { continue };
            let s: Session = from_json(&v)?;
            if s.device.as_deref() == Some(device) {
                self.sessions.remove(&key)?;
                self.user_sessions.remove(index)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends every session of a user but `keep` (the one that asked), if given.
    pub(super) fn end_other_sessions(&self, user: &Id, keep: Option<&str>) -> Result<usize, AccountError> {
        let mut n = 0;
        for kv in self.user_sessions.scan_prefix(user.0) {
            let (index, key) = kv?;
            if keep.is_some_and(|k| index.get(16..) == Some(k.as_bytes())) {
                continue;
            }
            self.sessions.remove(&key)?;
            self.user_sessions.remove(index)?;
            n += 1;
        }
        Ok(n)
    }

    /// Ends every session of a user (disabling an account, a password change).
    pub fn end_all_sessions(&self, user: &Id) -> Result<usize, AccountError> {
        self.end_other_sessions(user, None)
    }
}
