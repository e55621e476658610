//! The audit export's two formats: JSON lines (one record per line, as the
//! API shows records) and CSV with a fixed header, for a spreadsheet.

use super::Record;
use crate::clock::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// One record in this format, with its line end.
    pub fn line(self, r: &Record) -> String {
        match self {
            Format::Jsonl => {
                let mut s = r.to_json().to_string();
                s.push('\n');
                s
            }
            Format::Csv => csv_line(r),
        }
    }
}

pub fn csv_header() -> &'static str {
    "seq,at,type,notification_id,user_id,socket_id,level,detail,prev_hash,hash\n"
}

/// A CSV field, quoted when it holds a separator, a quote or a line end.
fn field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

pub fn csv_line(r: &Record) -> String {
    let e = &r.entry;
    let level = e.level.map(|l| l.to_string()).unwrap_or_default();
    let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let fields = [
        r.seq.to_string(),
        rfc3339(e.at),
        e.kind.as_str().to_string(),
        e.notification_id.clone().unwrap_or_default(),
        e.user_id.clone().unwrap_or_default(),
        e.socket_id.clone().unwrap_or_default(),
        level,
        detail,
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, f);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trail::{Chain, Entry, Kind};

    #[test]
    fn csv_quotes_what_needs_it_and_has_as_many_fields_as_the_header() {
        let r = Chain::default().append(
            Entry::new(Kind::WebhookFailed, 0)
                .notification("n")
                .detail(serde_json::json!({"error": "a, \"b\""})),
        );
        let line = csv_line(&r);
        assert!(line.contains(r#""{""error"":""a, \""b\""""}""#), "{line}");
        assert_eq!(csv_header().matches(',').count(), 9);
        assert_eq!(Format::parse("jsonl"), Some(Format::Jsonl));
        assert_eq!(Format::parse("xml"), None);
        let j: serde_json::Value = serde_json::from_str(Format::Jsonl.line(&r).trim()).unwrap();
        assert_eq!(j["type"], "webhook_failed");
    }
}
