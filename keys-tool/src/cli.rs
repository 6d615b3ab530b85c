//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Generate, inspect, protect, back up, restore and escrow kluis key files.
///
/// A key file is the only thing that opens a practitioner's notes: whoever has it can read them,
/// and whoever loses every copy loses them. Keep it on a USB stick, back it up twice (a backup
/// file and a paper copy), and keep the backups apart from the stick.
#[derive(Debug, Parser)]
#[command(name = "kluis-keys", version, max_term_width = 100, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

const EXAMPLES: &str = "\
A practice's first day:
  kluis-keys escrow init --out /safe/practice-break-glass.kluis
  kluis-keys generate --out /media/usb/jansen.kluis --label \"Dr A. Jansen\" \\
      --escrow /safe/practice-break-glass.kluis.pub --register /safe/register.txt
  kluis-keys backup /media/usb/jansen.kluis --to /safe/jansen.kluis.age
  kluis-keys backup /media/usb/jansen.kluis --paper jansen-paper.html
After losing the stick:
  kluis-keys restore --from /safe/jansen.kluis.age --out /media/new-usb/jansen.kluis --expect <fingerprint>";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new key file.
    #[command(
        after_help = "Example:\n  kluis-keys generate --out /media/usb/jansen.kluis --label \"Dr A. Jansen\" --escrow break-glass.kluis.pub"
    )]
    Generate(Generate),
    /// Add or replace the practice's break-glass key in an existing key file.
    #[command(after_help = "Example:\n  kluis-keys set-escrow /media/usb/jansen.kluis --escrow break-glass.kluis.pub")]
    SetEscrow(SetEscrow),
    /// Show a key file's label, dates, public key and fingerprints (never its secret).
    #[command(after_help = "Example:\n  kluis-keys inspect /media/usb/jansen.kluis")]
    Inspect(Inspect),
    /// Add, change or remove a key file's passphrase.
    #[command(
        after_help = "Examples:\n  kluis-keys passwd /media/usb/jansen.kluis\n  kluis-keys passwd /media/usb/jansen.kluis --remove"
    )]
    Passwd(Passwd),
    /// Back up a key file: to a passphrase-encrypted age file, or to a printable paper page.
    #[command(
        after_help = "Examples:\n  kluis-keys backup jansen.kluis --to jansen.kluis.age\n  kluis-keys backup jansen.kluis --paper jansen-paper.html\n\nThe age file can also be opened without kluis: `age -d -o jansen.kluis jansen.kluis.age`."
    )]
    Backup(Backup),
    /// Rebuild a key file from a backup file or from the paper page.
    #[command(
        after_help = "Examples:\n  kluis-keys restore --from jansen.kluis.age --out jansen.kluis --expect ABCD-EFGH-...\n  kluis-keys restore --from-paper --out jansen.kluis        (then type the groups)"
    )]
    Restore(Restore),
    /// Check that a backup (age file or paper page) restores this key, writing nothing.
    #[command(after_help = "Example:\n  kluis-keys verify jansen.kluis --backup jansen.kluis.age")]
    Verify(Verify),
    /// The practice's break-glass key (HIPAA emergency access).
    #[command(subcommand)]
    Escrow(Escrow),
    /// The practice's register of which key belongs to whom.
    #[command(subcommand)]
    Register(Register),
}

/// Where passphrases come from: a hidden prompt, or the first line of a file.
#[derive(Debug, Args)]
pub(crate) struct PassphraseFile {
    /// Read the key file's passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub(crate) passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct Generate {
    /// Where to write the new key file.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,
    /// A name for the key: who or what it is for.
    #[arg(long, value_name = "NAME", default_value = "kluis key")]
    pub(crate) label: String,
    /// Protect the key file with a passphrase (asked twice, or read with --passphrase-file).
    #[arg(long)]
    pub(crate) passphrase: bool,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
    /// The practice's break-glass public key file (written by `escrow init`).
    #[arg(long, value_name = "FILE")]
    pub(crate) escrow: Option<PathBuf>,
    /// Append the label, fingerprint and date to the practice's register file.
    #[arg(long, value_name = "FILE")]
    pub(crate) register: Option<PathBuf>,
    /// Replace PATH if it exists (the old key is lost unless it is backed up).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SetEscrow {
    /// The key file.
    pub(crate) path: PathBuf,
    /// The practice's break-glass public key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) escrow: PathBuf,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
}

#[derive(Debug, Args)]
pub(crate) struct Inspect {
    /// The key file.
    pub(crate) path: PathBuf,
    /// Verify a protected file's fields too (asks for its passphrase).
    #[arg(long)]
    pub(crate) verify: bool,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
}

#[derive(Debug, Args)]
pub(crate) struct Passwd {
    /// The key file.
    pub(crate) path: PathBuf,
    /// Remove the passphrase (the file then opens with no passphrase).
    #[arg(long)]
    pub(crate) remove: bool,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
    /// Read the new passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub(crate) new_passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "paper"])))]
pub(crate) struct Backup {
    /// The key file.
    pub(crate) path: PathBuf,
    /// Write a passphrase-encrypted backup in the age format.
    #[arg(long, value_name = "FILE")]
    pub(crate) to: Option<PathBuf>,
    /// Write a printable page with the key in checked groups and a QR code.
    #[arg(long, value_name = "FILE")]
    pub(crate) paper: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
    /// Read the backup's passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub(crate) backup_passphrase_file: Option<PathBuf>,
    /// Replace the backup file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from", "from_paper"])))]
pub(crate) struct Restore {
    /// The age backup file.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// Restore from the paper groups: read from FILE (the page or a text file), or typed.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) from_paper: Option<PathBuf>,
    /// Where to write the restored key file.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,
    /// Refuse unless the restored key has this fingerprint.
    #[arg(long, value_name = "FINGERPRINT")]
    pub(crate) expect: Option<String>,
    /// Read the backup's passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub(crate) backup_passphrase_file: Option<PathBuf>,
    /// Replace PATH if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Verify {
    /// The key file.
    pub(crate) path: PathBuf,
    /// The backup: an age file or a paper page.
    #[arg(long, value_name = "FILE")]
    pub(crate) backup: PathBuf,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
    /// Read the backup's passphrase from the first line of FILE instead of asking.
    #[arg(long, value_name = "FILE")]
    pub(crate) backup_passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Escrow {
    /// Create the practice's break-glass key pair: the secret at PATH, the public key at PATH.pub.
    #[command(after_help = "Example:\n  kluis-keys escrow init --out /safe/practice-break-glass.kluis")]
    Init(EscrowInit),
    /// Emergency access: open a practitioner's vaults from a server export with the break-glass
    /// key, check everything, and write their clients and notes as readable files.
    #[command(
        after_help = "Examples:\n  kluis-keys escrow recover --escrow-key /safe/practice-break-glass.kluis --export jansen.export \\\n      --register /safe/register.txt --label \"Dr A. Jansen\" --out /safe/recovered-jansen --log /safe/break-glass-log.txt\n  kluis-keys escrow recover --escrow-key break-glass.kluis --export jansen.export --expect CSUV-NBC2-... --out recovered\n\nThe runbook is docs/BREAK-GLASS.md."
    )]
    Recover(EscrowRecover),
}

#[derive(Debug, Args)]
pub(crate) struct EscrowRecover {
    /// The practice's break-glass key file.
    #[arg(long, value_name = "PATH")]
    pub(crate) escrow_key: PathBuf,
    /// The export the operator made (`kluis-server export --user USERNAME --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub(crate) export: PathBuf,
    /// The practitioner's key-file fingerprint, from the practice's own records.
    #[arg(long, value_name = "FINGERPRINT", conflicts_with_all = ["register", "label"])]
    pub(crate) expect: Option<String>,
    /// Take the fingerprint from the practice's register ...
    #[arg(long, value_name = "FILE", requires = "label")]
    pub(crate) register: Option<PathBuf>,
    /// ... on the line with this label.
    #[arg(long, value_name = "NAME", requires = "register")]
    pub(crate) label: Option<String>,
    /// A new folder for the readable records.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Append this use of the break-glass key to the practice's use log.
    #[arg(long, value_name = "FILE")]
    pub(crate) log: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
}

#[derive(Debug, Args)]
pub(crate) struct EscrowInit {
    /// Where to write the break-glass secret key (the public key goes to PATH.pub).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,
    /// A name for the key.
    #[arg(long, value_name = "NAME", default_value = "practice break-glass key")]
    pub(crate) label: String,
    /// Do not protect the secret key with a passphrase (not recommended).
    #[arg(long)]
    pub(crate) no_passphrase: bool,
    #[command(flatten)]
    pub(crate) pass: PassphraseFile,
    /// Replace existing files.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Register {
    /// Record a key that a practitioner generated themselves.
    #[command(
        after_help = "Example:\n  kluis-keys register add /safe/register.txt --label \"Dr B. de Vries\" --fingerprint ABCD-EFGH-..."
    )]
    Add(RegisterAdd),
}

#[derive(Debug, Args)]
pub(crate) struct RegisterAdd {
    /// The register file (created if missing).
    pub(crate) file: PathBuf,
    /// Who the key belongs to.
    #[arg(long, value_name = "NAME")]
    pub(crate) label: String,
    /// The key's fingerprint, as `kluis-keys inspect` shows it.
    #[arg(long, value_name = "FINGERPRINT")]
    pub(crate) fingerprint: String,
}
