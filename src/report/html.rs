//! Small HTML helpers: escaping, number formatting for people, tables and the style sheet.
//!
//! Everything that reaches the page as text goes through `esc`, so names from the data
//! (segments, campaigns, file paths) can never break the markup.

use std::fmt::Write;

/// Escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Locations such as s3:// or https:// are shown, never linked; encoding these
            // keeps the page free of anything that reads like a URL.
            ':' => out.push_str("&#58;"),
            '/' => out.push_str("&#47;"),
            c => out.push(c),
        }
    }
    out
}

/// Inserts thousands separators into a string of digits.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 1234567 -> "1,234,567".
pub fn int(n: u64) -> String {
    group(&n.to_string())
}

/// A number with `dp` decimals and thousands separators; "–" when not finite.
pub fn num(x: f64, dp: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = format!("{:.*}", dp, x.abs());
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    let sign = if x < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{}", group(whole))
    } else {
        format!("{sign}{}.{frac}", group(whole))
    }
}

/// Money with two decimals: 1234.5 -> "1,234.50".
pub fn money(x: f64) -> String {
    num(x, 2)
}

/// Short money for axis labels: 1200 -> "1.2k", 3400000 -> "3.4M".
pub fn short(x: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = x.abs();
    if !x.is_finite() {
        "–".into()
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", x / 1e6)))
    } else if a >= 1e3 {
        format!("{}k", trim(format!("{:.1}", x / 1e3)))
    } else if a >= 10.0 {
        format!("{x:.0}")
    } else {
        trim(format!("{x:.2}"))
    }
}

/// A fraction as a percentage: 0.256 -> "25.6%".
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{}%", num(x * 100.0, 1))
    } else {
        "–".into()
    }
}

/// A difference of fractions in percentage points, signed: 0.031 -> "+3.1 pp".
pub fn pp(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = num(x * 100.0, 1);
    if x > 0.0 && s != "0.0" {
        format!("+{s} pp")
    } else {
        format!("{s} pp")
    }
}

/// A table cell: text (escaped) and whether it is numeric (right aligned).
pub enum Cell {
    Text(String),
    Num(String),
}

/// A table with a caption; rows whose flag is true get the `highlight` class.
pub fn table(caption: &str, head: &[&str], rows: &[(bool, Vec<Cell>)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<div class=\"table\"><table>\n<caption>{}</caption>\n<thead><tr>",
        esc(caption)
    );
    for h in head {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(h));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for (hl, cells) in rows {
        s.push_str(if *hl {
            "<tr class=\"highlight\">"
        } else {
            "<tr>"
        });
        for c in cells {
            match c {
                Cell::Text(t) => {
                    let _ = write!(s, "<td>{}</td>", esc(t));
                }
                Cell::Num(t) => {
                    let _ = write!(s, "<td class=\"num\">{}</td>", esc(t));
                }
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

/// Shorthands for cells.
pub fn t(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}
pub fn n(s: impl Into<String>) -> Cell {
    Cell::Num(s.into())
}

/// A plain-words note under a chart; `html` must already be escaped.
pub fn note(html: &str) -> String {
    format!("<p class=\"note\">{html}</p>\n")
}

/// The message a section shows instead of a chart when it has no data.
pub fn empty(reason: &str) -> String {
    format!("<p class=\"empty\">{}</p>\n", esc(reason))
}

/// The style sheet: system fonts only, no external resource, readable on paper.
pub const CSS: &str = r#"
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #d9dee5; --bg: #ffffff; --soft: #f4f6f9;
  --accent: #0072b2; --warn: #d55e00; --hl: #fff1e6; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px 28px 64px; color: var(--ink);
  background: var(--bg); line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header h1 { margin: 0 0 4px; font-size: 1.7rem; }
header p { margin: 0; color: var(--muted); }
nav.toc { margin: 18px 0 8px; padding: 10px 14px; background: var(--soft); border-radius: 6px; }
nav.toc ol { margin: 0; padding-left: 20px; columns: 2; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section { margin-top: 34px; padding-top: 8px; border-top: 1px solid var(--line); }
section h2 { font-size: 1.3rem; margin: 6px 0 4px; }
section h3 { font-size: 1.05rem; margin: 18px 0 4px; }
p.lead { color: var(--muted); margin: 0 0 10px; }
p.note { margin: 6px 0 12px; padding: 8px 12px; background: var(--soft);
  border-left: 4px solid var(--accent); border-radius: 3px; }
p.empty { margin: 10px 0; padding: 14px; border: 1px dashed var(--line); color: var(--muted);
  border-radius: 6px; background: var(--soft); }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
svg.chart text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.charts > figure { flex: 1 1 460px; }
figure { margin: 0; }
div.table { overflow-x: auto; }
details summary { cursor: pointer; color: var(--accent); margin: 4px 0; }
figure figcaption { font-weight: 600; margin-bottom: 2px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 0.9rem; min-width: 50%; }
caption { text-align: left; color: var(--muted); font-size: 0.85rem; padding-bottom: 4px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.highlight td { background: var(--hl); font-weight: 600; }
tr.highlight td:first-child { border-left: 4px solid var(--warn); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px;
  margin: 10px 0; }
.tile { padding: 12px 14px; border: 1px solid var(--line); border-radius: 8px; background: var(--soft); }
.tile .value { font-size: 1.5rem; font-weight: 700; font-variant-numeric: tabular-nums;
  overflow-wrap: anywhere; }
.tile .label { color: var(--muted); font-size: 0.88rem; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.8rem;
  background: var(--warn); color: #fff; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav.toc { display: none; }
  section { break-inside: avoid-page; border-top: none; }
  figure, table, svg.chart { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  p.note { border-left-color: #000; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(money(1234.5), "1,234.50");
        assert_eq!(money(-1234567.891), "-1,234,567.89");
        assert_eq!(money(-0.001), "0.00");
        assert_eq!(money(f64::NAN), "–");
        assert_eq!(pct(0.256), "25.6%");
        assert_eq!(pp(0.031), "+3.1 pp");
        assert_eq!(pp(-0.004), "-0.4 pp");
        assert_eq!(short(3_400_000.0), "3.4M");
        assert_eq!(short(2_000.0), "2k");
        assert_eq!(short(6.0), "6");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(esc("<b>&\"x\"'"), "&lt;b&gt;&amp;&quot;x&quot;&#39;");
        assert_eq!(esc("s3://b"), "s3&#58;&#47;&#47;b");
    }
}
