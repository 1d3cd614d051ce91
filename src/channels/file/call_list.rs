//! The call list: what a file channel of medium `call` writes, one CSV per campaign
//! (`<outbox>/<channel>/<campaign>.csv`) for the team to work through. One call per line
//! (line breaks inside a field become spaces), so a crash's torn tail is cut like the
//! JSONL outbox's, and the key in the last column lets reconciliation find a call.

use std::collections::HashSet;
use std::path::Path;

use crate::message::Message;

/// The columns, in order: the six the team reads, then where the call comes from and its
/// idempotency key.
pub const COLUMNS: [&str; 11] = [
    "customer",
    "phone",
    "owner",
    "reason",
    "evidence",
    "suggested_remedy",
    "campaign",
    "step",
    "entry_date",
    "as_of",
    "key",
];

/// The header line.
pub fn header() -> Vec<u8> {
    let mut out = COLUMNS.join(",").into_bytes();
    out.push(b'\n');
    out
}

/// One call as one CSV line (RFC 4180 quoting, ending in `\n`).
pub fn line(m: &Message) -> Vec<u8> {
    let step = m.step.to_string();
    let entry = m.entry_date.to_string();
    let as_of = m.as_of.to_string();
    let fields: [(&str, bool); 11] = [
        (&m.customer_id, true),
        (&m.to, false),
        (m.owner.as_deref().unwrap_or(""), true),
        (m.subject.as_deref().unwrap_or(""), true),
        (m.evidence.as_deref().unwrap_or(""), true),
        (&m.text, true),
        (&m.campaign, true),
        (&step, false),
        (&entry, false),
        (&as_of, false),
        (&m.idempotency_key, false),
    ];
    let cells: Vec<String> = fields.iter().map(|(v, text)| cell(v, *text)).collect();
    let mut out = cells.join(",").into_bytes();
    out.push(b'\n');
    out
}

/// One field: line breaks flattened, quoted when it holds a comma or a quote, and a
/// free-text field that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`)
/// prefixed with `'`.
fn cell(value: &str, text: bool) -> String {
    let flat: String = value
        .trim()
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let safe = if text && flat.starts_with(['=', '+', '-', '@']) {
        format!("'{flat}")
    } else {
        flat
    };
    if safe.contains([',', '"']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// The keys (last column) of the complete lines of a call list (none without a file).
pub fn keys(path: &Path) -> std::io::Result<HashSet<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    // A torn tail (no newline yet) is not a line.
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    Ok(complete
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit(',').next())
        .map(str::to_string)
        .collect())
}
