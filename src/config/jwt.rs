//! `[jwt]`: how a socket's token is verified (secret, algorithm, leeway,
//! audience, issuer); without a secret, a development one is generated.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::secrets::development_secret;
use super::values::duration_or;
use super::{ConfigError, Secret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    pub secret: Option<String>,
    pub algorithm: Option<String>,
    pub leeway: Option<String>,
    pub audience: Option<String>,
    pub issuer: Option<String>,
}

/// The JWT algorithms Herald accepts; the token's own header never picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl JwtAlgorithm {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Some(Self::Hs256),
            "HS384" => Some(Self::Hs384),
            "HS512" => Some(Self::Hs512),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: Secret,
    pub algorithm: JwtAlgorithm,
    pub leeway: Duration,
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// True when the secret was generated for development.
    pub development_secret: bool,
}

impl JwtFile {
    /// `data_dir` keeps the development secret when none is configured.
    pub fn resolve(self, data_dir: &Path) -> Result<JwtConfig, ConfigError> {
        let algorithm = match self.algorithm.as_deref() {
            None => JwtAlgorithm::Hs256,
            Some(a) => JwtAlgorithm::parse(a).ok_or_else(|| {
                ConfigError::invalid(
                    "jwt.algorithm",
                    format!("{a:?} is not one of HS256, HS384, HS512"),
                )
            })?,
        };
        let (secret, development_secret_used) = match self.secret {
            Some(s) if s.len() < 16 => {
                return Err(ConfigError::invalid(
                    "JWT_SECRET",
                    "must be at least 16 characters",
                ))
            }
            Some(s) => (Secret::new(s), false),
            None => (development_secret(data_dir, "dev-jwt-secret")?, true),
        };
        Ok(JwtConfig {
            secret,
            algorithm,
            leeway: duration_or("jwt.leeway", &self.leeway, Duration::ZERO)?,
            audience: self.audience.filter(|s| !s.is_empty()),
            issuer: self.issuer.filter(|s| !s.is_empty()),
            development_secret: development_secret_used,
        })
    }
}
