//! `[budget]`: one marketing budget per run split across campaigns (seed 001: the 10/30/60
//! rule, most of a budget to keeping the best and winning back the valuable). Each
//! campaign may spend at most its share of `total_per_run` (and its own `budget`, which
//! still applies); what a campaign leaves unused stays unspent unless `reallocate = true`,
//! which offers it, after every campaign has had its share, to the campaigns the split
//! cut, highest priority first.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::campaigns::RawCampaign;

/// `[budget]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// The most all campaigns together may spend per run (messages and offers).
    pub total_per_run: f64,
    /// Each campaign's share of it, 0..1; together at most 1. Every campaign is named.
    #[serde(default)]
    pub shares: BTreeMap<String, f64>,
    /// Offer what a campaign leaves unused to the campaigns the split cut (default false).
    #[serde(default)]
    pub reallocate: bool,
}

/// A checked `[budget]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSplit {
    pub total_per_run: f64,
    pub shares: BTreeMap<String, f64>,
    pub reallocate: bool,
}

impl BudgetSplit {
    /// The most `campaign` may spend under the split (before reallocation).
    pub fn limit(&self, campaign: &str) -> f64 {
        self.total_per_run * self.shares.get(campaign).copied().unwrap_or(0.0)
    }
}

/// Check `[budget]` against the campaigns; its problems go to `problems`.
pub fn resolve(
    raw: Option<&RawBudget>,
    campaigns: &BTreeMap<String, RawCampaign>,
    problems: &mut Vec<String>,
) -> Option<BudgetSplit> {
    let raw = raw?;
    let before = problems.len();
    if !(raw.total_per_run.is_finite() && raw.total_per_run >= 0.0) {
        problems.push(format!(
            "budget.total_per_run: {} must be an amount >= 0",
            raw.total_per_run
        ));
    }
    for (name, share) in &raw.shares {
        if !campaigns.contains_key(name) {
            problems.push(format!(
                "budget.shares.{name}: there is no [campaigns.{name}]"
            ));
        }
        if !(share.is_finite() && (0.0..=1.0).contains(share)) {
            problems.push(format!(
                "budget.shares.{name}: {share} must be a share between 0 and 1"
            ));
        }
    }
    let sum: f64 = raw.shares.values().sum();
    if sum > 1.0 + 1e-9 {
        problems.push(format!(
            "budget.shares add up to {sum}: together they may be at most 1"
        ));
    }
    let missing: Vec<&str> = campaigns
        .keys()
        .filter(|c| !raw.shares.contains_key(*c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "budget.shares: give every campaign a share (0 for none); missing: {}",
            missing.join(", ")
        ));
    }
    (problems.len() == before).then(|| BudgetSplit {
        total_per_run: raw.total_per_run,
        shares: raw.shares.clone(),
        reallocate: raw.reallocate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaigns(names: &[&str]) -> BTreeMap<String, RawCampaign> {
        names
            .iter()
            .map(|n| {
                let raw: RawCampaign = toml::from_str(&format!("audience = \"aud_{n}\"")).unwrap();
                (n.to_string(), raw)
            })
            .collect()
    }

    fn budget(total: f64, shares: &[(&str, f64)]) -> RawBudget {
        RawBudget {
            total_per_run: total,
            shares: shares.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            reallocate: false,
        }
    }

    #[test]
    fn a_split_naming_every_campaign_within_one_is_accepted() {
        let mut problems = Vec::new();
        let split = resolve(
            Some(&budget(100.0, &[("a", 0.6), ("b", 0.3)])),
            &campaigns(&["a", "b"]),
            &mut problems,
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(split.limit("a"), 60.0);
        assert_eq!(split.limit("b"), 30.0);
        assert!(resolve(None, &campaigns(&["a"]), &mut problems).is_none());
    }

    #[test]
    fn unknown_missing_out_of_range_and_oversubscribed_shares_are_refused() {
        let mut problems = Vec::new();
        let got = resolve(
            Some(&budget(-1.0, &[("a", 0.7), ("ghost", 0.2), ("b", 1.5)])),
            &campaigns(&["a", "b", "c"]),
            &mut problems,
        );
        assert!(got.is_none());
        let all = problems.join("\n");
        for expected in [
            "budget.total_per_run: -1 must be an amount >= 0",
            "budget.shares.ghost: there is no [campaigns.ghost]",
            "budget.shares.b: 1.5 must be a share between 0 and 1",
            "budget.shares add up to 2.4",
            "missing: c",
        ] {
            assert!(all.contains(expected), "{expected:?} in\n{all}");
        }
    }
}
