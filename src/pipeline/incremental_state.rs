//! What the last incremental night kept (`<state>/incremental/<pipeline>/state.json`): the
//! files, the fingerprint of everything else the maintained tables depend on, the night;
//! and whether tonight can build on it, or why not.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Prepared;
use crate::stage::incremental::Part;

/// What one file was when its rows went into the maintained tables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(super) struct SeenFile {
    bytes: u64,
    version: String,
}

/// The maintained tables of the last night and what they were computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Remembered {
    pub(super) as_of: NaiveDate,
    /// The folder of the tables, under the pipeline's incremental folder.
    pub(super) generation: String,
    /// A hash of everything besides the files that the tables depend on, by item.
    pub(super) fingerprint: BTreeMap<String, String>,
    /// Source → file path → what it was.
    pub(super) files: BTreeMap<String, BTreeMap<String, SeenFile>>,
    pub(super) tables: Vec<String>,
}

pub(super) const STATE_FILE: &str = "state.json";

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub(super) fn fingerprint(p: &Prepared, part: &Part) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    f.insert("winback".into(), env!("CARGO_PKG_VERSION").to_string());
    f.insert("key".into(), part.key.clone());
    f.insert("maintained".into(), part.maintained.join(","));
    f.insert("timezone".into(), p.pipeline.timezone.name().to_string());
    f.insert(
        "variables".into(),
        sha(&format!("{:?}", p.pipeline.variables)),
    );
    for s in &part.stages {
        f.insert(format!("stage {}", s.name), sha(&s.sql));
    }
    for s in p
        .pipeline
        .sources
        .iter()
        .filter(|s| part.sources.contains(&s.name))
    {
        f.insert(format!("source {}", s.name), sha(&format!("{s:?}")));
    }
    f
}

/// Why a fingerprint item differs, in words.
fn changed(item: &str) -> String {
    match item.split_once(' ') {
        Some(("stage", name)) => format!("the SQL of stage '{name}' changed"),
        Some(("source", name)) => format!("the settings of source '{name}' changed"),
        _ => match item {
            "variables" => "a variable changed".into(),
            "timezone" => "the timezone changed".into(),
            "winback" => "winback's version changed".into(),
            _ => "the maintained stages changed".into(),
        },
    }
}

pub(super) fn files_now(p: &Prepared, part: &Part) -> BTreeMap<String, BTreeMap<String, SeenFile>> {
    p.sources
        .iter()
        .filter(|s| part.sources.contains(&s.report.name))
        .map(|s| {
            let files = s
                .report
                .files
                .iter()
                .map(|f| {
                    let seen = SeenFile {
                        bytes: f.bytes,
                        version: f.version.clone(),
                    };
                    (f.path.clone(), seen)
                })
                .collect();
            (s.report.name.clone(), files)
        })
        .collect()
}

/// Why the night cannot build on `last`, or `None` when it can.
pub(super) fn full_reason(last: &Remembered, now: &Remembered) -> Option<String> {
    if now.as_of < last.as_of {
        return Some(format!(
            "as_of {} is before the last maintained night ({})",
            now.as_of, last.as_of
        ));
    }
    let items: std::collections::BTreeSet<&String> = last
        .fingerprint
        .keys()
        .chain(now.fingerprint.keys())
        .collect();
    if let Some(item) = items
        .into_iter()
        .find(|k| last.fingerprint.get(*k) != now.fingerprint.get(*k))
    {
        return Some(changed(item));
    }
    for (source, files) in &last.files {
        let current = now.files.get(source);
        for (path, seen) in files {
            match current.and_then(|c| c.get(path)) {
                None => {
                    return Some(format!(
                        "file {path} of source '{source}' is no longer read (removed, or skipped as a copy of another)"
                    ));
                }
                Some(s) if s != seen => {
                    return Some(format!(
                        "file {path} of source '{source}' changed since the night of {}",
                        last.as_of
                    ));
                }
                Some(_) => {}
            }
        }
    }
    None
}

pub(super) fn read_remembered(dir: &Path) -> Option<Remembered> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    match serde_json::from_str(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "the incremental state cannot be read: recomputing in full");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remembered(as_of: &str, files: &[(&str, u64, &str)]) -> Remembered {
        Remembered {
            as_of: as_of.parse().unwrap(),
            generation: "gen-1".into(),
            fingerprint: [("stage purchases_clean".to_string(), "abc".to_string())].into(),
            files: [(
                "purchases".to_string(),
                files
                    .iter()
                    .map(|(p, b, v)| {
                        let seen = SeenFile {
                            bytes: *b,
                            version: v.to_string(),
                        };
                        (p.to_string(), seen)
                    })
                    .collect(),
            )]
            .into(),
            tables: vec![],
        }
    }

    #[test]
    fn a_night_that_only_adds_files_builds_on_the_last() {
        let last = remembered("2026-01-01", &[("a", 10, "v1")]);
        let now = remembered("2026-01-02", &[("a", 10, "v1"), ("b", 5, "v1")]);
        assert_eq!(full_reason(&last, &now), None);
        // The same night again too.
        assert_eq!(full_reason(&now, &now), None);
    }

    #[test]
    fn anything_else_recomputes_in_full_and_says_why() {
        let last = remembered("2026-01-02", &[("a", 10, "v1")]);
        let earlier = remembered("2026-01-01", &[("a", 10, "v1")]);
        let reason = full_reason(&last, &earlier).unwrap();
        assert!(
            reason.contains("before the last maintained night"),
            "{reason}"
        );
        let rewritten = remembered("2026-01-03", &[("a", 10, "v2")]);
        let reason = full_reason(&last, &rewritten).unwrap();
        assert!(
            reason.contains("file a of source 'purchases' changed"),
            "{reason}"
        );
        let removed = remembered("2026-01-03", &[("b", 10, "v1")]);
        let reason = full_reason(&last, &removed).unwrap();
        assert!(reason.contains("no longer read"), "{reason}");
        let mut edited = remembered("2026-01-03", &[("a", 10, "v1")]);
        edited
            .fingerprint
            .insert("stage purchases_clean".into(), "def".into());
        let reason = full_reason(&last, &edited).unwrap();
        assert_eq!(reason, "the SQL of stage 'purchases_clean' changed");
        let mut vars = remembered("2026-01-03", &[("a", 10, "v1")]);
        vars.fingerprint.insert("variables".into(), "x".into());
        assert_eq!(full_reason(&last, &vars).unwrap(), "a variable changed");
    }
}
