//! Order-preserving parallel map over a slice on all cores (scoped threads, no pool):
//! the per-row work of planning is independent, and a million rows on one core is the
//! difference between a second and several.

/// Below this many items a map stays on the calling thread.
pub const MIN_PARALLEL: usize = 20_000;

/// `items.iter().map(f).collect()`, split into one chunk per core. A panic in `f` is
/// re-raised on the calling thread.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || items.len() < MIN_PARALLEL {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_small_and_large() {
        let small: Vec<u32> = (0..10).collect();
        assert_eq!(
            par_map(&small, |x| x * 2),
            (0..10).map(|x| x * 2).collect::<Vec<_>>()
        );
        let large: Vec<u64> = (0..100_003).collect();
        let out = par_map(&large, |x| x + 1);
        assert_eq!(out.len(), large.len());
        assert!(out.iter().enumerate().all(|(i, v)| *v == i as u64 + 1));
    }
}
