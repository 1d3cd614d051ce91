//! Golden cases of `[budget]`: one budget per run split across two campaigns.
//!
//! Both campaigns send one e-mail (0.01 each in the test world), no holdout. The run's
//! budget is 0.10: `keep` (priority 20) has a share of 0.6, at most 0.06 or 6 e-mails;
//! `back` (priority 10) 0.4, at most 0.04 or 4 e-mails. `keep` has 10 customers (k01 of
//! value 1 ... k10 of value 10), `back` 3 (b1..b3), so `back` leaves 0.01 unused.

use std::collections::BTreeMap;

use super::*;
use crate::config::budget::BudgetSplit;
use SendState::Suppressed;

fn world(reallocate: bool, keep_budget: Option<f64>) -> World {
    let toml = campaign_toml("keep", 20, 0.0, keep_budget, &[(0, "email")])
        + &campaign_toml("back", 10, 0.0, None, &[(0, "email")]);
    let mut w = World::new(&toml);
    for v in 1..=10 {
        w.add("keep", &format!("k{v:02}"), "2026-06-04", v as f64);
    }
    for v in 1..=3 {
        w.add("back", &format!("b{v}"), "2026-06-04", v as f64);
    }
    w.budget = Some(BudgetSplit {
        total_per_run: 0.10,
        shares: BTreeMap::from([("keep".to_string(), 0.6), ("back".to_string(), 0.4)]),
        reallocate,
    });
    w
}

fn keep_sent(plan: &Plan) -> Vec<String> {
    sent(plan)
        .into_iter()
        .filter(|m| m.0 == "keep")
        .map(|m| m.2)
        .collect()
}

fn cut(plan: &Plan) -> Vec<String> {
    decided(plan)
        .into_iter()
        .filter(|(_, d)| d.2 == Suppressed && d.3 == "budget")
        .map(|(id, _)| id)
        .collect()
}

/// Shares honoured: keep sends its 6 most valuable (k05..k10), the 4 others are cut for
/// `budget`; back sends all 3 (0.03 of its 0.04). The unused 0.01 is not moved.
#[test]
fn golden_shares_are_honoured_and_unused_budget_stays_unspent() {
    let plan = world(false, None).plan();
    assert_eq!(keep_sent(&plan), ["k05", "k06", "k07", "k08", "k09", "k10"]);
    assert_eq!(cut(&plan), ["k01", "k02", "k03", "k04"]);
    assert_eq!(sent(&plan).iter().filter(|m| m.0 == "back").count(), 3);
    let keep = &plan.summary.budget["keep"];
    assert_eq!(keep.share, Some(0.6));
    assert!((keep.limit - 0.06).abs() < 1e-12 && (keep.spent - 0.06).abs() < 1e-9);
    assert_eq!(keep.reallocated, 0.0);
    let back = &plan.summary.budget["back"];
    assert!((back.limit - 0.04).abs() < 1e-12 && (back.spent - 0.03).abs() < 1e-9);
}

/// reallocate = true: the 0.10 − 0.06 − 0.03 = 0.01 left goes to keep, which the split
/// cut: one more e-mail, its next most valuable (k04); k01..k03 stay cut.
#[test]
fn golden_reallocate_moves_the_unused_budget_to_the_campaign_cut() {
    let plan = world(true, None).plan();
    assert_eq!(
        keep_sent(&plan),
        ["k04", "k05", "k06", "k07", "k08", "k09", "k10"]
    );
    assert_eq!(cut(&plan), ["k01", "k02", "k03"]);
    let keep = &plan.summary.budget["keep"];
    assert!((keep.spent - 0.07).abs() < 1e-9 && (keep.reallocated - 0.01).abs() < 1e-9);
}

/// A campaign's own budget still applies: keep's budget of 0.05 is below its share (0.06),
/// so it sends 5 (k06..k10), and reallocation cannot take it past 0.05 either.
#[test]
fn golden_a_campaigns_own_budget_still_applies() {
    for reallocate in [false, true] {
        let plan = world(reallocate, Some(0.05)).plan();
        assert_eq!(
            keep_sent(&plan),
            ["k06", "k07", "k08", "k09", "k10"],
            "reallocate = {reallocate}"
        );
        assert_eq!(cut(&plan), ["k01", "k02", "k03", "k04", "k05"]);
        assert!((plan.summary.budget["keep"].limit - 0.05).abs() < 1e-12);
    }
}

/// The budget, simulated for the holdout. `vip` (half held out) has 10 customers of values
/// 1..10 and a budget of 0.03: the 3 most valuable treated customers are sent. A held-out
/// customer whose value is below the lowest value sent would have been cut by the budget
/// (`would_be_suppressed = "budget"`); one above it would have been sent (nothing recorded).
#[test]
fn golden_the_holdout_records_whom_the_budget_would_have_cut() {
    let mut w = World::new(&campaign_toml("vip", 1, 0.5, Some(0.03), &[(0, "email")]));
    for v in 1..=10 {
        w.add("vip", &format!("v{v:02}"), "2026-06-04", v as f64);
    }
    let plan = w.plan();
    let held: Vec<u32> = (1..=10)
        .filter(|v| crate::campaign::holdout::in_holdout("vip", &format!("v{v:02}"), 0.5))
        .collect();
    let treated: Vec<u32> = (1..=10).filter(|v| !held.contains(v)).collect();
    assert!(held.len() >= 2 && treated.len() >= 4, "held {held:?}");
    // The three most valuable treated customers fit 0.03.
    let lowest_sent = treated[treated.len() - 3];
    let sent_ids: Vec<String> = sent(&plan).into_iter().map(|m| m.2).collect();
    let expect_sent: Vec<String> = treated[treated.len() - 3..]
        .iter()
        .map(|v| format!("v{v:02}"))
        .collect();
    assert_eq!(sent_ids, expect_sent);
    assert!(
        held.iter().any(|v| *v < lowest_sent) && held.iter().any(|v| *v > lowest_sent),
        "held {held:?} on both sides of {lowest_sent}"
    );
    for v in held {
        let id = format!("v{v:02}");
        let d = plan.decisions.iter().find(|d| d.customer_id == id).unwrap();
        assert_eq!(d.state, SendState::Holdout);
        let want = (v < lowest_sent).then(|| "budget".to_string());
        assert_eq!(
            d.would_be_suppressed, want,
            "{id} against the lowest sent, {lowest_sent}"
        );
    }
}
