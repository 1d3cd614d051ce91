//! Who of the team makes a call: the customer's own `owner` (the `customers` column) when
//! the data names one, else one of `[staff]`, chosen by rendezvous hashing: each member
//! scores SHA-256(member, customer) and the highest score owns the customer. Pure, so a
//! customer keeps their owner night after night; the members share the customers evenly
//! (like a round robin, in expectation); and when the list changes only the customers of
//! a member who left, and a fair share for one who joined, move.

use sha2::{Digest, Sha256};

/// The owner of `customer_id`'s calls: `own` (the customer's `owner` column) when set,
/// else the `[staff]` member with the highest score; None when there is neither.
pub fn call_owner<'a>(
    customer_id: &str,
    own: Option<&'a str>,
    staff: &'a [String],
) -> Option<&'a str> {
    if let Some(o) = own.map(str::trim).filter(|o| !o.is_empty()) {
        return Some(o);
    }
    staff
        .iter()
        .max_by_key(|member| {
            (
                score(member, customer_id),
                std::cmp::Reverse(member.as_str()),
            )
        })
        .map(String::as_str)
}

/// The first 8 bytes of SHA-256("member\0customer"), big-endian.
fn score(member: &str, customer_id: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(member.as_bytes());
    hasher.update([0u8]);
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_customers_own_owner_wins_and_no_staff_is_no_owner() {
        let team = staff(&["Ana", "Ben"]);
        assert_eq!(call_owner("c1", Some(" Zoe "), &team), Some("Zoe"));
        assert_eq!(call_owner("c1", Some(""), &[]), None);
        assert_eq!(call_owner("c1", None, &[]), None);
        assert_eq!(call_owner("c1", None, &staff(&["Ana"])), Some("Ana"));
    }

    #[test]
    fn owners_are_shared_evenly_and_move_only_when_their_owner_leaves() {
        let team = staff(&["Ana", "Ben", "Chen", "Dara"]);
        let ids: Vec<String> = (0..4000).map(|i| format!("C{i:05}")).collect();
        let before: Vec<&str> = ids
            .iter()
            .map(|id| call_owner(id, None, &team).unwrap())
            .collect();
        // Each of four members owns about a quarter (1000 +- 4 standard deviations).
        for member in &team {
            let n = before.iter().filter(|o| **o == member.as_str()).count();
            assert!((880..=1120).contains(&n), "{member}: {n}");
        }
        // The order of the list does not matter.
        let shuffled = staff(&["Dara", "Chen", "Ben", "Ana"]);
        for (id, o) in ids.iter().zip(&before) {
            assert_eq!(call_owner(id, None, &shuffled), Some(*o));
        }
        // Ben leaves: his customers are shared among the others; nobody else moves.
        let without = staff(&["Ana", "Chen", "Dara"]);
        for (id, o) in ids.iter().zip(&before) {
            let now = call_owner(id, None, &without).unwrap();
            if *o != "Ben" {
                assert_eq!(now, *o, "{id}");
            }
        }
    }
}
