//! The pages' embedded files, each served with its type and with headers
//! that keep the page to Herald's own origin: scripts and styles only from
//! Herald (no inline code, no CDN), never framed by another site (a framed
//! dashboard could trick an operator into a click), and no referrer.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Clone, Copy)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

pub const ADMIN_HTML: Asset = html(include_bytes!("../../web/admin/index.html"));
pub const ADMIN_JS: Asset = script(include_bytes!("../../web/admin/admin.js"));
pub const STYLE: Asset = Asset {
    body: include_bytes!("../../web/herald.css"),
    content_type: "text/css; charset=utf-8",
};
pub const TRY_HTML: Asset = html(include_bytes!("../../web/try/index.html"));
pub const TRY_JS: Asset = script(include_bytes!("../../web/try/try.js"));
pub const TRY_CALL_JS: Asset = script(include_bytes!("../../web/try/call.js"));
/// The official socket.io-client browser build (see `web/vendor/README.md`).
pub const SOCKET_IO: Asset = script(include_bytes!("../../web/vendor/socket.io.min.js"));

const fn html(body: &'static [u8]) -> Asset {
    Asset {
        body,
        content_type: "text/html; charset=utf-8",
    }
}

const fn script(body: &'static [u8]) -> Asset {
    Asset {
        body,
        content_type: "text/javascript; charset=utf-8",
    }
}

/// The headers every page answer carries.
pub fn page_headers() -> [(HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

impl IntoResponse for Asset {
    fn into_response(self) -> Response {
        let mut res = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response();
        res.headers_mut().extend(page_headers());
        res
    }
}
