//! Files only their owner may read and write (mode 0600 on Unix), always created new: the
//! server key, the development TLS key, key files restored from a backup, and the temporary
//! files that backups and exports are written to before they are linked into place.

use std::io::Write;
use std::path::Path;

/// Creates `path`, which must not exist yet, readable and writable by its owner only.
pub fn create(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// Creates `path` as [`create`] does, writes `bytes` to it and syncs them to the disk.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
