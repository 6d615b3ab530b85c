//! `kluis-keys`: filled in by the kluis-keys issue. Until then it states what it is and exits.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("kluis-keys {}: not built yet; see README.md.", env!("CARGO_PKG_VERSION"));
    ExitCode::from(2)
}
