//! The practice's register: a plain text file, one key per line (FORMAT.md §6.7).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use kluis_core::Fingerprint;

use super::{date, now};
use crate::cli::RegisterAdd;
use crate::error::fail;

const HEADER: &str = "# kluis key register: date recorded, fingerprint, label (one key per line)\n";

/// Appends one key to the register, creating it with a header if needed.
pub(crate) fn append(path: &Path, label: &str, fp: &Fingerprint) -> Result<()> {
    let n = label.chars().count();
    if n == 0 || n > 64 || label.chars().any(char::is_control) || label.trim() != label {
        return Err(fail("a label has 1 to 64 characters, no tabs or line breaks", "Use a short single-line name."));
    }
    let cannot =
        |e: std::io::Error| fail(format!("cannot write the register {}: {e}", path.display()), "Check the path.");
    let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(cannot)?;
    let day = date(now()).get(..10).unwrap_or_default().to_owned();
    let line = format!("{}{day}\t{fp}\t{label}\n", if new { HEADER } else { "" });
    f.write_all(line.as_bytes()).map_err(cannot)?;
    f.sync_all().map_err(cannot)?;
    Ok(())
}

pub(crate) fn add(a: &RegisterAdd) -> Result<()> {
    let fp = Fingerprint::parse(&a.fingerprint)
        .map_err(|e| fail(format!("--fingerprint: {e}"), "Copy it as `kluis-keys inspect` shows it."))?;
    append(&a.file, &a.label, &fp)?;
    eprintln!("Recorded {fp} ({}) in {}", a.label, a.file.display());
    Ok(())
}

/// The fingerprint the register records for `label` (exact match). A label on several lines with
/// different fingerprints is refused: the practice must say which key it means.
pub(crate) fn lookup(path: &Path, label: &str) -> Result<Fingerprint> {
    let bytes = crate::fileio::read_small(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail(format!("{} is not a register (not UTF-8)", path.display()), "Give the register file."))?;
    let mut found: Option<Fingerprint> = None;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut fields = line.split('\t');
        let (Some(_), Some(fp), Some(name), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
            return Err(fail(
                format!("{}: a line is not date, fingerprint and label separated by tabs", path.display()),
                "Give the register `kluis-keys` writes (FORMAT.md §6.7).",
            ));
        };
        if name != label {
            continue;
        }
        let fp = Fingerprint::parse(fp)
            .map_err(|e| fail(format!("{}: the line of {label}: {e}", path.display()), "Check the register."))?;
        if found.is_some_and(|f| f != fp) {
            return Err(fail(
                format!("the register names several keys for {label}"),
                "Give the one you mean with --expect FINGERPRINT.",
            ));
        }
        found = Some(fp);
    }
    found.ok_or_else(|| fail(format!("the register has no key for {label}"), "Check the label, or give --expect."))
}

/// First line of a break-glass use log (FORMAT.md §6.8).
const USE_LOG_HEADER: &str = "# kluis break-glass use log: time, break-glass key, key file opened (one use per line)\n";

/// Appends one use of the break-glass key to the practice's use log.
pub(crate) fn log_use(path: &Path, break_glass: &Fingerprint, opened: &Fingerprint) -> Result<()> {
    let cannot = |e: std::io::Error| fail(format!("cannot write the log {}: {e}", path.display()), "Check the path.");
    let new = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(cannot)?;
    let line = format!("{}{}\t{break_glass}\t{opened}\n", if new { USE_LOG_HEADER } else { "" }, date(now()));
    f.write_all(line.as_bytes()).map_err(cannot)?;
    f.sync_all().map_err(cannot)?;
    Ok(())
}
