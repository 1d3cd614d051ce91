//! Appending to an outbox file in time proportional to the batch, and reading back which
//! idempotency keys it holds. A line counts once its newline is on disk.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// How far back from the end a torn tail is looked for (a line is one message).
const TAIL: u64 = 4 * 1024 * 1024;

/// Appends `lines` (whole lines, each ending in `\n`) to `target`: cuts a torn tail left by
/// a crash, writes `header` (a whole line, or nothing) when the file is then new or empty,
/// writes the lines with one `write`, and syncs. Creates the file and its folder.
pub fn append_under(target: &Path, header: &[u8], lines: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let created = !target.exists();
    std::fs::create_dir_all(dir)?;
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(target)?;
    repair(&mut f)?;
    if !header.is_empty() && f.metadata()?.len() == 0 {
        let mut all = header.to_vec();
        all.extend_from_slice(lines);
        f.write_all(&all)?;
    } else {
        f.write_all(lines)?;
    }
    f.sync_data()?;
    if created {
        // The new file's name is durable once its folder is synced.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Cuts an unterminated last line (a write a crash interrupted) back to the last newline.
pub fn repair(f: &mut File) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let start = len.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut tail)?;
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => start + i as u64 + 1,
        None if start == 0 => 0,
        None => {
            return Err(std::io::Error::other(
                "the outbox file ends in a line longer than 4 MiB: not cutting it",
            ));
        }
    };
    tracing::warn!(
        bytes = len - keep,
        "cutting a torn line a crash left at the end of an outbox file"
    );
    f.set_len(keep)?;
    f.sync_data()
}

/// The idempotency keys of the complete lines of `path` (none when there is no file).
pub fn keys(path: &Path) -> std::io::Result<HashSet<String>> {
    let mut out = HashSet::new();
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    #[derive(serde::Deserialize)]
    struct Line {
        idempotency_key: String,
    }
    let mut reader = BufReader::new(f);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            break; // a torn tail: not a line
        }
        if let Ok(l) = serde_json::from_slice::<Line>(&line) {
            out.insert(l.idempotency_key);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_cut_a_torn_tail_and_keys_skip_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/x.jsonl");
        append_under(&path, &[], b"{\"idempotency_key\":\"a\"}\n").unwrap();
        // A crash in the middle of the next write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"idempotency_key\":\"b").unwrap();
        drop(f);
        assert_eq!(keys(&path).unwrap(), HashSet::from(["a".to_string()]));
        append_under(&path, &[], b"{\"idempotency_key\":\"c\"}\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"idempotency_key\":\"a\"}\n{\"idempotency_key\":\"c\"}\n"
        );
        assert!(keys(&dir.path().join("none.jsonl")).unwrap().is_empty());
    }
}
