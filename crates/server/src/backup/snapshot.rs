//! Taking a backup (FORMAT.md §13): under the write pause, every tree of the three stores is
//! read in key order and streamed, framed and hashed, through age encryption into a new file
//! beside its final name; the file is synced and linked into place only when whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use kluis_core::backup::{Item, StoreKind, encode_header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{BackupError, SERVER_KEY_ITEM, SIGNING_KEY_ITEM, Signer};

/// Bytes gathered before they go to the encryptor.
const BUFFER_BYTES: usize = 256 * 1024;

/// The three stores' databases.
#[derive(Debug, Clone, Copy)]
pub struct Stores<'a> {
    /// `DATA/accounts`.
    pub accounts: &'a sled::Db,
    /// `DATA/notes`.
    pub notes: &'a sled::Db,
    /// The identities store.
    pub identities: &'a sled::Db,
    /// The lock every audit append takes (held while the accounts store is read).
    pub audit_lock: Option<&'a std::sync::Mutex<()>>,
}

impl<'a> Stores<'a> {
    fn each(&self) -> [(StoreKind, &'a sled::Db); 3] {
        [(StoreKind::Accounts, self.accounts), (StoreKind::Notes, self.notes), (StoreKind::Identities, self.identities)]
    }
}

/// The key files a backup carries, read from disk when it is taken.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// The server key (`--server-key`, by default `DATA/server.key`).
    pub server_key: PathBuf,
    /// The signing key (`DATA/signing.key`).
    pub signing_key: PathBuf,
}

/// What a backup is, as the operator is told and the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackupSummary {
    /// The file.
    pub file: PathBuf,
    /// The first 16 hex digits of its digest: the name the audit trail gives it.
    pub id: String,
    /// When it was taken, ms since the Unix epoch.
    pub created_ms: u64,
    /// How many key–value pairs it holds.
    pub pairs: u64,
    /// Its size on disk.
    pub bytes: u64,
    /// How long writes waited, ms.
    pub paused_ms: u64,
    /// The public key that signed it (`ed25519:…`).
    pub signed_by: String,
}

/// The short id of a backup digest.
pub fn backup_id(digest: &[u8; 32]) -> String {
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Frames items into a buffer, hashes them, and hands the buffer on when it is full.
struct Framer<'w, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
    hash: Sha256,
    pairs: u64,
}

impl<W: Write> Framer<'_, W> {
    fn item(&mut self, item: &Item<'_>) -> std::io::Result<()> {
        let start = self.buf.len();
        item.encode_into(&mut self.buf);
        if !matches!(item, Item::Signature { .. }) {
            self.hash.update(self.buf.get(start..).unwrap_or_default());
        }
        if self.buf.len() >= BUFFER_BYTES {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Writes a backup's plaintext to `out`: the header, the key files, every non-empty tree of the
/// three stores in (store, name) order with its pairs in key order, the end item and the
/// signature. Returns the digest and the count of pairs. The caller holds the write pause.
pub fn write_plaintext<W: Write>(
    out: &mut W,
    created_ms: u64,
    files: &[(&str, &[u8])],
    stores: Stores<'_>,
    signer: &Signer,
) -> Result<([u8; 32], u64), BackupError> {
    let io = |e: std::io::Error| BackupError::io("writing the backup", e);
    let mut f = Framer { out, buf: Vec::with_capacity(BUFFER_BYTES * 2), hash: Sha256::new(), pairs: 0 };
    let header = encode_header(created_ms);
    f.hash.update(header);
    f.buf.extend_from_slice(&header);
    let mut files = files.to_vec();
    files.sort_by(|a, b| a.0.cmp(b.0));
    for (name, bytes) in files {
        f.item(&Item::File { name, bytes }).map_err(io)?;
    }
    // The key files leave the buffer at once, and their bytes are wiped from it before any
    // large value could make it move.
    f.out.write_all(&f.buf).map_err(io)?;
    zeroize::Zeroize::zeroize(&mut f.buf);
    for (store, db) in stores.each() {
        // Audit appends (two trees in one transaction) wait while the accounts store is read,
        // even those of the few reads that record a step: its snapshot always holds whole ones.
        let _audit = (store == StoreKind::Accounts).then(|| stores.audit_lock.map(std::sync::Mutex::lock));
        let mut names = db.tree_names();
        names.sort();
        for name in names {
            let tree = db.open_tree(&name)?;
            let mut started = false;
            for kv in tree.iter() {
                let (key, value) = kv?;
                if !started {
                    f.item(&Item::Tree { store, name: &name }).map_err(io)?;
                    started = true;
                }
                f.item(&Item::Pair { key: &key, value: &value }).map_err(io)?;
                f.pairs += 1;
            }
        }
    }
    f.item(&Item::End { pairs: f.pairs }).map_err(io)?;
    let digest: [u8; 32] = std::mem::take(&mut f.hash).finalize().into();
    f.item(&Item::Signature { public_key: signer.public_key(), signature: signer.sign(&digest) }).map_err(io)?;
    f.out.write_all(&f.buf).map_err(io)?;
    Ok((digest, f.pairs))
}

/// Reads a key file for the backup (its bytes are wiped after use).
fn read_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    std::fs::read(path).map(Zeroizing::new).map_err(|e| BackupError::io(path.display(), e))
}

/// Takes a backup into `out` (a new file), encrypted to `recipients` and signed by `signer`.
/// The caller holds the write pause for as long as this runs.
pub fn write_file(
    out: &Path,
    created_ms: u64,
    keys: &KeyFiles,
    stores: Stores<'_>,
    signer: &Signer,
    recipients: &[age::x25519::Recipient],
) -> Result<BackupSummary, BackupError> {
    if out.exists() {
        return Err(BackupError::Invalid(format!("{} exists already: give a new file", out.display())));
    }
    let server_key = read_key(&keys.server_key)?;
    let signing_key = read_key(&keys.signing_key)?;
    let files: [(&str, &[u8]); 2] = [(SERVER_KEY_ITEM, &server_key), (SIGNING_KEY_ITEM, &signing_key)];
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, file) = crate::admin::new_file_in(dir).map_err(|e| BackupError::io(dir.display(), e))?;
    let written = (|| {
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| BackupError::Invalid(format!("the age recipients: {e}")))?;
        let io = |e: std::io::Error| BackupError::io(tmp.display(), e);
        let mut sink = encryptor.wrap_output(std::io::BufWriter::new(file)).map_err(io)?;
        let (digest, pairs) = write_plaintext(&mut sink, created_ms, &files, stores, signer)?;
        let file = sink.finish().map_err(io)?.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        Ok::<_, BackupError>((digest, pairs))
    })();
    let done = written.and_then(|r| {
        std::fs::hard_link(&tmp, out).map_err(|e| BackupError::io(out.display(), e))?;
        Ok(r)
    });
    let _ = std::fs::remove_file(&tmp);
    let (digest, pairs) = done?;
    crate::admin::sync_dir(dir);
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        file: out.to_owned(),
        id: backup_id(&digest),
        created_ms,
        pairs,
        bytes,
        paused_ms: 0,
        signed_by: signer.public_text(),
    })
}

/// Takes a backup of the open stores into `out`: pauses writes, writes the file, lets writes go
/// on, then records it on the operator's audit chain (`backup`, with its id).
pub async fn take(
    ctx: &crate::admin::Context,
    out: &Path,
    recipients: Vec<age::x25519::Recipient>,
) -> Result<BackupSummary, BackupError> {
    let signer = Signer::load_or_create(&ctx.keys.signing_key).map_err(|e| BackupError::Invalid(e.to_string()))?;
    let started = std::time::Instant::now();
    let paused = ctx.accounts.write_pause().pause().await;
    let waited = started.elapsed();
    let created_ms = ctx.accounts.clock().now();
    let (accounts, notes, identities, keys, out_path) =
        (ctx.accounts.clone(), ctx.notes.clone(), ctx.identities.clone(), ctx.keys.clone(), out.to_owned());
    let written = tokio::task::spawn_blocking(move || {
        let stores = Stores {
            accounts: accounts.db(),
            notes: notes.db(),
            identities: identities.db(),
            audit_lock: Some(accounts.audit_lock()),
        };
        write_file(&out_path, created_ms, &keys, stores, &signer, &recipients)
    })
    .await;
    let paused_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    drop(paused);
    let mut summary = written.map_err(|_| BackupError::Invalid("the backup's task failed".into()))??;
    summary.paused_ms = paused_ms;
    tracing::info!(
        id = %summary.id,
        pairs = summary.pairs,
        bytes = summary.bytes,
        waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        paused_ms,
        "backup taken"
    );
    let (accounts, id) = (ctx.accounts.clone(), summary.id.clone());
    tokio::task::spawn_blocking(move || {
        accounts.audit(&crate::accounts::audit::OPERATOR_CHAIN, "backup", None, "operator", &id)?;
        accounts.flush_blocking()
    })
    .await
    .map_err(|_| BackupError::Invalid("the backup's task failed".into()))??;
    Ok(summary)
}
