//! What the operator does from the command line (`init`, `practice add`, `user invite`,
//! `support add`) and what an invited user does with their code (enroll).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::model::{Invitation, Role, User, UserState};
use super::password::{Password, min_chars};
use super::secrets::{SecretKind, hash_presented};
use super::{AccountError, Accounts, MAX_EMAIL_BYTES, from_json, to_json};
use crate::clock::Millis;

/// A code handed to a new user, as printed for the operator or an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The invited username.
    pub username: String,
    /// Their practice, or none for support staff.
    pub practice: Option<String>,
    /// Their roles.
    pub roles: BTreeSet<Role>,
    /// The single-use code (shown once; only its hash is stored).
    pub code: String,
    /// When it stops working.
    pub expires_ms: Millis,
}

pub(super) fn check_email(email: &str) -> Result<(), AccountError> {
    let bad = AccountError::Invalid("give an e-mail address like name@example.org");
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad);
    }
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') => Ok(()),
        _ => Err(bad),
    }
}

fn check_mobile(mobile: &str) -> Result<String, AccountError> {
    let digits: String = mobile.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let ok =
        digits.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(digits)
    } else {
        Err(AccountError::Invalid("give a mobile number in international form, like +31 6 1234 5678"))
    }
}

impl Accounts {
    pub(super) fn enrollment(
        &self,
        user: &User,
        code: super::Secret,
        expires_ms: Millis,
    ) -> Result<Enrollment, AccountError> {
        let practice = user.practice.map(|p| self.practice(&p).map(|p| p.name)).transpose()?;
        Ok(Enrollment {
            username: user.username.clone(),
            practice,
            roles: user.roles.clone(),
            code: code.expose().to_owned(),
            expires_ms,
        })
    }

    /// `init` and `practice add`: a practice and its first user, who is both admin and
    /// practitioner, with an enrollment code.
    pub fn add_practice(&self, name: &str, admin: &str) -> Result<Enrollment, AccountError> {
        if self.user_by_name(admin)?.is_some() {
            return Err(AccountError::Taken("that username is taken"));
        }
        let practice = self.create_practice(name)?;
        let roles = BTreeSet::from([Role::Admin, Role::Practitioner]);
        let (user, code, expires_ms) = self.create_invited(admin, Some(practice.id), roles)?;
        let e = self.enrollment(&user, code, expires_ms)?;
        self.flush_blocking()?;
        Ok(e)
    }

    /// `user invite` (and a practice admin through the API): an invited user of a practice.
    pub fn invite(&self, practice: &str, username: &str, roles: BTreeSet<Role>) -> Result<Enrollment, AccountError> {
        let practice = self.practice_by_name(practice)?.ok_or(AccountError::Invalid("no practice has that name"))?;
        if roles.contains(&Role::Support) {
            return Err(AccountError::Invalid("support staff are added with `support add`, in no practice"));
        }
        let (user, code, expires_ms) = self.create_invited(username, Some(practice.id), roles)?;
        let e = self.enrollment(&user, code, expires_ms)?;
        self.flush_blocking()?;
        Ok(e)
    }

    /// `support add`: one of the operator's support staff, in no practice.
    pub fn add_support(&self, username: &str) -> Result<Enrollment, AccountError> {
        let (user, code, expires_ms) = self.create_invited(username, None, BTreeSet::from([Role::Support]))?;
        let e = self.enrollment(&user, code, expires_ms)?;
        self.flush_blocking()?;
        Ok(e)
    }

    /// Clears a user's failed sign-in counts (the operator's answer to a lockout).
    pub fn unlock(&self, username: &str) -> Result<(), AccountError> {
        let user = self.user_by_name(username)?.ok_or(AccountError::NotFound)?;
        self.update_user(&user.id, |u| u.failures = Default::default())?;
        self.flush_blocking()
    }

    /// Registers the public key of a practitioner's key file, once. The same key again is
    /// accepted (`Ok(false)`); another key is refused: replacing a vault's key is an operator's
    /// decision, not something a session may do.
    pub fn register_vault_key(&self, user: &super::model::Id, public_key: &str) -> Result<bool, AccountError> {
        let not_a_key = || AccountError::Invalid("not a kluis public key (kluispub1…)");
        // A break-glass key (kluisbg1…) is the practice's, never a practitioner's vault key.
        if !public_key.trim().starts_with(&format!("{}1", kluis_core::spec::HRP_PUBLIC)) {
            return Err(not_a_key());
        }
        let parsed = kluis_core::keyfile::parse_public_key(public_key.trim()).map_err(|_| not_a_key())?;
        let canonical = kluis_core::keyfile::public_key_text(&parsed)
            .map_err(|_| AccountError::Invalid("not a kluis public key (kluispub1…)"))?;
        let mut outcome = Ok(true);
        self.update_user(user, |u| {
            outcome = match &u.vault_public_key {
                None => {
                    u.vault_public_key = Some(canonical.clone());
                    Ok(true)
                }
                Some(k) if *k == canonical => Ok(false),
                Some(_) => {
                    Err(AccountError::Taken("another key file is registered for this account; ask your practice admin"))
                }
            };
        })?;
        self.flush_blocking()?;
        outcome
    }

    /// A new code for a user who has not enrolled yet (earlier codes stop working).
    pub fn reissue(&self, username: &str) -> Result<Enrollment, AccountError> {
        let user = self.user_by_name(username)?.ok_or(AccountError::NotFound)?;
        let (code, expires_ms) = self.new_invitation(&user)?;
        let e = self.enrollment(&user, code, expires_ms)?;
        self.flush_blocking()?;
        Ok(e)
    }

    /// The first practice's admins who have not enrolled yet (a first run that was stopped
    /// before enrolling gets a fresh code at the next start).
    pub fn pending_first_admin(&self) -> Result<Option<User>, AccountError> {
        let Some(first) = self.practices.iter().values().next() else { return Ok(None) };
        let practice: super::model::Practice = from_json(&first?)?;
        if self.practices.len() != 1 {
            return Ok(None);
        }
        let users = self.practice_users(&practice.id)?;
        Ok(match users.as_slice() {
            [only] if only.state == UserState::Invited => Some(only.clone()),
            _ => None,
        })
    }

    /// Enrollment: the invited user presents their code, sets a password and gives an e-mail
    /// address (and optionally a mobile number). The code is spent in the same transaction that
    /// activates the account, so it works exactly once.
    pub async fn enroll(
        &self,
        code: &str,
        password: Password,
        email: &str,
        mobile: Option<&str>,
    ) -> Result<User, AccountError> {
        let key = hash_presented(SecretKind::Code, code).ok_or(AccountError::BadCode)?;
        let stored = self.invitations.get(key)?.ok_or(AccountError::BadCode)?;
        let inv: Invitation = from_json(&stored)?;
        if self.clock.now() >= inv.expires_ms {
            return Err(AccountError::BadCode);
        }
        let mut user = self.user(&inv.user)?;
        if user.state != UserState::Invited {
            return Err(AccountError::BadCode);
        }
        check_email(email)?;
        let mobile = mobile.filter(|m| !m.trim().is_empty()).map(check_mobile).transpose()?;
        let policy = match user.practice {
            Some(p) => self.practice(&p)?.policy,
            None => Default::default(),
        };
        let mut context: Vec<&str> = vec![&user.username, email];
        let practice_name = user.practice.map(|p| self.practice(&p).map(|p| p.name)).transpose()?;
        if let Some(n) = &practice_name {
            context.extend(n.split_whitespace());
        }
        password.check_new(min_chars(policy.requires_second_factor(), policy.min_password_chars), &context)?;
        let phc = self.hasher.hash(password).await?;
        user.password = Some(phc);
        user.email = Some(email.to_owned());
        user.mobile = mobile;
        user.state = UserState::Active;
        let value = to_json(&user)?;
        use sled::Transactional;
        use sled::transaction::ConflictableTransactionError as Tx;
        let result = (&self.invitations, &self.users).transaction(|(invitations, users)| {
            if invitations.remove(&key)?.as_deref() != Some(&stored[..]) {
                return Err(Tx::Abort(()));
            }
            users.insert(&user.id.0, value.as_slice())?;
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Abort(())) => return Err(AccountError::BadCode),
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.flush().await?;
        Ok(user)
    }
}
