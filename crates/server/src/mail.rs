//! E-mail to users: security notices and links. One setting decides where mail goes
//! (`--smtp URL`, env `KLUIS_SMTP`, e.g. `smtp://relay.example.org:587?tls=required` or
//! `smtps://user:password@smtp.example.org`): an SMTP relay, spoken to by lettre; without it,
//! each message is written as an RFC 5322 file into the outbox directory (`DATA/outbox`), for
//! a development machine or a relay that picks files up.
//!
//! No message ever holds a client's name, a note or anything from a record: the server has
//! none of them (FORMAT.md §3), and the tests look for canary strings anyway. Links in messages
//! carry their token in the URL's fragment, which browsers never send to the server, so no
//! token reaches a request log; the page they open acts only on a click (a POST).

use std::path::PathBuf;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
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

/// One message to one user, plain text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|e| MailError::Setting(format!("the sender address {from:?}: {e}")))
}

impl Mailer {
    /// Mail through an SMTP relay.
    pub fn smtp(url: &str, from: &str, public_url: &str) -> Result<Self, MailError> {
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
            "{}\n\n-- \nkluis: manage your account and sign-ins under Account and security: {}\n",
            mail.body.trim_end(),
            self.link("/", None)
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())),
            Transport::Outbox(dir) => {
                let mut id = [0u8; 8];
                getrandom::fill(&mut id).map_err(|_| MailError::Build("random".into()))?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let path = dir.join(format!("{}-{}.eml", now.as_millis(), hex::encode(id)));
                tokio::fs::write(path, message.formatted()).await?;
                Ok(())
            }
        }
    }
}
