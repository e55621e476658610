//! The `herald` command as the audit tests run it: a data directory (or a
//! PostgreSQL database), the secrets a configuration needs, and nothing
//! from the caller's environment that would point it elsewhere; and what
//! it said.

use std::path::Path;
use std::process::{Command, Output};

/// `herald args…` on the data directory `dir`, or on the PostgreSQL
/// database at `url` when given; the caller adds its own settings.
pub fn herald(dir: &Path, url: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .args(args)
        .env("HERALD_DATA_DIR", dir)
        .env("JWT_SECRET", "audit-test-secret-0123456789")
        .env("HERALD_API_KEYS", "audit-test-key-0123456789")
        .env_remove("DATABASE_URL")
        .env_remove("HERALD_CONFIG");
    if let Some(url) = url {
        command.env("DATABASE_URL", url);
    }
    command
}

/// Everything the command printed, stdout then stderr.
pub fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
