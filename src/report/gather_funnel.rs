//! Gathering each campaign's funnel: `campaign_funnel` per contact night, split into the
//! nights whose attribution windows are complete (summed: the customers of the campaign's
//! results) and the nights still running; and tonight's decisions, from the run manifest's
//! plan and the ledger's deliveries of `as_of`, kept apart as "tonight".

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::data::{CampaignResult, Funnel, FunnelNight, Tonight};
use super::query::{int, rows};
use crate::error::PipelineError;

/// Each campaign's contact nights from `campaign_funnel`, oldest first.
async fn nights(ctx: &SessionContext) -> Result<BTreeMap<String, Vec<FunnelNight>>, PipelineError> {
    let sql = "select campaign, contact_night, picked, held_out, suppressed, sent, delivered, \
               bounced, window_complete, came_back, holdout_came_back \
               from campaign_funnel order by campaign, contact_night";
    let mut out: BTreeMap<String, Vec<FunnelNight>> = BTreeMap::new();
    for r in rows(ctx, sql).await? {
        let Ok(night) = r[1].parse::<NaiveDate>() else {
            continue;
        };
        let funnel = Funnel {
            picked: int(&r[2]),
            held_out: int(&r[3]),
            suppressed: int(&r[4]),
            sent: int(&r[5]),
            delivered: int(&r[6]),
            bounced: int(&r[7]),
            window_complete: int(&r[8]),
            came_back: int(&r[9]),
            holdout_came_back: int(&r[10]),
        };
        out.entry(r[0].clone())
            .or_default()
            .push(FunnelNight { night, funnel });
    }
    Ok(out)
}

/// Whether every contacted lapse of the night (sent or held out) has had its full window.
fn complete(f: &Funnel) -> bool {
    f.sent + f.held_out > 0 && f.window_complete == f.sent + f.held_out
}

/// Sums the complete nights into `c.funnel` (with their first and last date) and lists
/// the others as in progress. A night without any contact (everyone suppressed) has no
/// window: it goes with the complete ones when it is not later than the last of them.
pub(super) fn split_nights(c: &mut CampaignResult, nights: Vec<FunnelNight>) {
    let last_complete = nights
        .iter()
        .filter(|n| complete(&n.funnel))
        .map(|n| n.night)
        .max();
    for n in nights {
        let contacted = n.funnel.sent + n.funnel.held_out > 0;
        let done = if contacted {
            complete(&n.funnel)
        } else {
            last_complete.is_some_and(|last| n.night <= last)
        };
        if done {
            c.funnel.add(&n.funnel);
            c.nights = Some(match c.nights {
                Some((first, last)) => (first.min(n.night), last.max(n.night)),
                None => (n.night, n.night),
            });
        } else {
            c.in_progress_nights.push(n);
        }
    }
}

/// Tonight's plan per campaign (run manifest) with the deliveries of `as_of` (ledger).
fn tonight(
    manifest: Option<&serde_json::Value>,
    as_of: NaiveDate,
    state_dir: Option<&Path>,
) -> BTreeMap<String, Tonight> {
    let mut out: BTreeMap<String, Tonight> = BTreeMap::new();
    let Some(plan) = manifest.map(|m| &m["campaigns"]["plan"]) else {
        return out;
    };
    for (name, n) in plan["audience"].as_object().into_iter().flatten() {
        let c = out.entry(name.clone()).or_default();
        c.picked = n.as_u64().unwrap_or(0);
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        for counts in plan["channels"][name]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            c.held_out += counts["holdout"].as_u64().unwrap_or(0);
            c.sent += counts["send"].as_u64().unwrap_or(0);
            for key in ["suppressed", "deferred"] {
                for (r, k) in counts[key].as_object().into_iter().flatten() {
                    *reasons.entry(r.clone()).or_default() += k.as_u64().unwrap_or(0);
                }
            }
        }
        c.not_sent = reasons.into_iter().collect();
    }
    if let Ok(Some(state)) = crate::state::State::open_existing(state_dir)
        && let Ok(counts) = state.counts(None, Some(as_of))
    {
        for row in counts
            .iter()
            .filter(|r| r.state == crate::message::SendState::Delivered)
        {
            if let Some(c) = out.get_mut(&row.campaign) {
                c.delivered += row.n;
            }
        }
    }
    out
}

/// One entry per campaign that has a funnel night or a plan tonight, funnels filled in.
pub(super) async fn funnels(
    ctx: &SessionContext,
    have_funnel: bool,
    manifest: Option<&serde_json::Value>,
    as_of: NaiveDate,
    state_dir: Option<&Path>,
) -> Result<BTreeMap<String, CampaignResult>, PipelineError> {
    let mut out: BTreeMap<String, CampaignResult> = BTreeMap::new();
    if have_funnel {
        for (name, n) in nights(ctx).await? {
            let c = out.entry(name.clone()).or_default();
            c.campaign = name;
            split_nights(c, n);
        }
    }
    for (name, t) in tonight(manifest, as_of, state_dir) {
        let c = out.entry(name.clone()).or_default();
        c.campaign = name;
        c.tonight = Some(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn night(day: u32, sent: u64, held_out: u64, window_complete: u64) -> FunnelNight {
        FunnelNight {
            night: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
            funnel: Funnel {
                picked: sent + held_out + 1,
                held_out,
                suppressed: 1,
                sent,
                delivered: sent,
                window_complete,
                came_back: 1,
                ..Funnel::default()
            },
        }
    }

    /// The complete nights are summed with their dates; a night with a window still running
    /// is in progress; a night without contact goes with the complete ones up to the last.
    #[test]
    fn complete_nights_are_summed_and_the_running_ones_listed() {
        let mut c = CampaignResult::default();
        split_nights(
            &mut c,
            vec![
                night(1, 4, 1, 5),
                night(2, 0, 0, 0),
                night(3, 2, 1, 3),
                night(20, 3, 1, 0),
                night(21, 0, 0, 0),
            ],
        );
        let day = |d| NaiveDate::from_ymd_opt(2026, 10, d).unwrap();
        assert_eq!(c.nights, Some((day(1), day(3))));
        assert_eq!(
            c.funnel,
            Funnel {
                picked: 6 + 1 + 4,
                held_out: 2,
                suppressed: 3,
                sent: 6,
                delivered: 6,
                bounced: 0,
                window_complete: 8,
                came_back: 3,
                holdout_came_back: 0,
            }
        );
        let running: Vec<_> = c.in_progress_nights.iter().map(|n| n.night).collect();
        assert_eq!(running, [day(20), day(21)]);
    }

    /// A night where some windows have ended and others not is not complete.
    #[test]
    fn a_partly_finished_night_is_in_progress() {
        let mut c = CampaignResult::default();
        split_nights(&mut c, vec![night(5, 3, 1, 2)]);
        assert_eq!(c.nights, None);
        assert_eq!(c.funnel, Funnel::default());
        assert_eq!(c.in_progress_nights.len(), 1);
    }
}
