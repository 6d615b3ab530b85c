//! E-mail to users: security notices and links. One setting decides where mail goes
//! (`--smtp URL`, env `KLUIS_SMTP`, e.g. `smtp://relay.example.org:587?tls=required` or
//! `smtps://user:password@smtp.example.org`): an SMTP relay, spoken to by lettre, over TLS
//! unless the relay is on this machine; without it, each message is written as an RFC 5322
//! file into the outbox directory (`DATA/outbox`), for a development machine or a relay that
//! picks files up. Files older than [`OUTBOX_KEEP`] are deleted.
//!
//! Every message ends with the address of the notification preferences; an optional notice
//! also carries `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 2369, RFC 8058), whose
//! one-click link turns that kind of notice off.
//!
//! No message ever holds a client's name, a note or anything from a record: the server has
//! none of them (FORMAT.md §3), and the tests look for canary strings anyway. Links in messages
//! carry their token in the URL's fragment, which browsers never send to the server, so no
//! token reaches a request log; the page they open acts only on a click (a POST).

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// What can go wrong with mail.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting is not usable (HTTP 500 at start-up).
    #[error("mail setting: {0}")]
    Setting(String),
    /// A message could not be built (an address the server holds is not valid).
    #[error("a message could not be built: {0}")]
    Build(String),
    /// The relay refused or could not be reached; the message is lost (and logged as such).
    #[error("the mail relay failed: {0}")]
    Send(String),
    /// The outbox could not be written.
    #[error("the outbox failed: {0}")]
    Outbox(#[from] std::io::Error),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Where mail goes, from whom, and the address links point to.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may carry a password: never printed.
        let kind = match &self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        };
        f.debug_struct("Mailer").field("transport", &kind).field("from", &self.from.to_string()).finish()
    }
}

/// How long the outbox keeps a message file.
pub const OUTBOX_KEEP: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);
/// Where every message points for the notification preferences (in the app).
pub const PREFERENCES_PATH: &str = "/#preferences";

/// One message to one user, plain text.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// For an optional notice: the one-click unsubscribe link (RFC 8058).
    pub unsubscribe: Option<String>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body and the unsubscribe link carry codes and tokens.
        f.debug_struct("Mail").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Whether a URL names this machine: `localhost` or a loopback address (for schemes such as
/// `smtp` the URL parser keeps the host as text, so addresses are parsed here).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_start_matches('[').trim_end_matches(']');
            d.eq_ignore_ascii_case("localhost") || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Refuses a relay URL that would send mail in the clear over a network: a relay elsewhere
/// than this machine needs `smtps://` or `smtp://…?tls=required` (STARTTLS that cannot be
/// stripped; `tls=opportunistic` can).
pub fn check_relay_url(relay: &str) -> Result<(), MailError> {
    let url = url::Url::parse(relay).map_err(|e| MailError::Setting(format!("the SMTP URL: {e}")))?;
    let loopback = is_loopback_host(&url);
    // lettre reads the first `tls` pair: exactly one, and `required`, or a later pair could be
    // what this check sees while lettre downgrades.
    let tls: Vec<String> = url.query_pairs().filter(|(k, _)| k == "tls").map(|(_, v)| v.into_owned()).collect();
    let tls_required = tls == ["required"];
    if tls.len() > 1 {
        return Err(MailError::Setting("give the SMTP URL's tls setting once".into()));
    }
    match url.scheme() {
        "smtps" => Ok(()),
        "smtp" if tls_required || loopback => Ok(()),
        "smtp" => Err(MailError::Setting(
            "a relay on another machine needs TLS: use smtps://host or smtp://host:587?tls=required".into(),
        )),
        other => Err(MailError::Setting(format!("the SMTP URL must be smtp:// or smtps://, not {other}://"))),
    }
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|e| MailError::Setting(format!("the sender address {from:?}: {e}")))
}

impl Mailer {
    /// Mail through an SMTP relay.
    pub fn smtp(url: &str, from: &str, public_url: &str) -> Result<Self, MailError> {
        check_relay_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Setting(format!("the SMTP URL: {e}")))?
            .build();
        Ok(Mailer { transport: Transport::Smtp(transport), from: parse_from(from)?, public_url: public_url.to_owned() })
    }

    /// Mail into a directory, one file per message (created with mode 0700).
    pub fn outbox(dir: PathBuf, from: &str, public_url: &str) -> Result<Self, MailError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Mailer { transport: Transport::Outbox(dir), from: parse_from(from)?, public_url: public_url.to_owned() })
    }

    /// Whether mail goes to the outbox directory (no relay is set up).
    pub fn is_outbox(&self) -> bool {
        matches!(self.transport, Transport::Outbox(_))
    }

    /// Deletes outbox files older than `keep`; returns how many.
    pub fn purge_outbox(&self, keep: std::time::Duration) -> Result<usize, MailError> {
        let Transport::Outbox(dir) = &self.transport else { return Ok(0) };
        let mut n = 0;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let old = entry.metadata()?.modified()?.elapsed().is_ok_and(|age| age > keep);
            if old && entry.path().extension().is_some_and(|e| e == "eml") {
                std::fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes the messages in the outbox addressed to `email` (a purged account's); returns
    /// how many. Nothing to do when mail goes to a relay.
    pub fn forget_recipient(&self, email: &str) -> Result<usize, MailError> {
        let Transport::Outbox(dir) = &self.transport else { return Ok(0) };
        let to = format!("To: {email}");
        let mut n = 0;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "eml")
                && std::fs::read_to_string(&path).is_ok_and(|m| m.lines().any(|l| l.trim_end() == to))
            {
                std::fs::remove_file(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// An absolute link into the app: `path` with the token, if any, in the fragment.
    pub fn link(&self, path: &str, fragment: Option<&str>) -> String {
        let base = self.public_url.trim_end_matches('/');
        match fragment {
            Some(f) => format!("{base}{path}#{f}"),
            None => format!("{base}{path}"),
        }
    }

    /// Sends one message. Every message ends with where the user manages their account.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|e| MailError::Build(format!("recipient: {e}")))?;
        let body = format!(
            "{}\n\n-- \nkluis: manage your account and sign-ins under Account and security: {}\n\
             Which e-mails you get (notification preferences): {}\n",
            mail.body.trim_end(),
            self.link("/", None),
            self.link(PREFERENCES_PATH, None),
        );
        let mut builder =
            Message::builder().from(self.from.clone()).to(to).subject(&mail.subject).header(ContentType::TEXT_PLAIN);
        if let Some(link) = &mail.unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{link}>")))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = builder.body(body).map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
            Transport::Outbox(dir) => {
                let mut id = [0u8; 8];
                getrandom::fill(&mut id).map_err(|_| MailError::Build("random".into()))?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                // Written aside, then renamed: whoever picks files up never sees half a message.
                let name = format!("{}-{}", now.as_millis(), hex::encode(id));
                let part = dir.join(format!("{name}.part"));
                tokio::fs::write(&part, message.formatted()).await?;
                tokio::fs::rename(&part, dir.join(format!("{name}.eml"))).await?;
                Ok(())
            }
        }
    }
}
