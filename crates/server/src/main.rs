//! `kluis-server`: filled in by the server issue (accounts, sessions, ciphertext store on sled,
//! HTTPS). Until then it states what it is and exits, so the README's run command tells the
//! truth about what is built.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "kluis-server {}: the server is not built yet (kluis-core is). \
         See README.md for what works today.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
