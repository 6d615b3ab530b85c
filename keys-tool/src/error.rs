//! Errors as the user sees them: one line saying what is wrong, one saying what to do.

use std::fmt;

/// A failure with advice. `main` prints `error: {problem}` and `hint: {hint}` and exits 1.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) problem: String,
    pub(crate) hint: String,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for CliError {}

/// Builds a [`CliError`] inside an `anyhow::Error`.
pub(crate) fn fail(problem: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError { problem: problem.into(), hint: hint.into() })
}

/// Explains a kluis-core error about the key file at `path`.
pub(crate) fn key_file_error(path: &std::path::Path, e: kluis_core::Error) -> anyhow::Error {
    use kluis_core::Error as E;
    let p = path.display();
    let hint = match &e {
        E::BadPassphrase => "Check the passphrase (it is case-sensitive) and try again.",
        E::BadChecksum => "The file is damaged or was edited. Restore it from a backup with `kluis-keys restore`.",
        E::KeyFileMac => {
            "Someone or something changed the label, date, public key or break-glass key. Do not use this file; restore it from a backup."
        }
        E::KeyFileSyntax { .. } | E::Malformed { .. } | E::TooLarge { .. } => {
            "This is not a kluis key file, or it was damaged. Restore it from a backup with `kluis-keys restore`."
        }
        E::Unsupported { .. } => "This key file was written by a newer kluis. Update kluis-keys.",
        E::KdfParams(_) => "The file asks for passphrase settings kluis refuses; restore it from a backup.",
        E::WeakPassphrase(_) => "Choose a longer passphrase: several unrelated words work well.",
        _ => "Restore the key file from a backup with `kluis-keys restore`.",
    };
    fail(format!("{p}: {e}"), hint)
}
