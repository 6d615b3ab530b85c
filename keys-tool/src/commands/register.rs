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
