//! The `herald` command: `serve` (the default), `token`, `check-config`,
//! `backup`, `audit verify`, `audit checkpoint` and `audit public-key`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ed25519_dalek::VerifyingKey;
use herald::auth::Signer;
use herald::clock::{Clock, SystemClock};
use herald::config::{Config, LogFormat};

/// mimalloc, not glibc's malloc: a connection's many small allocations and
/// frees cost about a quarter of the user CPU per connect under glibc
/// (bench/BENCHMARKS.md, "mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option: its number in `mimalloc.h`'s
/// `mi_option_e` (the crate names only some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The environment variable with which an operator sets the purge delay.
const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Freed pages stay committed for a second (mimalloc's default: 10 ms; its
/// arenas wait ten times as long), so a broadcast right after a burst of
/// connects or disconnects reuses them instead of faulting fresh pages in:
/// less CPU per delivery and per connect, same idle RSS
/// (bench/BENCHMARKS.md, "mimalloc"). `MIMALLOC_PURGE_DELAY` still wins.
fn tune_allocator() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: called first thing in `main`, before any other thread exists
    // (`mi_option_set` is not thread-safe); the option takes a number.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) }
}

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Real-time notification and session-monitoring server (Socket.IO)",
    long_about = "Real-time notification and session-monitoring server (Socket.IO).\n\n\
        With no subcommand it runs the server. Settings come from built-in defaults, \
        then herald.toml (or --config), then the environment: JWT_SECRET, HERALD_API_KEYS, \
        HERALD_PORT, HERALD_CORS_ORIGINS, HERALD_LOG and the others in docs/configuration.md. \
        Without JWT_SECRET and HERALD_API_KEYS it generates development credentials in its \
        data directory and says so.",
    after_help = "Examples:\n  \
        herald                                      run the server on port 8001\n  \
        herald token --user u1 --role radiologist   print a JWT for a test client\n  \
        herald check-config                         validate the settings and print them\n  \
        herald audit verify                         check the audit trail's hash chain\n  \
        herald audit verify --checkpoint FILE       ... and that it still reaches each signed checkpoint"
)]
struct Cli {
    /// Configuration file (default: ./herald.toml when present).
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print a JWT signed with the configured (or development) secret.
    ///
    /// A client connects with it as `auth: { token }`. The token carries no
    /// `aud` or `iss`, so it is refused when jwt.audience or jwt.issuer is set.
    Token {
        /// The user the token is for (its `userId` claim).
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        user: String,
        /// The user's role (its `role` claim), e.g. radiologist; per-role
        /// session timeouts and role events use it.
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        role: String,
        /// Session id (its `sessionId` claim; default: a new random one).
        /// Give several tokens the same one for tabs of one session.
        #[arg(long)]
        session: Option<String>,
        /// Lifetime, e.g. 1h, 15m; more than zero.
        #[arg(long, default_value = "1h", value_parser = positive_ttl)]
        ttl: Duration,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Write a consistent copy of the SQLite store while the server runs.
    ///
    /// The copy is one instant of the store (every notification committed
    /// by then, none after), checked before the command answers. To
    /// restore: stop the server and put the copy in the data directory as
    /// herald.db. With DATABASE_URL set, back up PostgreSQL with pg_dump.
    Backup {
        /// The file to write; it must not exist yet.
        file: PathBuf,
    },
    /// Work with the audit trail of the closed loop.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no audit record was changed, removed or inserted.
    ///
    /// Reads the whole chain from the store the server uses (the same
    /// configuration) and checks every record's hash and its link to the
    /// one before. Removing the newest records leaves a shorter chain that
    /// still verifies: with --checkpoint, the chain must also still reach
    /// each signed checkpoint the server handed to its witness. Exit
    /// status: 0 intact, 1 broken (named: the first record changed,
    /// removed, moved or unreadable, the gap before a checkpoint, a
    /// checkpoint whose signature is bad, or one signed by a key neither
    /// configured nor given with --public-key), 2 the store could not be
    /// reached (or the checkpoint file could not be read, or an option is
    /// malformed).
    Verify {
        /// A file of checkpoint lines, as audit.checkpoint_file keeps them
        /// or `herald audit checkpoint` prints them, checked with this
        /// server's key (audit.signing_key) and those of --public-key.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The public key of an earlier audit.signing_key (64 hex digits,
        /// as `herald audit public-key` printed it before the key was
        /// changed), so that its checkpoints verify too; repeatable. The
        /// configured key is always accepted.
        #[arg(long = "public-key", value_name = "KEY", requires = "checkpoint", value_parser = public_key_arg)]
        public_keys: Vec<VerifyingKey>,
    },
    /// Sign a checkpoint of the audit chain's head now, print it and hand
    /// it to the configured witnesses.
    ///
    /// One JSON line: `{ checkpoint: { seq, hash, at }, signature, keyId,
    /// publicKey }`, signed with audit.signing_key. Like the server, it
    /// appends the line to audit.checkpoint_file and POSTs it to
    /// audit.checkpoint_webhook when they are set (the webhook up to 3
    /// attempts). Keep the checkpoints outside the database, and give that
    /// file to `herald audit verify --checkpoint`. Exit status: 0 signed,
    /// printed and kept by every configured witness; 2 the store could not
    /// be reached (nothing signed); 3 signed and printed, but a witness did
    /// not keep it (said why on standard error).
    Checkpoint,
    /// Print the public key of audit.signing_key (64 hex digits).
    ///
    /// The key checkpoints are checked with, as every checkpoint line
    /// carries it (`publicKey`); its key id goes to standard error. Keep it
    /// with the witness's file before changing audit.signing_key: `herald
    /// audit verify --checkpoint FILE --public-key KEY` then still verifies
    /// the checkpoints the earlier key signed.
    PublicKey,
}

/// `--public-key`'s value, the error naming what was expected.
fn public_key_arg(s: &str) -> Result<VerifyingKey, String> {
    herald::trail::checkpoint::parse_public_key(s)
}

/// `herald audit verify`'s exit status when the chain is broken.
const EXIT_BROKEN: i32 = 1;
/// Its exit status when the store cannot be reached (anything it answers
/// that cannot be read is a broken record).
const EXIT_UNREACHABLE: i32 = 2;
/// `herald audit checkpoint`'s exit status when the checkpoint was signed
/// and printed but a configured witness did not keep it: not 1, which
/// says the trail is broken, nor 2, which says nothing was signed.
const EXIT_NOT_WITNESSED: i32 = 3;

/// A token lifetime: a duration longer than zero (a zero one would be
/// expired when printed).
fn positive_ttl(s: &str) -> Result<Duration, String> {
    let ttl: Duration = s
        .parse::<humantime::Duration>()
        .map_err(|e| format!("{s:?} is not a duration such as 15m or 1h ({e})"))?
        .into();
    if ttl.is_zero() {
        return Err("must be longer than 0s: a token with no lifetime is already expired".into());
    }
    Ok(ttl)
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = herald::config::with_packet_crates_held(&config.log_filter);
    let filter = EnvFilter::try_new(&filter).expect("the level was checked with the configuration");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // A line the output refuses (the log's disk is full) is dropped and
    // counted: logging never fails the request that logs.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(herald::observe::log_output::LogOutput);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
    if config.jwt.development_secret {
        tracing::warn!(
            path = %config.data_dir.join("dev-jwt-secret").display(),
            "JWT_SECRET is not set: running with a generated DEVELOPMENT secret. Set JWT_SECRET in production."
        );
    }
    if config.jwt.development_secret && config.host == herald::config::DEVELOPMENT_HOST {
        tracing::warn!(
            host = %config.host,
            "development credentials: listening on this machine only. Set HERALD_HOST (e.g. 0.0.0.0) to be reached from others, and JWT_SECRET before you do."
        );
    }
    if config.development_api_key {
        tracing::warn!(
            path = %config.data_dir.join("dev-api-key").display(),
            "HERALD_API_KEYS is not set: running with a generated DEVELOPMENT API key (read it from this file). Set HERALD_API_KEYS in production."
        );
    }
    if config.audit.development_key {
        tracing::warn!(
            path = %config.data_dir.join(herald::config::audit::DEVELOPMENT_KEY_FILE).display(),
            "audit.signing_key is not set: signing audit checkpoints with a generated DEVELOPMENT key. Set HERALD_AUDIT_SIGNING_KEY in production."
        );
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let running = herald::start(config, shutdown_signal())
        .await
        .context("starting herald")?;
    tracing::info!(addr = %running.addr, scheme, "herald listening");
    running.wait().await.context("serving")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    // Before the configuration: the default connection cap follows it.
    herald::config::open_files::raise_to_hard();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        // `herald audit verify` keeps exit status 1 for a broken trail: a
        // configuration it cannot read means it could not reach the store.
        Err(e) if matches!(cli.command, Some(Command::Audit { .. })) => {
            eprintln!("configuration error: {e}");
            std::process::exit(EXIT_UNREACHABLE)
        }
        Err(e) => anyhow::bail!("configuration error: {e}"),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")?
            .block_on(serve(config)),
        Command::Token {
            user,
            role,
            session,
            ttl,
        } => {
            let session = session.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let token = Signer::new(&config.jwt).sign(
                &user,
                &session,
                &role,
                SystemClock.now_ms(),
                ttl.as_millis() as i64,
            );
            println!("{token}");
            Ok(())
        }
        Command::CheckConfig => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Backup { file } => {
            if config.database_url.is_some() {
                anyhow::bail!("the store is PostgreSQL (DATABASE_URL): back it up with pg_dump");
            }
            let copied = herald::store::backup::sqlite(&config.data_dir, &file)
                .with_context(|| format!("backing up to {}", file.display()))?;
            println!(
                "backed up {} notifications ({} bytes) to {}",
                copied.notifications,
                copied.bytes,
                file.display()
            );
            Ok(())
        }
        Command::Audit { command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?;
            let code = match command {
                AuditCommand::Verify {
                    checkpoint,
                    public_keys,
                } => runtime.block_on(audit_verify(&config, checkpoint.as_deref(), &public_keys)),
                AuditCommand::Checkpoint => runtime.block_on(audit_checkpoint(&config)),
                AuditCommand::PublicKey => audit_public_key(&config),
            };
            std::process::exit(code)
        }
    }
}

/// Opens the configured store to read it, as the audit commands do.
async fn open_inspected(config: &Config) -> Result<Box<dyn herald::store::Store>, String> {
    use herald::store::{PostgresStore, SqliteStore};
    match &config.database_url {
        // Inspecting, not sealing: the unsealed records are reported as
        // the nodes left them.
        Some(url) => match PostgresStore::inspect(url.expose()).await {
            Ok(s) => Ok(Box::new(s)),
            Err(e) => Err(format!("cannot open the store: {e}")),
        },
        None => {
            // Opening creates a store where none is: an empty chain would
            // then "verify" a wrong data directory.
            let db = config.data_dir.join("herald.db");
            if !db.is_file() {
                return Err(format!(
                    "no store at {} (is the data directory right?)",
                    db.display()
                ));
            }
            match SqliteStore::open(&config.data_dir).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e) => Err(format!("cannot open the store: {e}")),
            }
        }
    }
}

/// Opens the configured store and walks its audit chain, then compares it
/// with the checkpoints in `checkpoint` when given, each signed by the
/// configured key or one of `earlier_keys`; answers the exit status.
async fn audit_verify(
    config: &Config,
    checkpoint: Option<&std::path::Path>,
    earlier_keys: &[VerifyingKey],
) -> i32 {
    use herald::trail::WalkError;
    let checkpoints = match checkpoint.map(|f| witnessed::read_file(config, f, earlier_keys)) {
        Some(Err(code)) => return code,
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let store = match open_inspected(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_UNREACHABLE;
        }
    };
    let walked = herald::trail::walk(store.as_ref()).await;
    let witnessed = match (&walked, &checkpoints) {
        (Ok(w), Some(c)) => Some(herald::trail::witnessed::against(store.as_ref(), w, c).await),
        _ => None,
    };
    let unsealed = store.unsealed().await;
    store.close().await;
    match walked {
        Ok(w) => {
            if let Some(code) = witnessed::gap(&witnessed) {
                return code;
            }
            println!(
                "audit trail intact: {} records verified after seq {}",
                w.records, w.anchor.seq
            );
            println!("head: seq {} hash {}", w.head.seq, w.head.hash);
            match unsealed {
                Ok(u) => println!("{}", unsealed_line(&u)),
                Err(e) => eprintln!("cannot count the unsealed records: {e}"),
            }
            witnessed::agreed(&witnessed);
            0
        }
        Err(WalkError::Broken(b)) => {
            eprintln!("audit trail BROKEN at seq {}: {}", b.seq, b.why);
            EXIT_BROKEN
        }
        Err(WalkError::Store(e)) => {
            eprintln!("cannot read the audit trail: {e}");
            EXIT_UNREACHABLE
        }
    }
}

/// Signs a checkpoint of the chain's head as the store holds it, prints it
/// as one JSON line and hands it to the configured witnesses, as the
/// server does; answers the exit status.
async fn audit_checkpoint(config: &Config) -> i32 {
    let store = match open_inspected(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_UNREACHABLE;
        }
    };
    let key = config.audit.signing_key.signing();
    let signed = herald::witness::checkpoint(store.as_ref(), key, SystemClock.now_ms()).await;
    store.close().await;
    match signed {
        Ok(s) => {
            if config.audit.development_key {
                eprintln!(
                    "signed with the DEVELOPMENT key in {}: set HERALD_AUDIT_SIGNING_KEY in production",
                    config
                        .data_dir
                        .join(herald::config::audit::DEVELOPMENT_KEY_FILE)
                        .display()
                );
            }
            println!("{}", s.to_line());
            let not_kept = herald::witness::once::hand(config, &s).await;
            for n in &not_kept {
                eprintln!("{n}");
            }
            if not_kept.is_empty() {
                0
            } else {
                EXIT_NOT_WITNESSED
            }
        }
        Err(e) => {
            eprintln!("cannot read the audit chain's head: {e}");
            EXIT_UNREACHABLE
        }
    }
}

/// Prints the public key checkpoints are checked with; answers the exit
/// status.
fn audit_public_key(config: &Config) -> i32 {
    use herald::trail::checkpoint::{key_id, public_hex};
    let public = config.audit.signing_key.signing().verifying_key();
    if config.audit.development_key {
        eprintln!("the DEVELOPMENT key's: set HERALD_AUDIT_SIGNING_KEY in production");
    }
    eprintln!("key id {}", key_id(&public));
    println!("{}", public_hex(&public));
    0
}

/// What `herald audit verify` says of the records committed but not yet
/// in the chain (it checks only the chain): how many, and how long the
/// oldest has waited, which is long only when no node is sealing.
fn unsealed_line(u: &herald::store::Unsealed) -> String {
    match u.oldest_age_ms {
        Some(age) if u.count > 0 => format!(
            "unsealed: {} records committed and not yet in the chain, the oldest {:.1} s old",
            u.count,
            age as f64 / 1000.0
        ),
        _ => "unsealed: none".to_string(),
    }
}

/// `herald audit verify --checkpoint`: reading the witness's file, and
/// what is said of the trail against it.
mod witnessed {
    use std::path::Path;

    use ed25519_dalek::VerifyingKey;
    use herald::config::Config;
    use herald::store::StoreError;
    use herald::trail::checkpoint::{Signed, Unsigned};
    use herald::trail::witnessed::{read_lines, WitnessError, Witnessed};

    use super::{EXIT_BROKEN, EXIT_UNREACHABLE};

    /// The checkpoints in `file`, each signed by this server's key or one
    /// of `earlier_keys`, or the exit status after saying why not: a line
    /// that is not one is a broken trail's evidence (1), as a line of a
    /// key nobody vouched for may be a forger's; a file that cannot be
    /// read, or holds none, leaves nothing to verify against (2).
    pub fn read_file(
        config: &Config,
        file: &Path,
        earlier_keys: &[VerifyingKey],
    ) -> Result<Vec<Signed>, i32> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            eprintln!("cannot read the checkpoint file {}: {e}", file.display());
            EXIT_UNREACHABLE
        })?;
        let mut keys = vec![config.audit.signing_key.signing().verifying_key()];
        keys.extend_from_slice(earlier_keys);
        let checkpoints = read_lines(&text, &keys).map_err(|e| {
            eprintln!("checkpoint file {} BROKEN: {e}", file.display());
            if matches!(e.why, Unsigned::OtherKey { .. }) {
                eprintln!(
                    "a checkpoint of an earlier audit.signing_key verifies when its public key is given with --public-key (`herald audit public-key` prints a key's)"
                );
            }
            EXIT_BROKEN
        })?;
        if checkpoints.is_empty() {
            eprintln!(
                "the checkpoint file {} holds no checkpoint: nothing to verify against",
                file.display()
            );
            return Err(EXIT_UNREACHABLE);
        }
        Ok(checkpoints)
    }

    /// When the checkpoints disagree with the trail: says where, and
    /// answers the exit status.
    pub fn gap(checked: &Option<Result<Witnessed, WitnessError<StoreError>>>) -> Option<i32> {
        match checked {
            Some(Err(WitnessError::Gap(g))) => {
                eprintln!("audit trail BROKEN against its checkpoints: {g}");
                Some(EXIT_BROKEN)
            }
            Some(Err(WitnessError::Store(e))) => {
                eprintln!("cannot read the audit trail: {e}");
                Some(EXIT_UNREACHABLE)
            }
            _ => None,
        }
    }

    /// Says how many checkpoints the intact trail agreed with.
    pub fn agreed(checked: &Option<Result<Witnessed, WitnessError<StoreError>>>) {
        if let Some(Ok(w)) = checked {
            let newest = w.newest.map_or("none".to_string(), |s| s.to_string());
            println!(
                "checkpoints: {} agree with the trail (the newest at seq {newest}); {} before the anchor, retired by retention",
                w.compared, w.retired
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_lifetime_must_be_a_positive_duration() {
        assert_eq!(positive_ttl("15m"), Ok(Duration::from_secs(900)));
        for bad in ["0s", "0", "soon", ""] {
            assert!(positive_ttl(bad).is_err(), "{bad}");
        }
        assert!(positive_ttl("0s").unwrap_err().contains("already expired"));
    }

    #[test]
    fn every_flag_of_every_command_has_help() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for cmd in std::iter::once(&cli).chain(cli.get_subcommands()) {
            assert!(cmd.get_about().is_some(), "{} has no help", cmd.get_name());
            for arg in cmd.get_arguments() {
                if ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{} --{} has no help",
                    cmd.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn the_option_set_is_the_purge_delay() {
        // Until set, option 15 reads mimalloc's purge-delay default (10 ms;
        // its neighbours default to 1 and 0): the number names that option.
        if std::env::var_os(PURGE_DELAY_ENV).is_some() {
            return; // the operator's value stands; nothing to check here
        }
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 10);
        tune_allocator();
        assert_eq!(get(), 1000);
    }
}
