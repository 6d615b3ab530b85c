//! Writing key material safely: never over an existing file unless asked, atomically (temporary
//! file, fsync, rename), mode 0600 where the filesystem has modes. Nothing is half-written.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::fail;

/// Test hook (documented in the README): pretend the filesystem refuses file modes, as FAT32 and
/// exFAT sticks do, so the warning path can be tested on machines that cannot mount them.
const ENV_NO_MODES: &str = "KLUIS_KEYS_TEST_NO_FILE_MODES";
/// Test hook: fail after the temporary file is written, to test that nothing is left behind.
const ENV_FAIL_BEFORE_RENAME: &str = "KLUIS_KEYS_TEST_FAIL_BEFORE_RENAME";
/// Largest file kluis-keys reads (key files are < 1 KiB; backups and paper pages a few KiB).
const MAX_READ: u64 = 1024 * 1024;

/// Reads a small file, refusing anything larger than a key file or backup could be.
pub(crate) fn read_small(path: &Path) -> Result<Vec<u8>> {
    let mut f =
        File::open(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display()), "Check the path."))?;
    let mut buf = Vec::new();
    Read::by_ref(&mut f).take(MAX_READ + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_READ {
        return Err(fail(format!("{} is too large to be a kluis key or backup", path.display()), "Check the path."));
    }
    Ok(buf)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.kluis-tmp-{}", std::process::id()))
}

/// What happened to file modes when writing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Modes {
    /// The file is readable by its owner only.
    OwnerOnly,
    /// The filesystem has no file modes (FAT32, exFAT): anyone who can mount it can read it.
    Unsupported,
}

/// Writes `bytes` to `path` atomically, with mode 0600. Refuses an existing `path` unless
/// `force`. On any failure nothing is left at `path` and the temporary file is removed.
pub(crate) fn write_secret(path: &Path, bytes: &[u8], force: bool) -> Result<Modes> {
    if !force && path.exists() {
        return Err(fail(
            format!("{} already exists", path.display()),
            "Choose another path, or add --force to replace it (the old file is then lost).",
        ));
    }
    let tmp = temp_path(path);
    let result = write_then_rename(&tmp, path, bytes, force);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8], force: bool) -> Result<Modes> {
    let cannot = |e: std::io::Error| {
        fail(
            format!("cannot write {}: {e}", path.display()),
            "Check that the stick is inserted, writable and not full; nothing was written.",
        )
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(tmp).map_err(cannot)?;
    f.write_all(bytes).map_err(cannot)?;
    let modes = set_owner_only(tmp);
    f.sync_all().map_err(cannot)?;
    drop(f);
    if std::env::var_os(ENV_FAIL_BEFORE_RENAME).is_some() {
        return Err(cannot(std::io::Error::other("injected failure before rename")));
    }
    if force {
        fs::rename(tmp, path).map_err(cannot)?;
    } else {
        // No-clobber: a hard link fails if `path` appeared meanwhile. Filesystems without hard
        // links (FAT) fall back to a rename after checking again.
        match fs::hard_link(tmp, path) {
            Ok(()) => fs::remove_file(tmp).map_err(cannot)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(fail(format!("{} already exists", path.display()), "Choose another path."));
            }
            Err(_) if !path.exists() => fs::rename(tmp, path).map_err(cannot)?,
            Err(e) => return Err(cannot(e)),
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(modes)
}

fn set_owner_only(path: &Path) -> Modes {
    if std::env::var_os(ENV_NO_MODES).is_some() {
        return Modes::Unsupported;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ok = fs::set_permissions(path, fs::Permissions::from_mode(0o600)).is_ok()
            && fs::metadata(path).map(|m| m.permissions().mode() & 0o077 == 0).unwrap_or(false);
        if ok { Modes::OwnerOnly } else { Modes::Unsupported }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Modes::Unsupported
    }
}

/// Writes and warns on stderr when the filesystem could not restrict the file to its owner.
pub(crate) fn write_secret_reporting(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    if write_secret(path, bytes, force)? == Modes::Unsupported {
        eprintln!(
            "warning: {} is on a filesystem without file permissions (FAT32 or exFAT?): anyone who can read the stick can read it. Keep the stick safe.",
            path.display()
        );
    }
    Ok(())
}
