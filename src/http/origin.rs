//! The browser-origin allow-list for the Socket.IO endpoint: a listed
//! `Origin` gets CORS headers with credentials; an unlisted one gets 403 and
//! no session, for polling requests and websocket upgrades alike. Requests
//! without `Origin` (servers, native clients) pass, and so do same-origin
//! requests (an `Origin` naming the request's own `Host`, as
//! python-socketio's websocket library sends) to a host that cannot be a
//! rebound name: an IP address, `localhost`, or one of `http.server_names`. Refusals are logged
//! with the origin and path (never the query, which may carry a token), at
//! most one line every 10 s.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::clock::SharedClock;
use crate::observe::throttle::Throttle;

/// How often a refused origin is logged at most.
const LOG_EVERY_MS: i64 = 10_000;

/// The configured origins.
#[derive(Clone)]
pub struct Origins {
    any: bool,
    list: Vec<String>,
    /// The names this server is reached by (`http.server_names`).
    server_names: Vec<String>,
    /// Where refusals are logged from, when they are.
    log: Option<(SharedClock, std::sync::Arc<Throttle>)>,
}

impl Origins {
    pub fn new(list: &[String]) -> Self {
        Self {
            any: list.iter().any(|o| o == "*"),
            list: list
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            server_names: Vec::new(),
            log: None,
        }
    }

    /// Names under which an `Origin` equal to the request's `Host` is
    /// same-origin (see [`same_origin`]).
    pub fn with_server_names(mut self, names: &[String]) -> Self {
        self.server_names = names.to_vec();
        self
    }

    /// Logs refusals, throttled on `clock`.
    pub fn logging_with(mut self, clock: SharedClock) -> Self {
        self.log = Some((clock, std::sync::Arc::new(Throttle::new(LOG_EVERY_MS))));
        self
    }

    /// Logs a refused origin unless one was logged within the period.
    fn log_refusal(&self, origin: &str, path: &str) {
        let Some((clock, throttle)) = &self.log else {
            return;
        };
        if let Some(unlogged) = throttle.allow(clock.now_ms()) {
            // Bounded: an origin is a short header, but a hostile one need not be.
            let origin: String = origin.chars().take(200).collect();
            tracing::warn!(
                origin,
                path,
                unlogged,
                "refused a Socket.IO request from an origin that is not in cors_origins \
                 (403); list the origin if this is a page of yours"
            );
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.any || self.list.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// CORS headers for listed origins, with credentials.
    pub fn cors_layer(&self) -> CorsLayer {
        let allowed = if self.any {
            AllowOrigin::mirror_request()
        } else {
            AllowOrigin::list(
                self.list
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
    }
}

/// True when `origin` (`scheme://host[:port]`) names the request's own
/// `host` and that host is not a name an attacker can point at Herald: an
/// IP address, `localhost` (browsers resolve it themselves, never through
/// DNS), or one of `server_names`, the names the operator says Herald is
/// reached by. Any other name is not exempt: a DNS-rebinding page at
/// `http://evil.example:8001`, its name pointed at Herald's address, sends
/// exactly `Origin: http://evil.example:8001` with `Host: evil.example:8001`.
pub fn same_origin(origin: &str, host: Option<&str>, server_names: &[String]) -> bool {
    let Some(host) = host else { return false };
    trusted_host(host, server_names)
        && origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// True when `host` (`name[:port]`, as in a `Host` header or an origin's
/// authority) names Herald by a name an attacker cannot point at it: an IP
/// address, `localhost`, or one of `server_names`.
pub fn trusted_host(host: &str, server_names: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let is_ip = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok();
    is_ip
        || name.eq_ignore_ascii_case("localhost")
        || server_names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The `403` for a Socket.IO request from an unlisted origin; `None` lets
/// the request through. Used as the check of a [`crate::http::guard::Guard`] in
/// front of everything else.
pub fn refusal(origins: &Origins, req: &Request) -> Option<Response> {
    if !req.uri().path().starts_with("/socket.io") {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let ok = origin
        .to_str()
        .map(|o| origins.allows(o) || same_origin(o, host, &origins.server_names))
        .unwrap_or(false);
    if ok {
        return None;
    }
    crate::observe::prometheus::origin_refused();
    origins.log_refusal(
        &String::from_utf8_lossy(origin.as_bytes()),
        req.uri().path(),
    );
    Some((StatusCode::FORBIDDEN, "origin not allowed").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_pass() {
        let o = Origins::new(&[
            "http://localhost:5173".into(),
            "https://pacs.example/".into(),
        ]);
        assert!(o.allows("http://localhost:5173"));
        assert!(o.allows("https://pacs.example"));
        assert!(!o.allows("http://localhost:5174"));
        assert!(!o.allows("http://evil.example"));
        assert!(!o.allows("null"));
        assert!(Origins::new(&["*".into()]).allows("http://anything"));
    }

    #[test]
    fn same_origin_means_the_request_host_itself_under_a_trusted_name() {
        let names = ["herald.internal".to_string()];
        let same = |o: &str, h: &str| same_origin(o, Some(h), &names);
        assert!(same("http://127.0.0.1:8001", "127.0.0.1:8001"));
        assert!(same("http://[::1]:8001", "[::1]:8001"));
        assert!(same("http://localhost:8001", "localhost:8001"));
        assert!(same("http://herald.internal:8001", "Herald.Internal:8001"));
        assert!(
            !same("http://evil.example:8001", "evil.example:8001"),
            "other names are not exempt (DNS rebinding)"
        );
        assert!(!same("http://evil.localhost:8001", "evil.localhost:8001"));
        assert!(!same("http://localhost.:8001", "localhost.:8001"));
        assert!(!same("http://127.0.0.1:8002", "127.0.0.1:8001"));
        assert!(!same("http://evil.example", "127.0.0.1:8001"));
        assert!(!same("http://herald.internal:8001", "localhost:8001"));
        assert!(!same_origin("http://127.0.0.1:8001", None, &names));
    }
}
