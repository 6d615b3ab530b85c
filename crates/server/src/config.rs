//! Command line and environment (clap), with safe defaults so `serve` needs no configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    Serve(Box<Serve>),
    /// Create the first practice and its admin (who is also a practitioner), and print the
    /// admin's enrollment code.
    Init {
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
        /// The practice's name.
        #[arg(long, value_name = "NAME")]
        practice: String,
        /// The admin's username.
        #[arg(long, value_name = "USERNAME")]
        admin: String,
    },
    /// Practices.
    #[command(subcommand)]
    Practice(PracticeCommand),
    /// Users of a practice.
    #[command(subcommand)]
    User(UserCommand),
    /// The operator's support staff (in no practice; they never reach records).
    #[command(subcommand)]
    Support(SupportCommand),
    /// The audit trail: verify the chains, or export one for a data-breach procedure.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a practitioner's two vaults, whole (every version, manifest and sealed escrow
    /// copy), into an export file that the practice's break-glass holder opens with
    /// `kluis-keys escrow recover` (FORMAT.md §12). It holds ciphertext only.
    Export {
        /// The username.
        #[arg(long = "user", value_name = "USERNAME")]
        username: String,
        /// The export file to write (a new file).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Take a backup of everything (the three stores and the keys a new machine needs) into a
    /// new file, encrypted to the operator's age recipients and signed by this server
    /// (FORMAT.md §13). Writes pause while it is taken.
    Backup {
        /// The backup file to write (a new file).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// An age recipient (`age1…`) who can open it; repeat for more.
        #[arg(
            long = "recipient",
            env = "KLUIS_BACKUP_RECIPIENT",
            value_name = "AGE1…",
            value_delimiter = ',',
            required = true
        )]
        recipients: Vec<String>,
        /// The server key, if not DATA/server.key (only when the server is stopped; a running
        /// server backs up its own).
        #[arg(long = "server-key", env = "KLUIS_SERVER_KEY", value_name = "FILE")]
        server_key: Option<PathBuf>,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Restore a backup into a new (or empty) data directory, after checking that it decrypts
    /// whole and that the server whose signing key you give signed it. Never touches a store
    /// that exists.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The age identity file that opens it.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// The server's public signing key, as `init` and `serve` printed it (ed25519:…).
        #[arg(long = "signing-key", value_name = "KEY")]
        signing_key: String,
        /// The new data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Make an age key pair for backups: writes the identity (secret) to a new file and prints
    /// the recipient to give to `--backup-recipient`. Keep the identity off this server.
    BackupIdentity {
        /// The identity file to write (a new file, mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that every chain (or one practice's) is whole, and holds a head written down earlier.
    Verify {
        /// Only this practice's chain.
        #[arg(long, value_name = "NAME")]
        practice: Option<String>,
        /// A head the admin console showed, or an earlier `audit verify` printed: SEQ:HASH.
        #[arg(long = "expect-head", value_name = "SEQ:HASH")]
        expect_head: Option<String>,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Write a practice's audit trail and security events to a JSON file (docs/BREACH.md).
    Export {
        /// The practice (none: the operator's own chain).
        #[arg(long, value_name = "NAME")]
        practice: Option<String>,
        /// The file to write (a new file).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
}

/// `--data` for the operator commands.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Data directory of the server (its admin socket is used while it runs).
    #[arg(long = "data", env = "KLUIS_DATA", default_value = "./kluis-data", value_name = "DIR")]
    pub data: PathBuf,
}

/// `practice ...`
#[derive(Debug, Subcommand)]
pub enum PracticeCommand {
    /// Add a practice and its admin; prints the admin's enrollment code.
    Add {
        /// The practice's name.
        name: String,
        /// The admin's username.
        #[arg(long, value_name = "USERNAME")]
        admin: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
}

/// `user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Invite a user to a practice; prints their single-use enrollment code.
    Invite {
        /// The username.
        username: String,
        /// The practice's name.
        #[arg(long, value_name = "NAME")]
        practice: String,
        /// A role: practitioner or admin (repeat for both).
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Clear a user's failed sign-in counts after a lockout.
    Unlock {
        /// The username.
        username: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove a user's second factor after checking their identity (they lost their phone and
    /// their recovery codes); recorded with who checked and how.
    #[command(name = "reset-2fa")]
    ResetSecondFactor {
        /// The username.
        username: String,
        /// Who checked the user's identity (a name).
        #[arg(long = "verified-by", value_name = "NAME")]
        verified_by: String,
        /// How: in-person, video-call, phone-callback or other (the kind only, never the evidence).
        #[arg(long, value_name = "KIND")]
        evidence: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
        /// Where the user's notice goes if the server is stopped.
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Delete an account's two vaults (every record, version, manifest and escrow copy) and
    /// everything else of it (sessions, devices, codes, second factor, logs), keeping only its
    /// login until it is transferred. Cannot be undone.
    Purge {
        /// The username.
        username: String,
        /// The username again, to confirm.
        #[arg(long, value_name = "USERNAME")]
        confirm: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// Give a purged account to a new person under a new login; prints their enrollment code.
    Transfer {
        /// The purged account's username.
        username: String,
        /// The new owner's username.
        #[arg(long, value_name = "USERNAME")]
        to: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
    /// A fresh enrollment code for a user who has not enrolled yet (earlier codes stop working).
    Code {
        /// The username.
        username: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
}

/// `support ...`
#[derive(Debug, Subcommand)]
pub enum SupportCommand {
    /// Add a support staff member; prints their enrollment code.
    Add {
        /// The username.
        username: String,
        /// Data directory.
        #[command(flatten)]
        data: DataDir,
    },
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
    /// The built browser app (default: `web` beside the directory of this binary, which is
    /// `target/web` for a cargo build; `scripts/build-web.sh` makes it).
    #[arg(long, env = "KLUIS_WEB", value_name = "DIR")]
    pub web: Option<PathBuf>,
    /// TLS certificate chain (PEM). Without it, a development certificate is made on first run.
    #[arg(long, env = "KLUIS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "KLUIS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The server key that seals TOTP secrets (32 bytes), kept apart from the stores; created
    /// with mode 0600 on first run (default: DATA/server.key).
    #[arg(long = "server-key", env = "KLUIS_SERVER_KEY", value_name = "FILE")]
    pub server_key: Option<PathBuf>,
    /// Where mail goes: an SMTP relay (`smtp://host:587?tls=required`,
    /// `smtps://user:password@host`). Without it, messages are written to DATA/outbox.
    #[arg(long, env = "KLUIS_SMTP", value_name = "URL", hide_env_values = true)]
    pub smtp: Option<String>,
    /// The sender of mail.
    #[arg(
        long = "mail-from",
        env = "KLUIS_MAIL_FROM",
        default_value = "kluis <kluis@localhost>",
        value_name = "ADDRESS"
    )]
    pub mail_from: String,
    /// The address users open, for links in mail (default: https:// and the listen address).
    #[arg(long = "public-url", env = "KLUIS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// An HTTP gateway for SMS (`https://…`; `http://` only on this machine): one-time codes go
    /// by SMS too, to users with a mobile number. Its bearer token: env `KLUIS_SMS_TOKEN`.
    #[arg(long = "sms-gateway", env = "KLUIS_SMS_GATEWAY", value_name = "URL", hide_env_values = true)]
    pub sms_gateway: Option<String>,
    /// Take backups into this directory while serving (with --backup-recipient).
    #[arg(long = "backup-dir", env = "KLUIS_BACKUP_DIR", value_name = "DIR", requires = "backup_recipients")]
    pub backup_dir: Option<PathBuf>,
    /// How often to take a backup (`30m`, `1h`, `1d` ...).
    #[arg(long = "backup-every", env = "KLUIS_BACKUP_EVERY", default_value = "1h", value_name = "DURATION")]
    pub backup_every: String,
    /// How many backups to keep in --backup-dir (older ones are deleted after a new one is whole).
    #[arg(long = "keep", env = "KLUIS_BACKUP_KEEP", default_value_t = 48, value_name = "N")]
    pub backup_keep: usize,
    /// An age recipient (`age1…`) who can open the backups; repeat for more.
    #[arg(long = "backup-recipient", env = "KLUIS_BACKUP_RECIPIENT", value_name = "AGE1…", value_delimiter = ',')]
    pub backup_recipients: Vec<String>,
}

/// Where the notices of an operator command go when the server is stopped (while it runs,
/// its own settings apply).
#[derive(Debug, Clone, Args)]
pub struct MailArgs {
    /// An SMTP relay, as for `serve`; without it, DATA/outbox.
    #[arg(long, env = "KLUIS_SMTP", value_name = "URL", hide_env_values = true)]
    pub smtp: Option<String>,
    /// The sender of mail.
    #[arg(
        long = "mail-from",
        env = "KLUIS_MAIL_FROM",
        default_value = "kluis <kluis@localhost>",
        value_name = "ADDRESS"
    )]
    pub mail_from: String,
    /// The address users open, for links in mail.
    #[arg(
        long = "public-url",
        env = "KLUIS_PUBLIC_URL",
        default_value = "https://localhost:8443/",
        value_name = "URL"
    )]
    pub public_url: String,
}

impl Serve {
    /// Where the built browser app is.
    pub fn web_dir(&self) -> PathBuf {
        self.web.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().and_then(Path::parent).map(|target| target.join("web")))
                .unwrap_or_else(|| PathBuf::from("target/web"))
        })
    }

    /// The address links in mail point to.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            // As the start-up message names it: the development certificate is for localhost.
            let host =
                if self.listen.ip().is_loopback() { "localhost".to_owned() } else { self.listen.ip().to_string() };
            format!("https://{host}:{}/", self.listen.port())
        })
    }

    /// The server key file.
    pub fn server_key_file(&self) -> PathBuf {
        self.server_key.clone().unwrap_or_else(|| self.data.join("server.key"))
    }

    /// The key files a backup carries.
    pub fn key_files(&self) -> crate::backup::snapshot::KeyFiles {
        crate::backup::snapshot::KeyFiles {
            server_key: self.server_key_file(),
            signing_key: self.data.join(crate::backup::SIGNING_KEY_FILE),
        }
    }

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
