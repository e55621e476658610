//! JWT authentication: a token becomes an [`Identity`] or one of the three
//! refusals the contract names. The algorithm and key come from configuration
//! only; `exp` is required and checked against Herald's injectable clock.

mod keyed;

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

use crate::clock::{Millis, SharedClock};
use crate::config::{JwtAlgorithm, JwtConfig};

/// Who a verified token speaks for. Ids are always strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Shared (not copied) by the socket's state, the registry's indexes and
    /// the session clock: one allocation per id per connection.
    pub user_id: Arc<str>,
    pub session_id: Arc<str>,
    pub role: Arc<str>,
    /// Token expiry, Unix milliseconds.
    pub expires_at: Millis,
    /// The `rooms` claim: patterns of the study rooms the user may join
    /// without a backend grant (`"study:*"`, `"*"`). `None` without the
    /// claim (no allocation for the usual token).
    pub rooms: Option<RoomPatterns>,
}

/// A token's room patterns, shared by the identity and the socket.
pub type RoomPatterns = Arc<[Box<str>]>;

/// Most patterns a `rooms` claim may carry.
pub const MAX_ROOM_PATTERNS: usize = 100;

/// Why a connection was refused. [`AuthError::message`] is what the client
/// sees; [`AuthError::reason`] goes to logs and metrics only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Authentication token required")]
    Missing,
    #[error("Invalid authentication token")]
    Invalid(&'static str),
    #[error("Authentication failed")]
    Failed(&'static str),
}

impl AuthError {
    pub fn message(&self) -> String {
        self.to_string()
    }
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Invalid(r) | AuthError::Failed(r) => r,
        }
    }
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Hs384 => Algorithm::HS384,
        JwtAlgorithm::Hs512 => Algorithm::HS512,
    }
}

/// Longest id Herald accepts from a token.
pub const MAX_ID_LEN: usize = 256;

/// The claims Herald reads; any other claim is skipped unread.
#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<Value>,
    nbf: Option<Value>,
    #[serde(rename = "userId")]
    user_id: Option<Value>,
    sub: Option<Value>,
    #[serde(rename = "sessionId")]
    session_id: Option<Value>,
    role: Option<Value>,
    rooms: Option<Value>,
}

/// The `rooms` claim: an array of at most [`MAX_ROOM_PATTERNS`] patterns,
/// each 1 to 129 characters (a room name and a trailing `*`) without a
/// control character. Anything else refuses the token: a backend that
/// means to open rooms must see at once that its claim is not read.
fn rooms_claim(claim: &Option<Value>) -> Result<Option<RoomPatterns>, AuthError> {
    let bad = AuthError::Failed("claims_invalid");
    let items = match claim {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_ROOM_PATTERNS => items,
        Some(_) => return Err(bad),
    };
    let mut patterns = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(p)
                if !p.is_empty() && p.len() <= 129 && !p.chars().any(char::is_control) =>
            {
                patterns.push(Box::from(p.as_str()))
            }
            _ => return Err(bad),
        }
    }
    Ok(Some(patterns.into()))
}

/// A claim as an id string: strings as they are, integers in decimal.
fn id_claim(claim: &Option<Value>) -> Option<String> {
    let s = match claim.as_ref()? {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return None,
    };
    valid_id(&s).then_some(s)
}

/// An id as tokens may carry it (a user's, a session's, a role): 1 to
/// [`MAX_ID_LEN`] bytes with no control character. Client events naming
/// users check their ids with the same rule.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control)
}

fn secs_claim(claim: &Option<Value>) -> Result<Option<i64>, AuthError> {
    match claim {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|f| Some(f.floor() as i64))
            .ok_or(AuthError::Invalid("claims_invalid")),
        Some(_) => Err(AuthError::Invalid("claims_invalid")),
    }
}

/// Verifies tokens with the configured key, algorithm and clock.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    leeway_ms: Millis,
    clock: SharedClock,
}

impl Verifier {
    pub fn new(config: &JwtConfig, clock: SharedClock) -> Self {
        keyed::install();
        let mut validation = Validation::new(algorithm(config.algorithm));
        // Time claims are checked below against Herald's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_string());
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &config.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_string());
        }
        Self {
            key: DecodingKey::from_secret(config.secret.expose().as_bytes()),
            validation,
            leeway_ms: config.leeway.as_millis() as Millis,
            clock,
        }
    }

    /// Verifies `token` and extracts the identity it carries.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
                AuthError::Invalid(match e.kind() {
                    ErrorKind::InvalidSignature => "bad_signature",
                    ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "wrong_algorithm",
                    ErrorKind::MissingRequiredClaim(c) if c == "exp" => "exp_missing",
                    ErrorKind::MissingRequiredClaim(c) if c == "aud" => "wrong_audience",
                    ErrorKind::MissingRequiredClaim(_) => "wrong_issuer",
                    ErrorKind::InvalidAudience => "wrong_audience",
                    ErrorKind::InvalidIssuer => "wrong_issuer",
                    ErrorKind::InvalidClaimFormat(_) => "claims_invalid",
                    _ => "token_malformed",
                })
            })?;
        let claims = data.claims;
        let now = self.clock.now_ms();
        let exp = secs_claim(&claims.exp)?.ok_or(AuthError::Invalid("exp_missing"))?;
        let expires_at = exp.saturating_mul(1000);
        if now >= expires_at.saturating_add(self.leeway_ms) {
            return Err(AuthError::Invalid("token_expired"));
        }
        if let Some(nbf) = secs_claim(&claims.nbf)? {
            if now.saturating_add(self.leeway_ms) < nbf.saturating_mul(1000) {
                return Err(AuthError::Invalid("token_not_yet_valid"));
            }
        }
        let user_id = id_claim(&claims.user_id)
            .or_else(|| id_claim(&claims.sub))
            .ok_or(AuthError::Failed("claims_invalid"))?;
        let session_id = id_claim(&claims.session_id).ok_or(AuthError::Failed("claims_invalid"))?;
        let role = id_claim(&claims.role).ok_or(AuthError::Failed("claims_invalid"))?;
        let rooms = rooms_claim(&claims.rooms)?;
        Ok(Identity {
            user_id: user_id.into(),
            session_id: session_id.into(),
            role: role.into(),
            expires_at: expires_at.saturating_add(self.leeway_ms),
            rooms,
        })
    }
}

/// The claims every token Herald signs carries.
fn claims(user: &str, session: &str, role: &str, now: Millis, ttl_ms: Millis) -> Value {
    serde_json::json!({
        "userId": user,
        "sessionId": session,
        "role": role,
        "iat": now / 1000,
        "exp": (now + ttl_ms) / 1000,
    })
}

/// Signs tokens with the configured key (the `herald token` command, tests).
pub struct Signer {
    key: EncodingKey,
    header: Header,
}

impl Signer {
    pub fn new(config: &JwtConfig) -> Self {
        Self {
            key: EncodingKey::from_secret(config.secret.expose().as_bytes()),
            header: Header::new(algorithm(config.algorithm)),
        }
    }

    /// A token for `user`/`session`/`role`, valid from `now` for `ttl_ms`.
    pub fn sign(
        &self,
        user: &str,
        session: &str,
        role: &str,
        now: Millis,
        ttl_ms: Millis,
    ) -> String {
        self.encode(&claims(user, session, role, now, ttl_ms))
    }

    /// As [`Signer::sign`], with a `rooms` claim: the study rooms the
    /// token opens (patterns such as `"study:*"`).
    pub fn sign_with_rooms(
        &self,
        user: &str,
        session: &str,
        role: &str,
        rooms: &[&str],
        now: Millis,
        ttl_ms: Millis,
    ) -> String {
        let mut claims = claims(user, session, role, now, ttl_ms);
        claims["rooms"] = serde_json::json!(rooms);
        self.encode(&claims)
    }

    fn encode(&self, claims: &Value) -> String {
        // Encoding a JSON object with an HMAC key cannot fail.
        jsonwebtoken::encode(&self.header, claims, &self.key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Secret;
    use std::sync::Arc;
    use std::time::Duration;

    const NOW: Millis = 1_795_600_800_000;

    fn config(alg: JwtAlgorithm) -> JwtConfig {
        JwtConfig {
            secret: Secret::new("test-secret-test-secret"),
            algorithm: alg,
            leeway: Duration::ZERO,
            audience: None,
            issuer: None,
            development_secret: false,
        }
    }

    fn verifier() -> (Verifier, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW));
        (
            Verifier::new(&config(JwtAlgorithm::Hs256), clock.clone()),
            clock,
        )
    }

    fn raw(claims: Value, alg: Algorithm, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn accepts_a_good_token_and_stringifies_numeric_ids() {
        let (v, _) = verifier();
        let t = raw(
            serde_json::json!({"userId": 42, "sessionId": "s1", "role": "radiologist", "exp": NOW / 1000 + 60}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        let id = v.verify(&t).unwrap();
        assert_eq!(&*id.user_id, "42");
        assert_eq!(&*id.session_id, "s1");
        assert_eq!(id.expires_at, NOW + 60_000);
    }

    #[test]
    fn the_rooms_claim_is_read_and_a_malformed_one_refused() {
        let (v, _) = verifier();
        let token = |rooms: Value| {
            raw(
                serde_json::json!({"userId": "u1", "sessionId": "s1", "role": "r",
                    "exp": NOW / 1000 + 60, "rooms": rooms}),
                Algorithm::HS256,
                "test-secret-test-secret",
            )
        };
        let id = v
            .verify(&token(serde_json::json!(["study:*", "board:7"])))
            .unwrap();
        let rooms: Vec<&str> = id.rooms.as_deref().unwrap().iter().map(|p| &**p).collect();
        assert_eq!(rooms, ["study:*", "board:7"]);
        assert_eq!(v.verify(&token(Value::Null)).unwrap().rooms, None);
        let signer = Signer::new(&config(JwtAlgorithm::Hs256));
        let signed = signer.sign_with_rooms("u1", "s1", "r", &["*"], NOW, 60_000);
        let id = v.verify(&signed).unwrap();
        let rooms: Vec<&str> = id.rooms.as_deref().unwrap().iter().map(|p| &**p).collect();
        assert_eq!(rooms, ["*"]);
        let plain = signer.sign("u1", "s1", "r", NOW, 60_000);
        assert_eq!(v.verify(&plain).unwrap().rooms, None);
        let many: Vec<String> = (0..=MAX_ROOM_PATTERNS).map(|i| format!("r{i}")).collect();
        for bad in [
            serde_json::json!("study:*"),
            serde_json::json!([1]),
            serde_json::json!([""]),
            serde_json::json!(["a".repeat(130)]),
            serde_json::json!(many),
        ] {
            assert_eq!(
                v.verify(&token(bad.clone())),
                Err(AuthError::Failed("claims_invalid")),
                "{bad}"
            );
        }
    }

    #[test]
    fn sub_stands_in_for_user_id() {
        let (v, _) = verifier();
        let t = raw(
            serde_json::json!({"sub": "u7", "sessionId": "s1", "role": "r", "exp": NOW / 1000 + 60}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        assert_eq!(&*v.verify(&t).unwrap().user_id, "u7");
    }

    #[test]
    fn expiry_is_checked_against_the_injected_clock_without_leeway() {
        let (v, clock) = verifier();
        let t = Signer::new(&config(JwtAlgorithm::Hs256)).sign("u", "s", "r", NOW, 10_000);
        assert!(v.verify(&t).is_ok());
        clock.advance(9_999);
        assert!(v.verify(&t).is_ok());
        clock.advance(1);
        assert_eq!(v.verify(&t), Err(AuthError::Invalid("token_expired")));
    }

    #[test]
    fn refusals_carry_the_contract_messages() {
        let (v, _) = verifier();
        assert_eq!(
            v.verify("").unwrap_err().message(),
            "Authentication token required"
        );
        assert_eq!(
            v.verify("garbage").unwrap_err().message(),
            "Invalid authentication token"
        );
        let claims = serde_json::json!({"userId": "u", "sessionId": "s", "role": "r", "exp": NOW / 1000 + 60});
        let wrong_key = raw(claims.clone(), Algorithm::HS256, "another-secret-entirely");
        assert_eq!(
            v.verify(&wrong_key),
            Err(AuthError::Invalid("bad_signature"))
        );
        let wrong_alg = raw(claims, Algorithm::HS512, "test-secret-test-secret");
        assert_eq!(
            v.verify(&wrong_alg),
            Err(AuthError::Invalid("wrong_algorithm"))
        );
        let no_exp = raw(
            serde_json::json!({"userId": "u", "sessionId": "s", "role": "r"}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        assert_eq!(
            v.verify(&no_exp).unwrap_err().message(),
            "Invalid authentication token"
        );
        let no_session = raw(
            serde_json::json!({"userId": "u", "role": "r", "exp": NOW / 1000 + 60}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        assert_eq!(
            v.verify(&no_session).unwrap_err().message(),
            "Authentication failed"
        );
        let future = raw(
            serde_json::json!({"userId": "u", "sessionId": "s", "role": "r", "exp": NOW / 1000 + 60, "nbf": NOW / 1000 + 30}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        assert_eq!(
            v.verify(&future),
            Err(AuthError::Invalid("token_not_yet_valid"))
        );
    }

    #[test]
    fn claims_of_the_wrong_type_are_refused_and_others_ignored() {
        let (v, _) = verifier();
        let token = |claims| raw(claims, Algorithm::HS256, "test-secret-test-secret");
        let exp = NOW / 1000 + 60;
        let cases = [
            (
                serde_json::json!({"userId": {"id": 1}, "sessionId": "s", "role": "r", "exp": exp}),
                Err(AuthError::Failed("claims_invalid")),
            ),
            (
                serde_json::json!({"userId": "u", "sessionId": 1.5, "role": "r", "exp": exp}),
                Err(AuthError::Failed("claims_invalid")),
            ),
            (
                serde_json::json!({"userId": "u", "sessionId": "s", "role": null, "exp": exp}),
                Err(AuthError::Failed("claims_invalid")),
            ),
            (
                serde_json::json!({"userId": "u", "sessionId": "s", "role": "r", "exp": exp, "nbf": "soon"}),
                Err(AuthError::Invalid("claims_invalid")),
            ),
            (
                // A userId of the wrong type does not hide a good `sub`.
                serde_json::json!({"userId": [], "sub": 7, "sessionId": "s", "role": "r", "exp": exp, "nbf": null, "extra": {"a": [1]}}),
                Ok("7".to_string()),
            ),
        ];
        for (claims, expected) in cases {
            let got = v
                .verify(&token(claims.clone()))
                .map(|i| i.user_id.to_string());
            assert_eq!(got, expected, "{claims}");
        }
    }

    #[test]
    fn alg_none_is_never_accepted() {
        let (v, _) = verifier();
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = format!(
            r#"{{"userId":"u","sessionId":"s","role":"r","exp":{}}}"#,
            NOW / 1000 + 60
        );
        let t = format!("{}.{}.", enc(r#"{"alg":"none","typ":"JWT"}"#), enc(&body));
        assert_eq!(
            v.verify(&t).unwrap_err().message(),
            "Invalid authentication token"
        );
    }

    #[test]
    fn audience_and_issuer_are_checked_only_when_configured() {
        let clock = Arc::new(ManualClock::new(NOW));
        let mut c = config(JwtAlgorithm::Hs256);
        let claims = serde_json::json!({"userId": "u", "sessionId": "s", "role": "r", "exp": NOW / 1000 + 60, "aud": "other", "iss": "x"});
        let t = raw(claims, Algorithm::HS256, "test-secret-test-secret");
        assert!(Verifier::new(&c, clock.clone()).verify(&t).is_ok());
        c.audience = Some("pacs".into());
        assert_eq!(
            Verifier::new(&c, clock.clone()).verify(&t),
            Err(AuthError::Invalid("wrong_audience"))
        );
        let bare = raw(
            serde_json::json!({"userId": "u", "sessionId": "s", "role": "r", "exp": NOW / 1000 + 60}),
            Algorithm::HS256,
            "test-secret-test-secret",
        );
        assert_eq!(
            Verifier::new(&c, clock.clone()).verify(&bare),
            Err(AuthError::Invalid("wrong_audience")),
            "a configured audience is required"
        );
        c.audience = None;
        c.issuer = Some("herald".into());
        assert_eq!(
            Verifier::new(&c, clock.clone()).verify(&t),
            Err(AuthError::Invalid("wrong_issuer"))
        );
        assert_eq!(
            Verifier::new(&c, clock).verify(&bare),
            Err(AuthError::Invalid("wrong_issuer")),
            "a configured issuer is required"
        );
    }
}
