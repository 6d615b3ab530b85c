//! Operator commands (`init`, `practice add`, `user invite`, `user code`, `support add`,
//! `export`, ...): run against the stores directly when the server is stopped, or through the
//! admin socket in the data directory while it runs (sled locks its directory, so only one
//! process may open a store). Files a command writes (an export) are written by whichever
//! process runs it, under the same user.
//!
//! The socket is `DATA/admin.sock`, mode 0600, and the server also checks that the peer runs
//! under its own user id. The protocol is one JSON line each way (FORMAT.md §9.3).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::accounts::model::Role;
use crate::accounts::{AccountError, Accounts, Enrollment};
use crate::store::{Store, StoreError};

/// What operator commands act on: the accounts store, and the vault stores.
#[derive(Debug, Clone)]
pub struct Context {
    /// The accounts.
    pub accounts: Accounts,
    /// The notes vaults.
    pub notes: Store,
    /// The identities vaults.
    pub identities: Store,
    /// The key files a backup carries.
    pub keys: crate::backup::snapshot::KeyFiles,
}

/// What can go wrong with an operator command.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// From the accounts store.
    #[error(transparent)]
    Accounts(#[from] AccountError),
    /// From a vault store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From a backup.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// A file could not be written, with what and why.
    #[error("{0}")]
    File(String),
}

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// Longest request line accepted on the socket.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// An operator command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OperatorCommand {
    /// The first practice and its admin, on an empty store.
    Init {
        /// The practice's name.
        practice: String,
        /// The admin's username.
        admin: String,
    },
    /// Another practice and its admin.
    PracticeAdd {
        /// The practice's name.
        name: String,
        /// The admin's username.
        admin: String,
    },
    /// An invited user in a practice.
    UserInvite {
        /// The username.
        username: String,
        /// The practice's name.
        practice: String,
        /// The roles.
        roles: BTreeSet<Role>,
    },
    /// A fresh code for a user who has not enrolled (earlier codes stop working).
    UserCode {
        /// The username.
        username: String,
    },
    /// One of the operator's support staff.
    SupportAdd {
        /// The username.
        username: String,
    },
    /// Clears a user's failed sign-in counts (after a lockout), for every kind of browser.
    UserUnlock {
        /// The username.
        username: String,
    },
    /// Removes a user's second factor after their identity was checked (a practice whose only
    /// admin lost theirs); recorded as a security event.
    UserResetSecondFactor {
        /// The username.
        username: String,
        /// Who checked the user's identity.
        verified_by: String,
        /// How (`in-person`, `video-call`, `phone-callback`, `other`).
        evidence: crate::accounts::model::Evidence,
    },
    /// Verifies the audit chains (one practice's, or all), optionally against a head the
    /// operator or an admin wrote down (`SEQ:HASH`).
    AuditVerify {
        /// The practice's name; none: every chain.
        practice: Option<String>,
        /// The head that must be on the chain.
        expect: Option<String>,
    },
    /// Writes one practice's audit trail with its security events to a file (for a
    /// data-breach procedure, docs/BREACH.md).
    AuditExport {
        /// The practice's name; none: the operator's chain.
        practice: Option<String>,
        /// Where (an absolute path; not overwritten).
        out: PathBuf,
    },
    /// Writes a practitioner's two vaults, whole, into an export file (FORMAT.md §12).
    Export {
        /// The username.
        username: String,
        /// Where (an absolute path; not overwritten).
        out: PathBuf,
    },
    /// Deletes an account's vaults and everything else of it but a tombstone (the operator
    /// typed its username twice).
    UserPurge {
        /// The username.
        username: String,
    },
    /// Gives a purged account to a new person under a new login; returns their code.
    UserTransfer {
        /// The purged account's username.
        username: String,
        /// The new login.
        to: String,
    },
    /// Takes a backup of everything into a new file, encrypted to the recipients and signed
    /// (FORMAT.md §13).
    Backup {
        /// Where (an absolute path; not overwritten).
        out: PathBuf,
        /// The age recipients (`age1…`).
        recipients: Vec<String>,
    },
}

/// The answer on the socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
enum Answer {
    Ok(Done),
    Error(String),
}

/// What an operator command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Done {
    /// An enrollment code for a new or not yet enrolled user.
    Enrollment(Enrollment),
    /// A message (for commands that produce no code).
    Message(String),
}

/// Runs a command against the open stores.
pub async fn execute(ctx: &Context, cmd: &OperatorCommand) -> Result<Done, OperatorError> {
    match cmd {
        OperatorCommand::Export { username, out } => export(ctx, username, out).await,
        OperatorCommand::UserPurge { username } => purge(ctx, username).await,
        OperatorCommand::UserTransfer { username, to } => {
            // Never while a vault of the account is left (a purge cut short): the new owner
            // would inherit it.
            let user = ctx.accounts.user_by_name(username)?.ok_or(AccountError::NotFound)?;
            if user.state != crate::accounts::model::UserState::Purged {
                return Err(AccountError::NotAllowed(
                    "only a purged account can be transferred: purge it first (`kluis-server user purge`)",
                )
                .into());
            }
            if ctx.notes.vault_of(&user.id.0)?.is_some() || ctx.identities.vault_of(&user.id.0)?.is_some() {
                return Err(AccountError::NotAllowed(
                    "a vault of this account is left: run `kluis-server user purge` again to finish the purge first",
                )
                .into());
            }
            let _writing = ctx.accounts.write_pause().writing().await;
            let (accounts, username, to) = (ctx.accounts.clone(), username.clone(), to.clone());
            tokio::task::spawn_blocking(move || accounts.transfer(&username, &to))
                .await
                .map_err(|_| OperatorError::File("the transfer's task failed".into()))?
                .map(Done::Enrollment)
                .map_err(OperatorError::from)
        }
        OperatorCommand::Backup { out, recipients } => {
            let recipients = crate::backup::parse_recipients(recipients)?;
            let s = crate::backup::snapshot::take(ctx, out, recipients).await?;
            Ok(Done::Message(format!(
                "backup {} written to {}: {} entries, {} bytes, encrypted to the recipients given; writes waited {} \
                 ms\nsigned with {}",
                s.id,
                s.file.display(),
                s.pairs,
                s.bytes,
                s.paused_ms,
                s.signed_by
            )))
        }
        _ => {
            // Commands that change accounts wait while a backup runs.
            let _writing = ctx.accounts.write_pause().writing().await;
            let (accounts, cmd) = (ctx.accounts.clone(), cmd.clone());
            tokio::task::spawn_blocking(move || execute_accounts(&accounts, &cmd))
                .await
                .map_err(|_| OperatorError::File("the command's task failed".into()))?
                .map_err(OperatorError::from)
        }
    }
}

/// Writes `bytes` to `path`, which must not exist: aside, then linked into place, mode 0600.
pub fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), OperatorError> {
    use std::io::Write;
    let fail = |e: std::io::Error| OperatorError::File(format!("cannot write {}: {e}", path.display()));
    if path.exists() {
        return Err(OperatorError::File(format!("{} exists already: give a new file", path.display())));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = new_file_in(dir).map_err(fail)?;
    let linked = tmp.1.write_all(bytes).and_then(|()| tmp.1.sync_all()).and_then(|()| std::fs::hard_link(&tmp.0, path));
    let _ = std::fs::remove_file(&tmp.0);
    linked.map_err(fail)?;
    sync_dir(dir);
    Ok(())
}

/// Syncs a directory, so that a file just linked into it survives a crash (best effort: not
/// every file system can).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A new private file (mode 0600) with a random name in `dir`, next to where the real one goes.
pub fn new_file_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|_| std::io::Error::other("random"))?;
    let path = dir.join(format!(".kluis-{}.part", hex::encode(id)));
    let f = crate::private_file::create(&path)?;
    Ok((path, f))
}

/// `export`: a practitioner's vaults, whole, for the break-glass holder or for the user.
async fn export(ctx: &Context, username: &str, out: &Path) -> Result<Done, OperatorError> {
    let user = ctx.accounts.user_by_name(username)?.ok_or(AccountError::NotFound)?;
    let vault = |s: &Store| s.vault_of(&user.id.0);
    let notes = match vault(&ctx.notes)? {
        Some(v) => Some(ctx.notes.export_vault(&v).await?),
        None => None,
    };
    let identities = match vault(&ctx.identities)? {
        Some(v) => Some(ctx.identities.export_vault(&v).await?),
        None => None,
    };
    let export = kluis_core::export::UserExport {
        exported_at_ms: ctx.accounts.clock().now(),
        notes: notes.as_ref().map(crate::store::ExportedVault::borrowed),
        identities: identities.as_ref().map(crate::store::ExportedVault::borrowed),
    };
    let bytes = export.encode();
    let path = out.to_owned();
    tokio::task::spawn_blocking(move || write_new_file(&path, &bytes))
        .await
        .map_err(|_| OperatorError::File("the export's task failed".into()))??;
    let records = |v: &Option<crate::store::ExportedVault>| v.as_ref().map_or(0, |v| v.records.len());
    ctx.accounts.record_export(&user)?;
    Ok(Done::Message(format!(
        "{username}: exported {} notes-vault and {} identities-vault records, with every version, to {}",
        records(&notes),
        records(&identities),
        out.display()
    )))
}

/// `user purge`: the account first (so nothing of it works any more), then both vaults, all
/// while writes pause, so no backup holds half a purge and no request of the account is under
/// way.
async fn purge(ctx: &Context, username: &str) -> Result<Done, OperatorError> {
    let user = ctx.accounts.user_by_name(username)?.ok_or(AccountError::NotFound)?;
    let _paused = ctx.accounts.write_pause().pause().await;
    // A purge cut short (a crash between the account and its vaults) is finished by running it
    // again: an account purged already still loses any vault left.
    let already = user.state == crate::accounts::model::UserState::Purged;
    let (accounts, id) = (ctx.accounts.clone(), user.id);
    let n = tokio::task::spawn_blocking(move || accounts.purge_user(&id))
        .await
        .map_err(|_| OperatorError::File("the purge's task failed".into()))??;
    let notes = ctx.notes.purge_owner(user.id.0).await?;
    let identities = ctx.identities.purge_owner(user.id.0).await?;
    if already && !notes && !identities && n == crate::accounts::purge::Purged::default() {
        return Err(AccountError::Invalid("that account is purged already").into());
    }
    let vaults = match (notes, identities) {
        (true, true) => "both vaults",
        (true, false) => "the notes vault",
        (false, true) => "the identities vault",
        (false, false) => "no vault (there was none)",
    };
    Ok(Done::Message(format!(
        "{}: purged {vaults} with every record, version, manifest and escrow copy; {} sessions, {} devices, {} \
         codes and links, {} support grants, {} write-log and {} sign-in-log rows, {} security events. The login \
         is kept until `kluis-server user transfer {} --to NEW`. Backups taken from now on hold none of it; \
         older backups still do until they are deleted (docs/PURGE.md).",
        user.username, n.sessions, n.devices, n.tokens, n.support_grants, n.writes, n.sign_ins, n.events, user.username
    )))
}

/// Runs a command that needs only the accounts store.
fn execute_accounts(accounts: &Accounts, cmd: &OperatorCommand) -> Result<Done, AccountError> {
    let e = match cmd {
        OperatorCommand::Init { practice, admin } => {
            if !accounts.is_empty() {
                return Err(AccountError::Invalid("this data directory is initialised already; use `practice add`"));
            }
            accounts.add_practice(practice, admin)
        }
        OperatorCommand::PracticeAdd { name, admin } => accounts.add_practice(name, admin),
        OperatorCommand::UserInvite { username, practice, roles } => accounts.invite(practice, username, roles.clone()),
        OperatorCommand::UserCode { username } => accounts.reissue(username),
        OperatorCommand::SupportAdd { username } => accounts.add_support(username),
        OperatorCommand::UserUnlock { username } => {
            accounts.unlock(username)?;
            return Ok(Done::Message(format!("{username}: failed sign-in counts cleared")));
        }
        OperatorCommand::UserResetSecondFactor { username, verified_by, evidence } => {
            let user = accounts.user_by_name(username)?.ok_or(AccountError::NotFound)?;
            accounts.reset_second_factor(&user.id, "operator", verified_by, *evidence)?;
            return Ok(Done::Message(format!(
                "{username}: second factor removed and sessions ended; they set up a new one at their next sign-in \
                 (recorded, with who checked their identity and how)"
            )));
        }
        OperatorCommand::AuditVerify { practice, expect } => {
            return audit_verify(accounts, practice.as_deref(), expect.as_deref());
        }
        OperatorCommand::AuditExport { practice, out } => return audit_export(accounts, practice.as_deref(), out),
        OperatorCommand::Export { .. }
        | OperatorCommand::Backup { .. }
        | OperatorCommand::UserPurge { .. }
        | OperatorCommand::UserTransfer { .. } => {
            return Err(AccountError::Internal("this command runs with the stores"));
        }
    };
    e.map(Done::Enrollment)
}

/// The chain of a practice by name, or the operator's.
fn chain_of(accounts: &Accounts, practice: Option<&str>) -> Result<(crate::accounts::model::Id, String), AccountError> {
    match practice {
        Some(name) => {
            let p = accounts.practice_by_name(name)?.ok_or(AccountError::Invalid("no practice has that name"))?;
            Ok((p.id, p.name))
        }
        None => Ok((crate::accounts::audit::OPERATOR_CHAIN, "the operator".to_owned())),
    }
}

/// Parses `SEQ:HASH`.
fn parse_head(text: &str) -> Result<crate::accounts::audit::AuditHead, AccountError> {
    let bad = AccountError::Invalid("--expect-head is SEQ:HASH, as the admin console or `audit verify` shows it");
    let (seq, hash) = text.trim().split_once(':').ok_or(AccountError::Invalid("--expect-head is SEQ:HASH"))?;
    let seq = seq.parse().map_err(|_| AccountError::Invalid("--expect-head is SEQ:HASH"))?;
    let mut h = [0u8; 32];
    hex::decode_to_slice(hash, &mut h).map_err(|_| bad)?;
    Ok(crate::accounts::audit::AuditHead { seq, hash: h })
}

fn audit_verify(accounts: &Accounts, practice: Option<&str>, expect: Option<&str>) -> Result<Done, AccountError> {
    let expect = expect.map(parse_head).transpose()?;
    let chains = match practice {
        Some(_) => vec![chain_of(accounts, practice)?],
        None => accounts
            .audit_chains()?
            .into_iter()
            .map(|id| {
                let name = if id == crate::accounts::audit::OPERATOR_CHAIN {
                    "the operator".to_owned()
                } else {
                    accounts.practice(&id).map(|p| p.name).unwrap_or_else(|_| id.to_string())
                };
                (id, name)
            })
            .collect(),
    };
    let mut lines = Vec::new();
    let mut broken = false;
    for (id, name) in chains {
        match accounts.verify_audit(&id, expect.as_ref())? {
            Ok(Some(h)) => lines.push(format!("{name}: {} entries, head {}:{}", h.seq, h.seq, hex::encode(h.hash))),
            Ok(None) => lines.push(format!("{name}: no entries")),
            Err(b) => {
                broken = true;
                lines.push(format!("{name}: BROKEN: {b}"));
            }
        }
    }
    if broken {
        return Err(AccountError::CheckFailed(lines.join("\n")));
    }
    Ok(Done::Message(lines.join("\n")))
}

fn audit_export(accounts: &Accounts, practice: Option<&str>, out: &Path) -> Result<Done, AccountError> {
    let (id, name) = chain_of(accounts, practice)?;
    let mut entries = Vec::new();
    loop {
        let since = entries.last().map_or(0, |e: &crate::accounts::audit::AuditEntry| e.seq);
        let page = accounts.audit_entries(&id, since, crate::accounts::audit::AUDIT_PAGE)?;
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    let verified = accounts.verify_audit(&id, None)?;
    let events = accounts.events((id != crate::accounts::audit::OPERATOR_CHAIN).then_some(&id), usize::MAX)?;
    let doc = serde_json::json!({
        "format": "kluis-audit-export/v1",
        "chain": id,
        "practice": name,
        "verified": verified.is_ok(),
        "head": accounts.audit_head(&id)?,
        "entries": entries,
        "events": events,
    });
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|_| AccountError::Internal("encoding the export failed"))?;
    write_new_file(out, &bytes)
        .map_err(|_| AccountError::Invalid("the audit export could not be written (does the file exist?)"))?;
    Ok(Done::Message(format!(
        "{name}: {} audit entries and {} security events written to {}",
        entries.len(),
        events.len(),
        out.display()
    )))
}

/// The socket's path for a data directory.
pub fn socket_path(data: &Path) -> PathBuf {
    data.join(SOCKET_NAME)
}

/// Binds the admin socket (mode 0600), replacing one left by a server that was killed.
pub async fn bind_socket(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another server answers on this data directory",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// How long a client of the admin socket may take to send its command.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The user id this process runs as: the owner of `/proc/self` (Linux), else of `fallback`.
fn own_uid(fallback: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").or_else(|_| std::fs::metadata(fallback)).map(|m| m.uid())
}

/// Serves the admin socket until the task is dropped.
pub async fn serve_socket(listener: tokio::net::UnixListener, path: PathBuf, ctx: Context) -> std::io::Result<()> {
    // Beyond the file mode: the peer must run as this very user (not even root is let in).
    let own_uid = own_uid(&path)?;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait and go on, do not give up the socket.
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let same_user = stream.peer_cred().is_ok_and(|c| c.uid() == own_uid);
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read).take(MAX_REQUEST_BYTES as u64);
            let answer = if !same_user {
                Answer::Error("the admin socket only answers the user the server runs as".into())
            } else if !matches!(tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await, Ok(Ok(_))) {
                Answer::Error("unreadable request".into())
            } else {
                match serde_json::from_str::<OperatorCommand>(&line) {
                    Err(e) => Answer::Error(format!("not a command: {e}")),
                    Ok(cmd) => {
                        let kind = format!("{cmd:?}").split_whitespace().next().unwrap_or("").to_owned();
                        match execute(&ctx, &cmd).await {
                            Ok(e) => {
                                tracing::info!(command = %kind, "operator command over the admin socket");
                                Answer::Ok(e)
                            }
                            Err(e) => Answer::Error(e.to_string()),
                        }
                    }
                }
            };
            let mut out = serde_json::to_string(&answer).unwrap_or_else(|_| r#"{"error":"internal error"}"#.into());
            out.push('\n');
            let _ = write.write_all(out.as_bytes()).await;
        });
    }
}

/// Sends a command to a running server, if one answers on the socket (`Ok(None)` if none does).
pub async fn send(data: &Path, cmd: &OperatorCommand) -> Result<Option<Done>, String> {
    let path = socket_path(data);
    let Ok(stream) = tokio::net::UnixStream::connect(&path).await else { return Ok(None) };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(cmd).map_err(|e| e.to_string())?;
    line.push('\n');
    write.write_all(line.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await.map_err(|e| e.to_string())?;
    match serde_json::from_str::<Answer>(&answer).map_err(|_| "the server's answer is unreadable".to_owned())? {
        Answer::Ok(e) => Ok(Some(e)),
        Answer::Error(e) => Err(e),
    }
}
