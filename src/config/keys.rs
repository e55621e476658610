//! `api_keys` and `admin_keys`: who may call the backend API and the
//! operators' dashboard; without API keys, a development one is generated.

use std::path::Path;

use super::secrets::development_secret;
use super::values::non_empty;
use super::{ConfigError, Secret};

/// The resolved keys.
pub(super) struct Keys {
    pub api: Vec<Secret>,
    pub admin: Vec<Secret>,
    /// True when the API key was generated for development.
    pub development: bool,
}

/// Keys of `setting` (blank entries dropped), each long enough not to be guessed.
fn keys(setting: &str, list: Option<Vec<String>>) -> Result<Vec<Secret>, ConfigError> {
    let keys = non_empty(list.unwrap_or_default());
    if keys.iter().any(|k| k.len() < 16) {
        return Err(ConfigError::invalid(
            setting,
            "each key must be at least 16 characters",
        ));
    }
    Ok(keys.into_iter().map(Secret::new).collect())
}

impl Keys {
    /// `data_dir` keeps the development API key when none is configured.
    pub fn resolve(
        api_keys: Option<Vec<String>>,
        admin_keys: Option<Vec<String>>,
        data_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let configured = keys("HERALD_API_KEYS", api_keys)?;
        let development = configured.is_empty();
        let api = if development {
            vec![development_secret(data_dir, "dev-api-key")?]
        } else {
            configured
        };
        // The dashboard's keys; without any of its own, whoever holds an
        // API key may also watch and act on the dashboard.
        let admin = match keys("HERALD_ADMIN_KEYS", admin_keys)? {
            own if own.is_empty() => api.clone(),
            own => own,
        };
        Ok(Self {
            api,
            admin,
            development,
        })
    }
}
