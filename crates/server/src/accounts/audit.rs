//! The audit trail (FORMAT.md §9.6): append-only, hash-chained entries per practice, and one
//! chain for the operator's own events. Each entry holds kinds and ids only: no name, no
//! address, nothing clinical. The security events (with their human details), sign-ins,
//! support steps, exports, backups, restores and purges all append to it.
//!
//! A chain on the server can be rewritten by whoever owns the server, so it is anchored
//! outside: the admin's browser keeps the last head it saw and checks that the chain only grows
//! from there; `kluis-server audit verify --expect-head SEQ:HASH` checks it from a head the admin
//! wrote down; a restore appends an entry that says so instead of shortening the chain silently.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Id;
use super::{AccountError, Accounts, from_json, to_json};
use crate::clock::Millis;

/// What the hash of an entry starts with (FORMAT.md §9.6), then a zero byte.
pub const AUDIT_LABEL: &[u8] = b"kluis/v1/audit";
/// The chain id of the operator's own events (no practice).
pub const OPERATOR_CHAIN: Id = Id([0; 16]);
/// Most entries one request returns.
pub const AUDIT_PAGE: usize = 1000;

/// One entry of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Its place in the chain, from 1.
    pub seq: u64,
    /// When.
    pub at_ms: Millis,
    /// What happened: a security event's kind, `sign-in-<result>`, `support-step-<scope>`,
    /// `export`, `backup`, `restored`, `purged`, `transferred`.
    pub kind: String,
    /// Whose account (a user id), if any.
    pub subject: Option<Id>,
    /// Who: `operator`, `system`, `user:<id>`, `admin:<id>`, `support:<id>`.
    pub actor: String,
    /// What else: a device handle, a support grant's id, a time (empty if nothing).
    pub object: String,
    /// The hash of the entry before (hex; 64 zeros for the first).
    pub prev: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// The newest entry of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// Its place.
    pub seq: u64,
    /// Its hash.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditBreak {
    /// An entry's hash is not the hash of its content.
    #[error("entry {0} does not hash to what it says")]
    Hash(u64),
    /// An entry does not name the hash of the one before, or the numbering has a gap.
    #[error("entry {0} does not follow the one before")]
    Link(u64),
    /// The chain does not reach the head the store records.
    #[error("the chain ends at entry {0}, not at the recorded head")]
    Head(u64),
    /// The chain does not hold the head that was expected (written down earlier).
    #[error("the chain does not hold entry {0} with the expected hash")]
    Expected(u64),
}

/// The hash of an entry (FORMAT.md §9.6):
/// `SHA-256("kluis/v1/audit" ‖ 0x00 ‖ prev ‖ seq LF at_ms LF kind LF subject LF actor LF object)`.
pub fn entry_hash(
    prev: &[u8; 32],
    seq: u64,
    at_ms: Millis,
    kind: &str,
    subject: Option<&Id>,
    actor: &str,
    object: &str,
) -> [u8; 32] {
    let subject = subject.map(Id::to_string).unwrap_or_default();
    let line = format!("{seq}\n{at_ms}\n{kind}\n{subject}\n{actor}\n{object}");
    Sha256::new()
        .chain_update(AUDIT_LABEL)
        .chain_update([0])
        .chain_update(prev)
        .chain_update(line.as_bytes())
        .finalize()
        .into()
}

/// Checks a run of entries: each hashes to what it says, names the one before, and numbers go
/// up by one; `from` is the head the run continues (none: from the start).
pub fn check_run(from: Option<&AuditHead>, entries: &[AuditEntry]) -> Result<Option<AuditHead>, AuditBreak> {
    let mut head = from.copied();
    for e in entries {
        let (want_seq, want_prev) = head.map_or((1, [0u8; 32]), |h| (h.seq + 1, h.hash));
        let mut prev = [0u8; 32];
        if e.seq != want_seq || hex::decode_to_slice(&e.prev, &mut prev).is_err() || prev != want_prev {
            return Err(AuditBreak::Link(e.seq));
        }
        let hash = entry_hash(&prev, e.seq, e.at_ms, &e.kind, e.subject.as_ref(), &e.actor, &e.object);
        if hex::encode(hash) != e.hash {
            return Err(AuditBreak::Hash(e.seq));
        }
        head = Some(AuditHead { seq: e.seq, hash });
    }
    Ok(head)
}

fn entry_key(chain: &Id, seq: u64) -> Vec<u8> {
    [&chain.0[..], &seq.to_be_bytes()].concat()
}

impl Accounts {
    /// Appends an entry to `chain` (a practice id, or [`OPERATOR_CHAIN`]). Appends are one at a
    /// time, and each writes the entry and the new head in one transaction.
    pub fn audit(
        &self,
        chain: &Id,
        kind: &str,
        subject: Option<&Id>,
        actor: &str,
        object: &str,
    ) -> Result<AuditEntry, AccountError> {
        let _one_at_a_time = self.audit_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let head = self.audit_head(chain)?;
        let (seq, prev) = head.map_or((1, [0u8; 32]), |h| (h.seq + 1, h.hash));
        let at_ms = self.clock.now();
        let hash = entry_hash(&prev, seq, at_ms, kind, subject, actor, object);
        let entry = AuditEntry {
            seq,
            at_ms,
            kind: kind.to_owned(),
            subject: subject.copied(),
            actor: actor.to_owned(),
            object: object.to_owned(),
            prev: hex::encode(prev),
            hash: hex::encode(hash),
        };
        let value = to_json(&entry)?;
        let new_head = to_json(&AuditHead { seq, hash })?;
        use sled::Transactional;
        (&self.audit_entries, &self.audit_heads)
            .transaction(|(entries, heads)| {
                entries.insert(entry_key(chain, seq), value.as_slice())?;
                heads.insert(&chain.0, new_head.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|_| AccountError::Internal("an audit entry was not written"))?;
        Ok(entry)
    }

    /// The lock every append takes: a backup holds it while it reads the accounts store.
    pub(crate) fn audit_lock(&self) -> &std::sync::Mutex<()> {
        &self.audit_lock
    }

    /// The head of a chain, if it has entries.
    pub fn audit_head(&self, chain: &Id) -> Result<Option<AuditHead>, AccountError> {
        self.audit_heads.get(chain.0)?.map(|v| from_json(&v)).transpose()
    }

    /// Entries of a chain after `since`, oldest first, at most `limit`.
    pub fn audit_entries(&self, chain: &Id, since: u64, limit: usize) -> Result<Vec<AuditEntry>, AccountError> {
        let start = entry_key(chain, since.saturating_add(1));
        let end = entry_key(chain, u64::MAX);
        self.audit_entries.range(start..=end).values().take(limit).map(|v| from_json(&v?)).collect()
    }

    /// Every chain there is or may be: each practice's and the operator's, whether or not it
    /// has entries yet (a restore marks them all).
    pub fn all_chains(&self) -> Result<Vec<Id>, AccountError> {
        let mut ids = self.audit_chains()?;
        for k in self.practices.iter().keys() {
            let id = Id(k?.as_ref().try_into().map_err(|_| AccountError::Internal("bad practice key"))?);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if !ids.contains(&OPERATOR_CHAIN) {
            ids.push(OPERATOR_CHAIN);
        }
        Ok(ids)
    }

    /// Every chain's id (practices and the operator's), for verifying them all.
    pub fn audit_chains(&self) -> Result<Vec<Id>, AccountError> {
        self.audit_heads
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Ok(Id(k.as_ref().try_into().map_err(|_| AccountError::Internal("bad audit head key"))?))
            })
            .collect()
    }

    /// Verifies a whole chain against its recorded head, and, if given, that it holds the
    /// expected entry (a head written down earlier). Returns the head.
    pub fn verify_audit(
        &self,
        chain: &Id,
        expect: Option<&AuditHead>,
    ) -> Result<Result<Option<AuditHead>, AuditBreak>, AccountError> {
        let mut head: Option<AuditHead> = None;
        let mut expected_seen = expect.is_none();
        loop {
            let since = head.map_or(0, |h| h.seq);
            let page = self.audit_entries(chain, since, AUDIT_PAGE)?;
            if page.is_empty() {
                break;
            }
            match check_run(head.as_ref(), &page) {
                Ok(h) => {
                    if let Some(x) = expect {
                        expected_seen |= page.iter().any(|e| e.seq == x.seq && e.hash == hex::encode(x.hash));
                    }
                    head = h;
                }
                Err(b) => return Ok(Err(b)),
            }
        }
        if head != self.audit_head(chain)? {
            return Ok(Err(AuditBreak::Head(head.map_or(0, |h| h.seq))));
        }
        if !expected_seen {
            return Ok(Err(AuditBreak::Expected(expect.map_or(0, |x| x.seq))));
        }
        Ok(Ok(head))
    }

    /// The audit actor for a security event's `by` (`admin:<username>`, `support:<username>`,
    /// `operator`; anything else is the user themselves).
    pub(super) fn actor_of(&self, by: &str, subject: &Id) -> String {
        let named = |role: &str, name: &str| match self.user_by_name(name) {
            Ok(Some(u)) => format!("{role}:{}", u.id),
            _ => role.to_owned(),
        };
        if by == "operator" {
            "operator".to_owned()
        } else if let Some(name) = by.strip_prefix("admin:") {
            named("admin", name)
        } else if let Some(name) = by.strip_prefix("support:") {
            named("support", name)
        } else {
            format!("user:{subject}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let hash = entry_hash(&prev, seq, seq * 10, "sign-in-success", None, "system", "");
                let e = AuditEntry {
                    seq,
                    at_ms: seq * 10,
                    kind: "sign-in-success".into(),
                    subject: None,
                    actor: "system".into(),
                    object: String::new(),
                    prev: hex::encode(prev),
                    hash: hex::encode(hash),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn a_chain_breaks_where_it_was_changed_cut_or_reordered() {
        let c = chain(5);
        let head = check_run(None, &c).unwrap().unwrap();
        assert_eq!(head.seq, 5);
        // Continuing from a known head.
        let mid = check_run(None, &c[..2]).unwrap();
        assert_eq!(check_run(mid.as_ref(), &c[2..]).unwrap(), Some(head));
        let mut changed = c.clone();
        changed[2].kind = "password-reset".into();
        assert_eq!(check_run(None, &changed), Err(AuditBreak::Hash(3)));
        let mut cut = c.clone();
        cut.remove(2);
        assert_eq!(check_run(None, &cut), Err(AuditBreak::Link(4)));
        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(check_run(None, &swapped), Err(AuditBreak::Link(3)));
        // Recomputing a changed entry's hash breaks the next link instead.
        let mut rehashed = c.clone();
        rehashed[2].at_ms += 1;
        let prev: [u8; 32] = hex::decode(&rehashed[2].prev).unwrap().try_into().unwrap();
        rehashed[2].hash = hex::encode(entry_hash(&prev, 3, rehashed[2].at_ms, "sign-in-success", None, "system", ""));
        assert_eq!(check_run(None, &rehashed), Err(AuditBreak::Link(4)));
    }
}
