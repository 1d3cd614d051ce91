//! "The call list" section: the calls the team was given (the call medium's lists under
//! `_outbox/.../calls/`), what they recorded (`call_outcomes`) and who came back
//! (`call_results`), per campaign.

use crate::report::charts::{self, BLUE, GREEN, GREY, SKY};
use crate::report::data::{Calls, ReportData};
use crate::report::html::{self, int, money, n, pct, t};
use crate::report::sections::fig;

pub fn calls(d: &ReportData) -> Option<String> {
    let c = d.calls.as_ref()?;
    if c.rows.is_empty() {
        return Some(html::empty(&format!(
            "No call on any list up to {}: no campaign step lists a channel of medium \
             \"call\", or no customer qualified for one (call consent, a valid phone).",
            d.as_of
        )));
    }
    let listed: u64 = c.rows.iter().map(|r| r.listed).sum();
    let tonight: u64 = c.rows.iter().map(|r| r.tonight).sum();
    let recorded: u64 = c.rows.iter().map(|r| r.recorded).sum();
    let reached: u64 = c.rows.iter().map(|r| r.reached).sum();
    let back: u64 = c.rows.iter().map(|r| r.came_back).sum();
    let mut s = chart(c);
    s.push_str(&html::note(&format!(
        "{} customers have been on a call list, {} of them tonight (each with one owner on \
         the team). The team recorded an outcome for {} calls and reached {} customers \
         ({} of the calls with an outcome). {} came back within the attribution window \
         after their call, reached or not: a call counts as a contact like a delivered \
         e-mail, opened or not, so it compares fairly with the holdout in \"Did win-back \
         work\". Tonight's calls have no outcome yet.",
        int(listed),
        int(tonight),
        int(recorded),
        int(reached),
        if recorded > 0 {
            pct(reached as f64 / recorded as f64)
        } else {
            "none".into()
        },
        int(back),
    )));
    s.push_str(&table(c));
    Some(s)
}

fn chart(c: &Calls) -> String {
    let cats: Vec<String> = c.rows.iter().map(|r| r.campaign.clone()).collect();
    let series = |f: fn(&crate::report::data::CallRow) -> u64| -> Vec<f64> {
        c.rows.iter().map(|r| f(r) as f64).collect()
    };
    fig(
        "Calls per campaign: listed, with an outcome, reached, came back",
        charts::grouped(
            "The call list's calls per campaign and what came of them",
            &cats,
            &[
                ("listed", series(|r| r.listed), GREY),
                ("outcome recorded", series(|r| r.recorded), SKY),
                ("reached", series(|r| r.reached), BLUE),
                ("came back", series(|r| r.came_back), GREEN),
            ],
        ),
    )
}

fn table(c: &Calls) -> String {
    let rows: Vec<_> = c
        .rows
        .iter()
        .map(|r| {
            (
                false,
                vec![
                    t(r.campaign.clone()),
                    n(int(r.listed)),
                    n(int(r.tonight)),
                    n(int(r.recorded)),
                    n(int(r.reached)),
                    n(int(r.came_back)),
                    n(money(r.revenue)),
                ],
            )
        })
        .collect();
    html::table(
        "The call lists per campaign",
        &[
            "campaign",
            "listed",
            "tonight",
            "outcome recorded",
            "reached",
            "came back",
            "their revenue",
        ],
        &rows,
    )
}
