//! Secrets in configuration: redacted in every `Debug`, and generated into
//! the data directory (mode 0600) when a deployment did not provide them.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use rand::RngCore;

use super::ConfigError;

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads the development secret at `data_dir/name`, creating it (random,
/// mode 0600) when absent.
pub fn development_secret(data_dir: &Path, name: &str) -> Result<Secret, ConfigError> {
    let path = data_dir.join(name);
    let io_err = |source| ConfigError::DataDir {
        path: path.clone(),
        source,
    };
    if let Ok(existing) = fs::read_to_string(&path) {
        let trimmed = existing.trim();
        if !trimmed.is_empty() {
            return Ok(Secret::new(trimmed));
        }
    }
    fs::create_dir_all(data_dir).map_err(io_err)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&path).map_err(io_err)?;
    f.write_all(value.as_bytes()).map_err(io_err)?;
    f.write_all(b"\n").map_err(io_err)?;
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }

    #[test]
    fn development_secret_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = development_secret(dir.path(), "s").unwrap();
        let b = development_secret(dir.path(), "s").unwrap();
        assert_eq!(a, b);
        assert!(a.expose().len() >= 40);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("s"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
