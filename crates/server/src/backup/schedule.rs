//! `serve --backup-dir DIR --backup-every 1h --keep N --backup-recipient age1…`: a backup when
//! the newest one in DIR is older than the interval (so also at start, if none is recent), then
//! one every interval; after each, only the newest N backups are kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{BACKUP_EXTENSION, BackupError};

/// Shortest interval between scheduled backups.
pub const MIN_EVERY: Duration = Duration::from_secs(10);
/// What every scheduled backup's file name starts with (then the UTC time it was taken).
pub const FILE_PREFIX: &str = "kluis-";

/// When and where to take backups.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The directory the backups go to.
    pub dir: PathBuf,
    /// How often.
    pub every: Duration,
    /// How many to keep (at least 1).
    pub keep: usize,
    /// Who can open them.
    pub recipients: Vec<age::x25519::Recipient>,
}

/// Parses `--backup-every` (`90s`, `15m`, `1h`, `1d` ...), at least [`MIN_EVERY`].
pub fn parse_every(text: &str) -> Result<Duration, BackupError> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|_| BackupError::Invalid(format!("--backup-every {text:?}: give a duration such as 15m, 1h or 1d")))?;
    if d < MIN_EVERY {
        return Err(BackupError::Invalid(format!("--backup-every is at least {}s", MIN_EVERY.as_secs())));
    }
    Ok(d)
}

/// The file name of a backup taken at `created_ms`: `kluis-20261207T021500123Z.kluis-backup`,
/// so names sort by time.
pub fn file_name(created_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(created_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{FILE_PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z.{BACKUP_EXTENSION}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The scheduled backups in `dir`, oldest first.
pub fn scheduled_backups(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let suffix = format!(".{BACKUP_EXTENSION}");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(FILE_PREFIX) && name.ends_with(&suffix) && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

/// Deletes all but the newest `keep` scheduled backups; returns how many went.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let all = scheduled_backups(dir)?;
    let extra = all.len().saturating_sub(keep.max(1));
    for old in all.iter().take(extra) {
        std::fs::remove_file(old)?;
    }
    Ok(extra)
}

/// How long ago the newest scheduled backup was written, if there is one.
fn newest_age(dir: &Path) -> Option<Duration> {
    let newest = scheduled_backups(dir).ok()?.pop()?;
    std::fs::metadata(newest).ok()?.modified().ok()?.elapsed().ok()
}

/// Takes backups on the schedule for as long as the server runs.
pub async fn run(schedule: Schedule, ctx: crate::admin::Context) {
    if let Err(e) = std::fs::create_dir_all(&schedule.dir) {
        tracing::error!(dir = %schedule.dir.display(), error = %e, "cannot create the backup directory; no backups");
        return;
    }
    let first = newest_age(&schedule.dir).map_or(Duration::ZERO, |age| schedule.every.saturating_sub(age));
    tokio::time::sleep(first).await;
    loop {
        let out = schedule.dir.join(file_name(ctx.accounts.clock().now()));
        match super::snapshot::take(&ctx, &out, schedule.recipients.clone()).await {
            // Old backups go only after a new one is whole.
            Ok(_) => match prune(&schedule.dir, schedule.keep) {
                Ok(n) if n > 0 => tracing::info!(removed = n, kept = schedule.keep, "old backups removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "removing old backups failed"),
            },
            Err(e) => tracing::error!(error = %e, file = %out.display(), "a scheduled backup failed"),
        }
        tokio::time::sleep(schedule.every).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_sort_by_time_and_only_the_newest_are_kept() {
        assert_eq!(file_name(1_796_611_500_123), "kluis-20261207T024500123Z.kluis-backup");
        let dir = tempfile::tempdir().unwrap();
        for ms in [3_000u64, 1_000, 2_000, 4_000] {
            std::fs::write(dir.path().join(file_name(ms)), b"x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"not a backup").unwrap();
        assert_eq!(prune(dir.path(), 2).unwrap(), 2);
        let left: Vec<String> = scheduled_backups(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, [file_name(3_000), file_name(4_000)]);
        assert!(dir.path().join("notes.txt").exists(), "other files are left alone");
        assert_eq!(prune(dir.path(), 0).unwrap(), 1, "at least one is always kept");
    }

    #[test]
    fn intervals_are_durations_of_at_least_ten_seconds() {
        assert_eq!(parse_every("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_every("15m").unwrap(), Duration::from_secs(900));
        assert!(parse_every("1s").is_err());
        assert!(parse_every("hourly").is_err());
    }
}
