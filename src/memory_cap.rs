//! The run's memory cap (`memory_limit_mib` / `--memory-limit-mib`) bounds the whole
//! process, not only DataFusion's operators. Part of it goes to DataFusion's memory pool,
//! where sorts, aggregations and joins spill to disk rather than grow; model fits and their
//! tables reserve from the same pool; the rest is headroom for what no pool accounts for
//! (Parquet writers, Arrow buffers in flight, the allocator's own slack).
//!
//! As a backstop, the `winback` binary watches its resident memory while a run computes:
//! above the cap, the run stops cleanly with an error naming the stages that were running
//! and the setting to raise, before the operating system kills it. A library embedding
//! winback in a larger process does not turn the guard on (the process's memory is not the
//! run's); `enable_process_guard` is for the binary's `main`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The share of the cap given to DataFusion's operator pool, in eighths. Measured: the
/// pool's users reach it, and the process needs about as much again beside the pool at
/// 10M–100M purchase rows (see BENCHMARKS.md).
const POOL_EIGHTHS: usize = 5;

/// How often the guard reads the process's resident memory.
const POLL: Duration = Duration::from_millis(100);

static GUARD: AtomicBool = AtomicBool::new(false);

/// The bytes of DataFusion's memory pool under a cap of `cap` bytes.
pub fn pool_bytes(cap: usize) -> usize {
    cap / 8 * POOL_EIGHTHS
}

/// Watch this process's resident memory during runs (the `winback` binary only).
pub fn enable_process_guard() {
    GUARD.store(true, Ordering::Relaxed);
}

/// The process's resident memory in bytes (Linux: `VmRSS` of `/proc/self/status`), `None`
/// elsewhere.
pub fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Hand the allocator's free pages back to the operating system now, instead of after
/// jemalloc's decay time: between the stages and campaign planning the stages' freed
/// buffers would otherwise count as resident for a while, and against the cap.
pub fn release_free_memory() {
    // MALLCTL_ARENAS_ALL (4096): every arena. A void mallctl: no old or new value.
    let name = c"arena.4096.purge";
    // SAFETY: a NUL-terminated name, null old/new pointers with zero lengths, as the
    // jemalloc manual specifies for `arena.<i>.purge`; it only returns pages to the OS.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "jemalloc purge refused");
    }
}

/// Log the process's resident memory at `step` (debug level: `WINBACK_LOG=winback=debug`),
/// to see which step of a long run holds the memory.
pub fn trace_resident(step: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let mib = resident_bytes().unwrap_or(0) >> 20;
        tracing::debug!(step, resident_mib = mib, "memory");
    }
}

/// Resolves with the resident bytes once the process is above `cap` (never, when the guard
/// is off, there is no cap, or the platform cannot tell).
pub async fn exceeded(cap: Option<usize>) -> usize {
    let Some(cap) = cap.filter(|_| GUARD.load(Ordering::Relaxed)) else {
        return std::future::pending().await;
    };
    if resident_bytes().is_none() {
        return std::future::pending().await;
    }
    loop {
        if let Some(now) = resident_bytes().filter(|r| *r > cap) {
            return now;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_five_eighths_of_the_cap() {
        assert_eq!(pool_bytes(2048 << 20), 1280 << 20);
        assert_eq!(pool_bytes(0), 0);
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let r = resident_bytes().expect("statm");
            assert!(r > 1 << 20 && r < 1 << 40, "{r}");
        }
    }

    #[tokio::test]
    async fn the_guard_is_silent_without_a_cap() {
        let quiet = tokio::time::timeout(Duration::from_millis(250), exceeded(None)).await;
        assert!(quiet.is_err());
    }
}
