//! Restoring a backup (FORMAT.md §13) into a new data directory. Nothing live is touched: the
//! target must be new or empty, and everything is staged in a sibling directory that becomes
//! the target only once the backup has decrypted whole, parsed in canonical order, and its
//! signature has verified with the key the operator gave. Any failure removes the staging.
//!
//! A restore appends a `restored` entry to every audit chain, so that a chain that is now
//! shorter than one an admin saw says why, instead of looking cut.

use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use kluis_core::backup::{Decoded, Item, Order, StoreKind, decode_header, decode_item};
use kluis_core::spec::BACKUP_HEADER_BYTES;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::snapshot::backup_id;
use super::{BackupError, SERVER_KEY_ITEM, SIGNING_KEY_ITEM, signer};
use crate::accounts::Accounts;
use crate::clock::Clock;

/// The audit entry a restore appends to every chain.
pub const RESTORED_KIND: &str = "restored";
/// Bytes read from the decryptor at a time (at least).
const READ_BYTES: usize = 256 * 1024;
/// Pairs written to sled in one batch.
const BATCH_PAIRS: usize = 10_000;

/// What was restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RestoreSummary {
    /// The backup's short id (as its `backup` audit entry names it).
    pub id: String,
    /// When it was taken.
    pub created_ms: u64,
    /// Key–value pairs restored.
    pub pairs: u64,
    /// Audit chains that now end with a `restored` entry.
    pub chains: usize,
    /// The new data directory.
    pub data: PathBuf,
}

/// Reads age X25519 identities from an identity file (`AGE-SECRET-KEY-1…` lines; `#` comments
/// and blank lines skipped), as `age-keygen` and `kluis-server backup-identity` write them.
pub fn read_identities(path: &Path) -> Result<Vec<age::x25519::Identity>, BackupError> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| BackupError::io(format!("{}", path.display()), e))?);
    let ids = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.parse::<age::x25519::Identity>().map_err(|_| {
                BackupError::Invalid(format!("{} holds a line that is not an age X25519 identity", path.display()))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(BackupError::Invalid(format!("{} holds no age identity", path.display())));
    }
    Ok(ids)
}

/// Refuses a target that holds anything.
fn check_target(data: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(data) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Invalid(format!(
                    "{} is not empty: a restore never replaces a store, live or stopped; restore into a new \
                     directory, then point the server at it (or move the old one aside first)",
                    data.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io(data.display(), e)),
    }
}

/// Fills `buf` from `r` until it is full or the input ends; returns the bytes read.
fn read_fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, BackupError> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The age stream reports a damaged, cut or altered chunk as invalid data.
            Err(_) => return Err(BackupError::Damaged),
        }
    }
    Ok(filled)
}

/// The databases being filled, opened as their first tree arrives.
struct Targets {
    dir: PathBuf,
    dbs: Vec<(StoreKind, sled::Db)>,
    tree: Option<(sled::Tree, sled::Batch, usize)>,
}

impl Targets {
    fn db(&mut self, store: StoreKind) -> Result<sled::Db, BackupError> {
        if let Some((_, db)) = self.dbs.iter().find(|(s, _)| *s == store) {
            return Ok(db.clone());
        }
        let db = sled::open(self.dir.join(store.dir_name()))?;
        self.dbs.push((store, db.clone()));
        Ok(db)
    }

    fn apply(&mut self) -> Result<(), BackupError> {
        if let Some((tree, batch, n)) = self.tree.as_mut().filter(|t| t.2 > 0) {
            tree.apply_batch(std::mem::take(batch))?;
            *n = 0;
        }
        Ok(())
    }

    fn start_tree(&mut self, store: StoreKind, name: &[u8]) -> Result<(), BackupError> {
        self.apply()?;
        let tree = self.db(store)?.open_tree(name)?;
        self.tree = Some((tree, sled::Batch::default(), 0));
        Ok(())
    }

    fn pair(&mut self, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        let Some((_, batch, n)) = self.tree.as_mut() else {
            return Err(BackupError::Invalid("a pair before any tree".into()));
        };
        batch.insert(key, value);
        *n += 1;
        if *n >= BATCH_PAIRS {
            self.apply()?;
        }
        Ok(())
    }

    /// Applies the last batch and flushes every database; hands back the accounts database,
    /// still open, for the `restored` entries.
    fn close(mut self) -> Result<sled::Db, BackupError> {
        self.apply()?;
        self.tree = None;
        for (_, db) in &self.dbs {
            db.flush()?;
        }
        self.db(StoreKind::Accounts)
    }
}

/// Writes a key file from the backup into the staging directory, mode 0600.
fn write_key_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
    let path = match name {
        SERVER_KEY_ITEM => dir.join("server.key"),
        SIGNING_KEY_ITEM => dir.join(super::SIGNING_KEY_FILE),
        _ => return Err(BackupError::Invalid(format!("the backup holds a file this version does not know: {name}"))),
    };
    crate::private_file::write(&path, bytes).map_err(|e| BackupError::io(path.display(), e))
}

/// Decrypts, checks and imports the backup into `staging`; returns its id, time and pairs.
fn import(
    from: &Path,
    identities: &[age::x25519::Identity],
    key: &VerifyingKey,
    staging: &Path,
) -> Result<(String, u64, u64, sled::Db), BackupError> {
    let file = std::fs::File::open(from).map_err(|e| BackupError::io(from.display(), e))?;
    let decryptor = age::Decryptor::new_buffered(std::io::BufReader::new(file)).map_err(|e| match e {
        age::DecryptError::Io(e) => BackupError::io(from.display(), e),
        _ => BackupError::Invalid(format!("{} is not an age-encrypted kluis backup", from.display())),
    })?;
    let mut reader = decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => BackupError::NotForThisIdentity,
        age::DecryptError::Io(e) => BackupError::io(from.display(), e),
        _ => BackupError::Damaged,
    })?;
    let mut header = [0u8; BACKUP_HEADER_BYTES];
    if read_fill(&mut reader, &mut header)? < BACKUP_HEADER_BYTES {
        return Err(kluis_core::Error::Malformed { what: "backup", reason: "shorter than its header" }.into());
    }
    let created_ms = decode_header(&header)?;
    let mut hash = Sha256::new();
    hash.update(header);
    let mut targets = Targets { dir: staging.to_owned(), dbs: Vec::new(), tree: None };
    let mut order = Order::new();
    // The plaintext holds the key files: its buffer is wiped when it grows and when dropped.
    let mut buf: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(READ_BYTES * 2));
    let mut at = 0;
    let mut digest = None;
    while !order.is_signed() {
        match decode_item(buf.get(at..).unwrap_or_default())? {
            Decoded::Item(item, used) => {
                order.check(&item)?;
                match &item {
                    Item::Signature { public_key, signature } => {
                        let d: [u8; 32] = std::mem::take(&mut hash).finalize().into();
                        if *public_key != key.to_bytes() || !signer::verify(key, &d, signature) {
                            return Err(BackupError::Signature);
                        }
                        digest = Some(d);
                    }
                    other => {
                        hash.update(buf.get(at..at + used).unwrap_or_default());
                        match other {
                            Item::File { name, bytes } => write_key_file(staging, name, bytes)?,
                            Item::Tree { store, name } => targets.start_tree(*store, name)?,
                            Item::Pair { key, value } => targets.pair(key, value)?,
                            Item::End { .. } | Item::Signature { .. } => {}
                        }
                    }
                }
                at += used;
            }
            Decoded::Incomplete(need) => {
                buf.drain(..at);
                at = 0;
                let have = buf.len();
                let want = need.max(have + READ_BYTES);
                if want > buf.capacity() {
                    let mut bigger = Zeroizing::new(Vec::with_capacity(want));
                    bigger.extend_from_slice(&buf);
                    buf = bigger;
                }
                buf.resize(want, 0);
                let n = read_fill(&mut reader, buf.get_mut(have..).unwrap_or_default())?;
                buf.truncate(have + n);
                if n == 0 {
                    return Err(kluis_core::Error::Malformed {
                        what: "backup",
                        reason: "it ends before its signature",
                    }
                    .into());
                }
            }
        }
    }
    // Nothing may follow the signature.
    if buf.len() > at || read_fill(&mut reader, &mut [0u8; 1])? > 0 {
        return Err(kluis_core::Error::Malformed { what: "backup", reason: "bytes after the signature" }.into());
    }
    let pairs = order.pairs();
    let accounts = targets.close()?;
    let digest = digest.ok_or(BackupError::Signature)?;
    Ok((backup_id(&digest), created_ms, pairs, accounts))
}

/// Restores `from` into `data` (new or empty), after checking that it decrypts with
/// `identities` and was signed with `key`. `clock` dates the `restored` audit entries.
pub fn restore(
    from: &Path,
    identities: &[age::x25519::Identity],
    key: &VerifyingKey,
    data: &Path,
    clock: Clock,
) -> Result<RestoreSummary, BackupError> {
    let data = std::path::absolute(data).map_err(|e| BackupError::io(data.display(), e))?;
    check_target(&data)?;
    let parent = data.parent().ok_or_else(|| BackupError::Invalid("the data directory needs a parent".into()))?;
    std::fs::create_dir_all(parent).map_err(|e| BackupError::io(parent.display(), e))?;
    let mut tag = [0u8; 4];
    getrandom::fill(&mut tag).map_err(|_| BackupError::Invalid("the system random generator failed".into()))?;
    let name = data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = parent.join(format!(".{name}.restoring-{}", hex::encode(tag)));
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&staging).map_err(|e| BackupError::io(staging.display(), e))?;
    let result = (|| {
        let (id, created_ms, pairs, accounts) = import(from, identities, key, &staging)?;
        let chains = mark_restored(accounts, clock, &id, created_ms)?;
        check_target(&data)?;
        if data.exists() {
            std::fs::remove_dir(&data).map_err(|e| BackupError::io(data.display(), e))?;
        }
        std::fs::rename(&staging, &data).map_err(|e| BackupError::io(data.display(), e))?;
        crate::admin::sync_dir(parent);
        Ok(RestoreSummary { id, created_ms, pairs, chains, data: data.clone() })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Appends `restored` to every audit chain (and the operator's); returns how many.
fn mark_restored(db: sled::Db, clock: Clock, id: &str, created_ms: u64) -> Result<usize, BackupError> {
    let accounts = Accounts::on_db(db, clock)?;
    let chains = accounts.all_chains()?;
    for chain in &chains {
        accounts.audit(chain, RESTORED_KIND, None, "operator", &format!("{id}@{created_ms}"))?;
    }
    accounts.flush_blocking()?;
    Ok(chains.len())
}
