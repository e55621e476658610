//! The audit export's CSV lines: for any record, a CSV parser reads the
//! line back as exactly its ten cells; outside text (notification, user and
//! socket ids, detail) comes back with a `'` before it when it would start a
//! formula, and dropping that `'` gives the value back; Herald's own numbers
//! stay numbers; and no cell starts with a formula character.
#![no_main]

use herald::clock::rfc3339;
use herald::trail::{csv_line, Entry, Kind, Record};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// What a spreadsheet reads as the start of a formula (OWASP, ASVS NUL,
/// full-width signs): written out here rather than taken from Herald, so
/// the target checks the export against the rule, not against itself.
fn starts_formula(cell: &str) -> bool {
    cell.starts_with([
        '=', '+', '-', '@', '\t', '\r', '\n', '\0', '＝', '＋', '－', '＠',
    ])
}

/// The cell an outside value must become.
fn expected(v: &str) -> String {
    if starts_formula(v) || v.starts_with('\'') {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn hex(u: &mut Unstructured) -> Result<String> {
    let bytes: [u8; 32] = u.arbitrary()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn record(u: &mut Unstructured) -> Result<Record> {
    let mut e = Entry::new(*u.choose(&Kind::ALL)?, u.arbitrary()?);
    e.notification_id = u.arbitrary()?;
    e.user_id = u.arbitrary()?;
    e.socket_id = u.arbitrary()?;
    e.level = u.arbitrary()?;
    let detail: Option<String> = u.arbitrary()?;
    e.detail = detail.and_then(|d| serde_json::from_str(&d).ok());
    Ok(Record {
        seq: u.arbitrary()?,
        entry: e,
        prev_hash: hex(u)?,
        hash: hex(u)?,
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = record(&mut Unstructured::new(data)) else {
        return;
    };
    let line = csv_line(&r);
    assert!(line.ends_with('\n'));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let mut rows = reader.records();
    let cells = rows.next().expect("one row").expect("valid CSV");
    assert!(rows.next().is_none(), "one line is one row: {line:?}");

    let e = &r.entry;
    let outside = |v: &Option<String>| expected(v.as_deref().unwrap_or_default());
    let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let want = [
        r.seq.to_string(),
        rfc3339(e.at),
        e.kind.as_str().to_string(),
        outside(&e.notification_id),
        outside(&e.user_id),
        outside(&e.socket_id),
        e.level.map(|l| l.to_string()).unwrap_or_default(),
        expected(&detail),
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    let got: Vec<&str> = cells.iter().collect();
    assert_eq!(got, want, "{line:?}");

    // Herald's numbers stay numbers (a negative one is not text).
    assert_eq!(got[0].parse::<i64>().ok(), Some(r.seq));
    for (i, cell) in got.iter().enumerate().skip(1) {
        assert!(!starts_formula(cell), "cell {i} starts a formula: {line:?}");
    }
    // Dropping the one leading `'` gives the outside value back exactly.
    let back = |cell: &str| cell.strip_prefix('\'').unwrap_or(cell).to_string();
    assert_eq!(back(got[4]), e.user_id.clone().unwrap_or_default());
    assert_eq!(back(got[3]), e.notification_id.clone().unwrap_or_default());
});
