//! The `herald` command: `serve` (the default), `token` and `check-config`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    about = "Real-time notification and session-monitoring server (Socket.IO)"
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
    Token {
        #[arg(long)]
        user: String,
        #[arg(long)]
        role: String,
        /// Session id (default: a new random one).
        #[arg(long)]
        session: Option<String>,
        /// Lifetime, e.g. 1h, 15m.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let mut filter = config.log_filter.clone();
    // socketioxide's own trace output includes packet contents (tokens):
    // keep it at info unless an operator names it explicitly.
    for noisy in ["socketioxide", "engineioxide"] {
        if !filter.contains(noisy) {
            filter.push_str(&format!(",{noisy}=info"));
        }
    }
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
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
    if config.development_api_key {
        tracing::warn!(
            path = %config.data_dir.join("dev-api-key").display(),
            "HERALD_API_KEYS is not set: running with a generated DEVELOPMENT API key (read it from this file). Set HERALD_API_KEYS in production."
        );
    }
    let running = herald::start(config, shutdown_signal())
        .await
        .context("starting herald")?;
    tracing::info!(addr = %running.addr, "herald listening");
    running.wait().await.context("serving")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())
        .map_err(|e| anyhow::anyhow!("configuration error: {e}"))?;
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
            let ttl: Duration = ttl.into();
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
