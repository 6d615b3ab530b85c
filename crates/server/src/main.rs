//! `kluis-server serve`: HTTPS on 127.0.0.1:8443 by default, the record stores in `./kluis-data`.
//!
//! Accounts, sign-in and the record-store API arrive in the next steps of the server issue; this
//! binary already serves HTTPS with the security headers, opens both stores, and shuts down
//! gracefully with a final flush.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::BTreeSet;

use kluis_server::accounts::model::Role;
use kluis_server::accounts::{Accounts, Enrollment};
use kluis_server::admin::{self, Done, OperatorCommand};
use kluis_server::clock::Clock;
use kluis_server::config::{AuditCommand, PracticeCommand, SupportCommand, UserCommand};
use kluis_server::config::{Cli, Command, Serve};
use kluis_server::http::{AppState, app, redirect_app};
use kluis_server::store::Store;

/// The practice and admin a first run creates.
const FIRST_PRACTICE: &str = "My practice";
/// The first admin's username.
const FIRST_ADMIN: &str = "admin";

/// On an empty data directory, creates the first practice and its admin; on a later start
/// whose admin never enrolled, a fresh code (the old one was shown once and is not kept).
fn first_run_enrollment(accounts: &Accounts) -> Result<Option<(Enrollment, bool)>> {
    if accounts.is_empty() {
        return Ok(Some((accounts.add_practice(FIRST_PRACTICE, FIRST_ADMIN)?, true)));
    }
    match accounts.pending_first_admin()? {
        Some(admin) => Ok(Some((accounts.reissue(&admin.username)?, false))),
        None => Ok(None),
    }
}
use kluis_server::tls;

/// How often expired sessions are deleted.
const SESSION_PURGE_EVERY: Duration = Duration::from_secs(15 * 60);

/// How long notices under way may take to leave before the process ends.
const MAIL_GRACE: Duration = Duration::from_secs(10);

/// How long in-flight requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
}

async fn serve(opts: Serve) -> Result<()> {
    create_data_dir(&opts.data)?;
    let notes = Store::open(&opts.notes_dir()).context("opening the notes store")?;
    let identities = Store::open(&opts.identities_dir()).context("opening the identities store")?;
    let server_key = kluis_server::server_key::ServerKey::load_or_create(&opts.server_key_file())?;
    let mailer = match &opts.smtp {
        Some(url) => kluis_server::mail::Mailer::smtp(url, &opts.mail_from, &opts.public_url())?,
        None => kluis_server::mail::Mailer::outbox(opts.data.join("outbox"), &opts.mail_from, &opts.public_url())?,
    };
    let outbox = mailer.is_outbox();
    let mut accounts = Accounts::open(&opts.accounts_dir(), Clock::System)
        .context("opening the accounts store")?
        .with_server_key(server_key)
        .with_mailer(mailer);
    if let Some(url) = &opts.sms_gateway {
        let token = std::env::var("KLUIS_SMS_TOKEN").ok();
        accounts = accounts.with_sms(kluis_server::sms::SmsGateway::new(url, token)?);
    }
    let first_run = first_run_enrollment(&accounts)?;
    let signer = kluis_server::backup::Signer::load_or_create(&opts.data.join(kluis_server::backup::SIGNING_KEY_FILE))?;
    let schedule = match &opts.backup_dir {
        Some(dir) => Some(kluis_server::backup::schedule::Schedule {
            dir: dir.clone(),
            every: kluis_server::backup::schedule::parse_every(&opts.backup_every)?,
            keep: opts.backup_keep.max(1),
            recipients: kluis_server::backup::parse_recipients(&opts.backup_recipients)?,
        }),
        None => None,
    };
    let socket = admin::socket_path(&opts.data);
    let admin_listener =
        admin::bind_socket(&socket).await.with_context(|| format!("the admin socket {}", socket.display()))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (config, dev) = match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => (axum_server::tls_rustls::RustlsConfig::from_pem_file(c, k).await?, None),
        _ => {
            let (cert, key, made) = tls::dev_certificate(&opts.data)?;
            (axum_server::tls_rustls::RustlsConfig::from_pem(cert, key).await?, Some(made))
        }
    };
    let handle = axum_server::Handle::new();
    let listener = std::net::TcpListener::bind(opts.listen).with_context(|| format!("listening on {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let web_dir = opts.web_dir();
    let web = kluis_server::web::WebApp::load(&web_dir)
        .with_context(|| format!("loading the browser app from {}", web_dir.display()))?;
    let web_note = match &web {
        Some(w) => format!("browser app: {} files from {}", w.len(), web_dir.display()),
        None => format!(
            "browser app: not built (no {}; run bash scripts/build-web.sh)",
            web_dir.join("index.html").display()
        ),
    };
    let app = app(AppState {
        accounts: accounts.clone(),
        notes: notes.clone(),
        identities: identities.clone(),
        web: web.map(std::sync::Arc::new),
    });
    let server = axum_server::from_tcp_rustls(listener, config)
        .handle(handle.clone())
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>());
    let redirect = if opts.http_listen == "off" {
        None
    } else {
        let plain: std::net::SocketAddr = opts.http_listen.parse().context("--http-listen must be ADDR:PORT or off")?;
        // The redirect is a convenience: a busy port is a warning, not a reason not to serve.
        match std::net::TcpListener::bind(plain) {
            Ok(l) => {
                l.set_nonblocking(true)?;
                let plain = l.local_addr()?;
                let srv = axum_server::from_tcp(l)
                    .handle(handle.clone())
                    .serve(redirect_app(addr.port()).into_make_service());
                Some((plain, srv))
            }
            Err(e) => {
                eprintln!("warning: cannot listen on {plain} for the HTTP redirect ({e}); serving HTTPS only");
                None
            }
        }
    };
    let host = if addr.ip().is_loopback() { "localhost".to_owned() } else { addr.ip().to_string() };
    eprintln!("kluis is running: https://{host}:{}/  (health: https://{host}:{}/api/health)", addr.port(), addr.port());
    eprintln!("  data: {}   identities: {}", opts.notes_dir().display(), opts.identities_dir().display());
    match &schedule {
        Some(s) => eprintln!(
            "  backups: every {} into {} (the newest {} kept), encrypted to {} age recipient(s)",
            humantime_text(s.every),
            s.dir.display(),
            s.keep,
            s.recipients.len()
        ),
        None => eprintln!("  backups: none scheduled (--backup-dir DIR --backup-recipient age1…)"),
    }
    eprintln!("  backup signing key: {}   (note it down: `restore` asks for it)", signer.public_text());
    eprintln!("  {web_note}");
    if let Some((plain, _)) = &redirect {
        eprintln!("  plain HTTP on {plain} only redirects to HTTPS");
    }
    if outbox {
        eprintln!();
        eprintln!("  !! MAIL IS NOT SENT: no SMTP relay is set up, so every message (the codes that confirm a new");
        eprintln!(
            "  !! browser, sign-in notices, password reset links) is written to {} instead.",
            opts.data.join("outbox").display()
        );
        eprintln!("  !! Give a relay with --smtp URL (env KLUIS_SMTP) before anyone but you uses this server.");
        eprintln!();
    }
    if let Some(made) = dev {
        let (cert, _) = tls::dev_paths(&opts.data);
        eprintln!(
            "  TLS: a development certificate{} at {} (your browser will warn until you trust it;",
            if made { " was made" } else { "" },
            cert.display()
        );
        eprintln!("  use --tls-cert/--tls-key for a real one).");
    }
    if let Some((e, created)) = &first_run {
        let practice = e.practice.as_deref().unwrap_or("");
        eprintln!();
        if *created {
            eprintln!("  First run: practice \"{practice}\" was created. Enroll its admin:");
        } else {
            eprintln!("  The admin of \"{practice}\" has not enrolled yet. A new code (earlier ones no longer work):");
        }
        eprintln!("    username:        {}", e.username);
        eprintln!("    enrollment code: {}   (works once, for 72 hours)", e.code);
        eprintln!("  Open https://{host}:{}/ , choose \"I have an enrollment code\", and type the code.", addr.port());
        eprintln!();
    }
    eprintln!("  Stop with Ctrl-C.");
    let ctx = admin::Context {
        accounts: accounts.clone(),
        notes: notes.clone(),
        identities: identities.clone(),
        keys: opts.key_files(),
    };
    if let Some(s) = schedule {
        tokio::spawn(kluis_server::backup::schedule::run(s, ctx.clone()));
    }
    tokio::spawn({
        let (socket, ctx) = (socket.clone(), ctx.clone());
        async move {
            if let Err(e) = admin::serve_socket(admin_listener, socket, ctx).await {
                eprintln!("warning: the admin socket failed ({e}); operator commands need the server stopped");
            }
        }
    });
    tokio::spawn({
        let accounts = accounts.clone();
        async move {
            let mut every = tokio::time::interval(SESSION_PURGE_EVERY);
            loop {
                every.tick().await;
                let a = accounts.clone();
                let writing = accounts.write_pause().writing().await;
                match tokio::task::spawn_blocking(move || {
                    let _writing = writing;
                    if let Some(m) = a.mailer() {
                        match m.purge_outbox(kluis_server::mail::OUTBOX_KEEP) {
                            Ok(n) if n > 0 => tracing::info!(messages = n, "old outbox messages deleted"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "purging the outbox failed"),
                        }
                    }
                    Ok::<_, kluis_server::accounts::AccountError>(
                        a.purge_expired()?
                            + a.purge_not_me()?
                            + a.purge_resets()?
                            + a.purge_unsubscribes()?
                            + a.purge_support()?
                            + a.purge_writes()?,
                    )
                })
                .await
                {
                    Ok(Ok(n)) if n > 0 => tracing::info!(sessions = n, "expired sessions deleted"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "purging expired sessions failed"),
                    _ => {}
                }
            }
        }
    });
    tokio::spawn({
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            eprintln!("kluis: shutting down…");
            handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        }
    });
    match redirect {
        Some((_, plain)) => {
            let (a, b) = tokio::join!(server, plain);
            a?;
            b?;
        }
        None => server.await?,
    }
    notes.flush().await?;
    identities.flush().await?;
    accounts.flush().await?;
    accounts.mail_sent(MAIL_GRACE).await;
    let _ = std::fs::remove_file(&socket);
    eprintln!("kluis: stopped; everything is on disk.");
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Creates the data directory, private to its owner (mode 0700 on Unix).
fn create_data_dir(data: &std::path::Path) -> Result<()> {
    if data.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(data).with_context(|| format!("creating {}", data.display()))
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kluis_server=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    let (data, cmd) = match cli.command {
        Command::Serve(opts) => return runtime.block_on(serve(*opts)),
        Command::Init { data, practice, admin } => {
            let e = runtime.block_on(operator(&data.data, &OperatorCommand::Init { practice, admin }))?;
            if let Done::Enrollment(e) = e {
                print_enrollment(&e);
            }
            let signer =
                kluis_server::backup::Signer::load_or_create(&data.data.join(kluis_server::backup::SIGNING_KEY_FILE))?;
            println!("backup signing key: {}", signer.public_text());
            println!("  (write it down with the practice's records: `kluis-server restore` checks backups against it)");
            return Ok(());
        }
        Command::Backup { out, recipients, server_key, data } => {
            let out = std::path::absolute(&out).context("--out")?;
            let cmd = OperatorCommand::Backup { out, recipients };
            if let Done::Message(m) = runtime.block_on(operator_with(&data.data, &cmd, None, server_key))? {
                println!("{m}");
            }
            return Ok(());
        }
        Command::Restore { from, identity, signing_key, data } => {
            let identities = kluis_server::backup::restore::read_identities(&identity)?;
            let key = kluis_server::backup::signer::parse_public_key(&signing_key)?;
            let s = kluis_server::backup::restore::restore(&from, &identities, &key, &data.data, Clock::System)?;
            println!(
                "restored backup {} (taken {}) into {}: {} entries; {} audit chains now end with a `restored` entry",
                s.id,
                rfc3339(s.created_ms),
                s.data.display(),
                s.pairs,
                s.chains
            );
            println!("start the server on it: kluis-server serve --data {}", s.data.display());
            return Ok(());
        }
        Command::BackupIdentity { out } => {
            let recipient = write_backup_identity(&out)?;
            println!("{recipient}");
            eprintln!(
                "the identity (secret) is in {}; keep it off this server. Give the line above to --backup-recipient.",
                out.display()
            );
            return Ok(());
        }
        Command::Practice(PracticeCommand::Add { name, admin, data }) => {
            (data, OperatorCommand::PracticeAdd { name, admin })
        }
        Command::User(UserCommand::Invite { username, practice, roles, data }) => {
            let roles = roles
                .iter()
                .map(|r| Role::parse(r).filter(|r| *r != Role::Support))
                .collect::<Option<BTreeSet<Role>>>()
                .context("a role is practitioner or admin (support staff are added with `support add`)")?;
            (data, OperatorCommand::UserInvite { username, practice, roles })
        }
        Command::User(UserCommand::Code { username, data }) => (data, OperatorCommand::UserCode { username }),
        Command::User(UserCommand::Purge { username, confirm, data }) => {
            anyhow::ensure!(
                confirm.trim() == username.trim(),
                "--confirm must repeat the username exactly: a purge cannot be undone"
            );
            // With the server stopped, its outbox's mail to the account goes too.
            let outbox = kluis_server::mail::Mailer::outbox(
                data.data.join("outbox"),
                "kluis <kluis@localhost>",
                "https://localhost/",
            )?;
            let cmd = OperatorCommand::UserPurge { username };
            if let Done::Message(m) = runtime.block_on(operator_with(&data.data, &cmd, Some(outbox), None))? {
                println!("{m}");
            }
            return Ok(());
        }
        Command::User(UserCommand::Transfer { username, to, data }) => {
            (data, OperatorCommand::UserTransfer { username, to })
        }
        Command::User(UserCommand::Unlock { username, data }) => (data, OperatorCommand::UserUnlock { username }),
        Command::User(UserCommand::ResetSecondFactor { username, verified_by, evidence, data, mail }) => {
            let evidence = kluis_server::accounts::model::Evidence::parse(&evidence)
                .context("--evidence is in-person, video-call, phone-callback or other")?;
            return runtime.block_on(async {
                let cmd = OperatorCommand::UserResetSecondFactor { username, verified_by, evidence };
                let mailer = match &mail.smtp {
                    Some(url) => kluis_server::mail::Mailer::smtp(url, &mail.mail_from, &mail.public_url)?,
                    None => {
                        kluis_server::mail::Mailer::outbox(data.data.join("outbox"), &mail.mail_from, &mail.public_url)?
                    }
                };
                if let Done::Message(m) = operator_with(&data.data, &cmd, Some(mailer), None).await? {
                    println!("{m}");
                }
                Ok(())
            });
        }
        Command::Support(SupportCommand::Add { username, data }) => (data, OperatorCommand::SupportAdd { username }),
        Command::Audit(AuditCommand::Verify { practice, expect_head, data }) => {
            (data, OperatorCommand::AuditVerify { practice, expect: expect_head })
        }
        Command::Audit(AuditCommand::Export { practice, out, data }) => {
            let out = std::path::absolute(&out).context("--out")?;
            (data, OperatorCommand::AuditExport { practice, out })
        }
        Command::Export { username, out, data } => {
            let out = std::path::absolute(&out).context("--out")?;
            (data, OperatorCommand::Export { username, out })
        }
    };
    match runtime.block_on(operator(&data.data, &cmd))? {
        Done::Enrollment(e) => print_enrollment(&e),
        Done::Message(m) => println!("{m}"),
    }
    Ok(())
}

/// Runs an operator command: through the running server's admin socket, or on the store.
async fn operator(data: &std::path::Path, cmd: &OperatorCommand) -> Result<Done> {
    operator_with(data, cmd, None, None).await
}

/// As [`operator`], with a mailer for the notices of a command run on the store.
async fn operator_with(
    data: &std::path::Path,
    cmd: &OperatorCommand,
    mailer: Option<kluis_server::mail::Mailer>,
    server_key: Option<std::path::PathBuf>,
) -> Result<Done> {
    if let Some(e) = admin::send(data, cmd).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        return Ok(e);
    }
    if !matches!(cmd, OperatorCommand::Init { .. }) && !data.join("accounts").exists() {
        anyhow::bail!("{} holds no kluis data yet: run `kluis-server init` (or `serve`) first", data.display());
    }
    create_data_dir(data)?;
    let mut accounts = Accounts::open(&data.join("accounts"), Clock::System).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the accounts store in {} ({e}); if a server runs on it, its admin socket did not answer",
            data.display()
        )
    })?;
    if let Some(m) = mailer {
        accounts = accounts.with_mailer(m);
    }
    let open = |dir: &str| Store::open(&data.join(dir)).with_context(|| format!("opening the {dir} store"));
    let keys = kluis_server::backup::snapshot::KeyFiles {
        server_key: server_key.unwrap_or_else(|| data.join("server.key")),
        signing_key: data.join(kluis_server::backup::SIGNING_KEY_FILE),
    };
    let ctx =
        admin::Context { accounts: accounts.clone(), notes: open("notes")?, identities: open("identities")?, keys };
    let e = admin::execute(&ctx, cmd).await?;
    ctx.notes.flush().await?;
    ctx.identities.flush().await?;
    accounts.flush().await?;
    accounts.mail_sent(MAIL_GRACE).await;
    Ok(e)
}

/// A time as RFC 3339 (UTC).
fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// A duration as the operator typed it (`1h`, `30m`).
fn humantime_text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Writes a new age X25519 identity to `out` (a new file, mode 0600, in age-keygen's layout)
/// and returns its recipient.
fn write_backup_identity(out: &std::path::Path) -> Result<String> {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = zeroize::Zeroizing::new(format!(
        "# kluis backup identity, created {}\n# public key: {recipient}\n{}\n",
        rfc3339(u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0) * 1000),
        identity.to_string().expose_secret()
    ));
    admin::write_new_file(out, text.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(recipient)
}

fn print_enrollment(e: &Enrollment) {
    let expires = rfc3339(e.expires_ms);
    let roles: Vec<&str> = e
        .roles
        .iter()
        .map(|r| match r {
            Role::Practitioner => "practitioner",
            Role::Admin => "admin",
            Role::Support => "support",
        })
        .collect();
    println!("username:        {}", e.username);
    if let Some(p) = &e.practice {
        println!("practice:        {p}");
    }
    println!("roles:           {}", roles.join(", "));
    println!("enrollment code: {}", e.code);
    println!("expires:         {expires} (the code works once)");
}
