//! Passphrases (from a hidden terminal prompt or a file, never the command line) and a spinner
//! for the slow key derivations.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;
use kluis_core::{Passphrase, StrongPassphrase};
use zeroize::Zeroizing;

use crate::error::fail;
use crate::fileio::read_small;

/// Where a passphrase comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// The first line of a file (for scripts).
    File(&'a Path),
    /// A hidden prompt on the terminal.
    Prompt,
}

impl<'a> Source<'a> {
    pub(crate) fn from(file: Option<&'a Path>) -> Self {
        file.map_or(Source::Prompt, Source::File)
    }
}

fn from_file(path: &Path) -> Result<Passphrase> {
    let bytes = Zeroizing::new(read_small(path)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail(format!("{}: not UTF-8 text", path.display()), "Write the passphrase as plain text."))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(fail(
            format!("{}: the first line is empty", path.display()),
            "Put the passphrase on the first line.",
        ));
    }
    Ok(Passphrase::new(line.to_owned()))
}

fn prompt(question: &str) -> Result<Passphrase> {
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            "a passphrase is needed, and there is no terminal to ask for it",
            "Run this in a terminal, or pass --passphrase-file FILE.",
        ));
    }
    let answer = rpassword::prompt_password(question)
        .map_err(|e| fail(format!("cannot read the passphrase: {e}"), "Run this in a terminal."))?;
    Ok(Passphrase::new(answer))
}

/// A passphrase to open something existing.
pub(crate) fn existing(src: Source<'_>, what: &str) -> Result<Passphrase> {
    match src {
        Source::File(p) => from_file(p),
        Source::Prompt => prompt(&format!("Passphrase of {what}: ")),
    }
}

/// A new passphrase, typed twice on a terminal, and strong enough (zxcvbn).
pub(crate) fn new_strong(src: Source<'_>, what: &str, context: &[&str]) -> Result<StrongPassphrase> {
    let pass = match src {
        Source::File(p) => from_file(p)?,
        Source::Prompt => {
            let a = prompt(&format!("New passphrase for {what}: "))?;
            let b = prompt("Type it again: ")?;
            if a.expose() != b.expose() {
                return Err(fail("the two passphrases differ", "Type the same passphrase twice."));
            }
            a
        }
    };
    StrongPassphrase::assess(pass, &kluis_passphrase::Zxcvbn, context).map_err(|e| {
        fail(e.to_string(), "Use a passphrase of several unrelated words, at least 12 characters; it is never stored.")
    })
}

/// Runs `work` with a spinner on stderr when stderr is a terminal.
pub(crate) fn with_spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let out = work();
    bar.finish_and_clear();
    out
}
