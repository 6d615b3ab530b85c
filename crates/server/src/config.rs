//! Command line and environment (clap), with safe defaults so `serve` needs no configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The kluis server: stores only ciphertext, over HTTPS.
#[derive(Debug, Parser)]
#[command(name = "kluis-server", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Server commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve kluis over HTTPS.
    Serve(Serve),
}

/// `serve` options.
#[derive(Debug, Clone, Args)]
pub struct Serve {
    /// Data directory (the record store and the development certificate live here).
    #[arg(long = "data", env = "KLUIS_DATA", default_value = "./kluis-data", value_name = "DIR")]
    pub data: PathBuf,
    /// Where the identities vaults are stored, apart from the notes (default: DATA/identities).
    #[arg(long = "identity-data", env = "KLUIS_IDENTITY_DATA", value_name = "DIR")]
    pub identity_data: Option<PathBuf>,
    /// Address and port to listen on.
    #[arg(long, env = "KLUIS_LISTEN", default_value = "127.0.0.1:8443", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Plain-HTTP address that only redirects to HTTPS ("off" to disable).
    #[arg(long, env = "KLUIS_HTTP_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR:PORT|off")]
    pub http_listen: String,
    /// TLS certificate chain (PEM). Without it, a development certificate is made on first run.
    #[arg(long, env = "KLUIS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "KLUIS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Serve {
    /// The accounts store's directory.
    pub fn accounts_dir(&self) -> PathBuf {
        self.data.join("accounts")
    }

    /// The notes store's directory.
    pub fn notes_dir(&self) -> PathBuf {
        self.data.join("notes")
    }

    /// The identities store's directory.
    pub fn identities_dir(&self) -> PathBuf {
        self.identity_data.clone().unwrap_or_else(|| self.data.join("identities"))
    }
}
