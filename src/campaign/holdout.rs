//! The holdout and the idempotency key: both must be the same on every run, retry and
//! step, so they are pure hashes of the identifiers, never random draws.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

/// True when `customer_id` is in `campaign`'s holdout: the first 8 bytes of
/// SHA-256("campaign\0customer") read as a big-endian u64 fall below `share * 2^64`.
/// The same customer is in or out on every night, retry and step of the campaign, and
/// independently of other campaigns. `share` is clamped to 0..=1.
pub fn in_holdout(campaign: &str, customer_id: &str, share: f64) -> bool {
    if share.is_nan() || share <= 0.0 {
        return false;
    }
    if share >= 1.0 {
        return true;
    }
    let mut hasher = Sha256::new();
    hasher.update(campaign.as_bytes());
    hasher.update([0u8]);
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let point = u64::from_be_bytes(first);
    // share * 2^64 as f64 is exact enough: the error is below 2^-52 of the share.
    let threshold = share * 18_446_744_073_709_551_616.0;
    (point as f64) < threshold
}

/// The key a provider and the ledger use to recognise one message: hex of the first 16
/// bytes of SHA-256 over (campaign, step, customer, channel, entry date). Stable across
/// retries and reruns of any `as_of`, different for a new lapse (a new entry date).
pub fn idempotency_key(
    campaign: &str,
    step: u32,
    customer_id: &str,
    channel: &str,
    entry_date: NaiveDate,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        campaign,
        &step.to_string(),
        customer_id,
        channel,
        &entry_date.to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_share_is_about_right_on_100k_ids() {
        let n = 100_000;
        let held = (0..n)
            .filter(|i| in_holdout("winback_quick", &format!("C{i:06}"), 0.10))
            .count();
        // Binomial(100k, 0.1): sd ~ 95, so +-500 is more than 5 sd.
        assert!((9_500..=10_500).contains(&held), "{held}");
        let held_30 = (0..n)
            .filter(|i| in_holdout("winback_quick", &format!("C{i:06}"), 0.30))
            .count();
        assert!((29_300..=30_700).contains(&held_30), "{held_30}");
    }

    #[test]
    fn holdout_is_stable_and_nested() {
        for i in 0..2_000 {
            let id = format!("C{i}");
            let a = in_holdout("amends", &id, 0.1);
            assert_eq!(a, in_holdout("amends", &id, 0.1), "same answer every time");
            // A larger share only adds customers: nobody leaves the holdout.
            if a {
                assert!(in_holdout("amends", &id, 0.2));
            }
        }
        assert!(!in_holdout("c", "x", 0.0));
        assert!(in_holdout("c", "x", 1.0));
        assert!(!in_holdout("c", "x", f64::NAN));
    }

    #[test]
    fn holdout_differs_between_campaigns() {
        let both = (0..10_000)
            .filter(|i| {
                let id = format!("C{i}");
                in_holdout("a", &id, 0.1) && in_holdout("b", &id, 0.1)
            })
            .count();
        // Independent: about 1% are in both, not 10%.
        assert!(both < 250, "{both}");
    }

    #[test]
    fn idempotency_key_is_stable_and_distinct() {
        let d = NaiveDate::from_ymd_opt(2026, 6, 4).unwrap();
        let k = idempotency_key("quick", 1, "C1", "email", d);
        assert_eq!(k.len(), 32);
        assert_eq!(k, idempotency_key("quick", 1, "C1", "email", d));
        assert_ne!(k, idempotency_key("quick", 2, "C1", "email", d));
        assert_ne!(k, idempotency_key("quick", 1, "C1", "sms", d));
        assert_ne!(
            k,
            idempotency_key("quick", 1, "C1", "email", d.succ_opt().unwrap())
        );
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(
            idempotency_key("ab", 1, "c", "email", d),
            idempotency_key("a", 1, "bc", "email", d)
        );
    }
}
