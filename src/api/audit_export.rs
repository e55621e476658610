//! `GET /api/v1/audit`: the audit records of a period, as JSON lines or
//! CSV. The answer is streamed a page at a time, so exporting a year holds
//! one page in memory, not the year.

use std::sync::Arc;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde::Deserialize;

use super::error::{ApiError, Params};
use super::period::{Period, PeriodQuery};
use crate::hub::Hub;
use crate::trail::{csv_header, Format, Record};

/// Records read from the store at once.
const PAGE: u32 = 500;

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(flatten)]
    period: PeriodQuery,
    format: Option<String>,
}

/// Where the export has got to.
struct Cursor {
    hub: Arc<Hub>,
    period: Period,
    format: Format,
    /// The last record sent.
    after: i64,
    /// A page already read (the first, read before answering).
    ready: Option<Vec<Record>>,
    /// The last page was short: nothing follows.
    ended: bool,
}

pub async fn export(
    State(hub): State<Arc<Hub>>,
    Params(q): Params<AuditQuery>,
) -> Result<Response, ApiError> {
    let period = q.period.resolve(hub.now())?;
    let format = match q.format.as_deref() {
        None | Some("") => Format::Jsonl,
        Some(f) => Format::parse(f)
            .ok_or_else(|| ApiError::bad_request("invalid_query", "format must be jsonl or csv"))?,
    };
    // The first page is read before the status is sent, so an unavailable
    // store is a 503, not an empty 200.
    let first = hub.audit_page(0, period.from, period.to, PAGE).await?;
    let cursor = Cursor {
        hub,
        period,
        format,
        after: 0,
        ready: Some(first),
        ended: false,
    };
    let header = match format {
        Format::Csv => Some(Ok(Bytes::from_static(csv_header().as_bytes()))),
        Format::Jsonl => None,
    };
    let body = stream::iter(header).chain(stream::unfold(cursor, next_page));
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        HttpBody::from_stream(body),
    )
        .into_response())
}

/// The next page as one chunk of lines. A store that fails part-way ends
/// the answer with an error, so the client sees a broken transfer rather
/// than a complete-looking export missing its end.
async fn next_page(mut c: Cursor) -> Option<(Result<Bytes, std::io::Error>, Cursor)> {
    if c.ended {
        return None;
    }
    let page = match c.ready.take() {
        Some(page) => page,
        None => match c
            .hub
            .audit_page(c.after, c.period.from, c.period.to, PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, after = c.after, "audit export cut short");
                c.ended = true;
                return Some((Err(std::io::Error::other("store unavailable")), c));
            }
        },
    };
    let last = page.last()?.seq;
    c.ended = page.len() < PAGE as usize;
    c.after = last;
    let mut chunk = String::new();
    for r in &page {
        chunk.push_str(&c.format.line(r));
    }
    Some((Ok(Bytes::from(chunk)), c))
}
