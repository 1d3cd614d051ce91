//! File-level facts about a source, settled before any row is read: files delivered twice
//! under two names, and one column type for files that disagree.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

/// A file left out because another file of the source has exactly the same bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedFile {
    pub path: String,
    /// The file that was read instead.
    pub same_as: String,
    pub bytes: u64,
}

/// For each of `metas` (sorted by path), the index of an earlier file with identical
/// content, if any: that file is read instead. Only files of equal size are read and
/// hashed, so a source without copies costs nothing more than its listing.
pub async fn identical_content(
    store: &Arc<dyn ObjectStore>,
    metas: &[ObjectMeta],
) -> Result<Vec<Option<usize>>, object_store::Error> {
    let mut by_size: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, m) in metas.iter().enumerate() {
        if m.size > 0 {
            by_size.entry(m.size).or_default().push(i);
        }
    }
    let mut same_as = vec![None; metas.len()];
    for group in by_size.values().filter(|g| g.len() > 1) {
        let mut seen: Vec<([u8; 32], usize)> = Vec::new();
        for &i in group {
            let digest = sha256(store, &metas[i]).await?;
            match seen.iter().find(|(d, _)| *d == digest) {
                Some((_, first)) => same_as[i] = Some(*first),
                None => seen.push((digest, i)),
            }
        }
    }
    Ok(same_as)
}

async fn sha256(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> Result<[u8; 32], object_store::Error> {
    let mut hasher = Sha256::new();
    let mut stream = store.get(&meta.location).await?.into_stream();
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
    }
    Ok(hasher.finalize().into())
}

/// One type for a column that files of one source hold as `a` and `b`, when every value
/// of both converts to it without loss; `None` when they cannot be reconciled.
pub fn unify(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let text = |t: &DataType| crate::source::schema_check::is_text(t);
    let naive_time = |t: &DataType| matches!(t, Timestamp(_, None) | Date32 | Date64);
    Some(match (a, b) {
        (a, b) if text(a) && text(b) => Utf8,
        (a, b) if a.is_integer() && b.is_integer() => {
            if matches!(a, UInt64) || matches!(b, UInt64) {
                Decimal128(20, 0)
            } else {
                Int64
            }
        }
        (a, b) if a.is_numeric() && b.is_numeric() => Float64,
        (a, b) if naive_time(a) && naive_time(b) => Timestamp(TimeUnit::Nanosecond, None),
        // Instants in two zones stay the same instants in UTC.
        (Timestamp(_, Some(_)), Timestamp(_, Some(_))) => {
            Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        }
        // Text is parsed value by value (bad values are quarantined); numbers and times
        // print as text that parses back to the same value.
        (t, other) | (other, t) if text(t) && (other.is_numeric() || naive_time(other)) => Utf8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossless_pairs_unify_and_others_do_not() {
        use DataType::*;
        assert_eq!(unify(&Int64, &Float64), Some(Float64));
        assert_eq!(unify(&Int32, &Int64), Some(Int64));
        assert_eq!(unify(&Utf8, &Utf8View), Some(Utf8));
        assert_eq!(unify(&Utf8, &Float64), Some(Utf8));
        assert_eq!(
            unify(
                &Timestamp(TimeUnit::Millisecond, None),
                &Timestamp(TimeUnit::Nanosecond, None)
            ),
            Some(Timestamp(TimeUnit::Nanosecond, None))
        );
        assert_eq!(
            unify(
                &Timestamp(TimeUnit::Nanosecond, Some("Europe/Berlin".into())),
                &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
            Some(Timestamp(TimeUnit::Nanosecond, Some("UTC".into())))
        );
        // A wall-clock time and an instant do not mean the same thing.
        assert_eq!(
            unify(
                &Timestamp(TimeUnit::Nanosecond, None),
                &Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
            ),
            None
        );
        assert_eq!(unify(&Boolean, &Float64), None);
    }
}
