//! `winback sends`: what the send ledger holds, by campaign, step, channel and state; with
//! `--unknown`, the recipients a dead process left in flight (addresses masked).

use crate::cli::SendsArgs;
use crate::error::EXIT_OK;
use crate::state::State;

pub async fn sends(args: SendsArgs) -> anyhow::Result<i32> {
    let state = State::open(&args.state_dir)?;
    if args.unknown {
        let rows = state.unknown_rows()?;
        if args.json {
            let list: Vec<_> = rows
                .iter()
                .map(|r| serde_json::json!({"row": r, "address": r.masked_address()}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
            return Ok(EXIT_OK);
        }
        println!(
            "{} recipient(s) were in flight when a process died: maybe delivered, not sent again.",
            rows.len()
        );
        println!("Check each with the provider (its message log, by recipient and time).");
        println!(
            "{:<20} {:>4} {:<16} {:<10} {:<24} {:<10} idempotency key",
            "campaign", "step", "customer", "channel", "address", "as_of"
        );
        for r in rows {
            println!(
                "{:<20} {:>4} {:<16} {:<10} {:<24} {:<10} {}",
                r.campaign,
                r.step,
                r.customer_id,
                r.channel,
                r.masked_address(),
                r.as_of,
                r.idempotency_key
            );
        }
        return Ok(EXIT_OK);
    }
    let counts = state.counts(args.campaign.as_deref(), args.as_of)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&counts)?);
        return Ok(EXIT_OK);
    }
    println!(
        "{:<24} {:>4} {:<12} {:<11} {:>9}",
        "campaign", "step", "channel", "state", "messages"
    );
    for c in counts {
        println!(
            "{:<24} {:>4} {:<12} {:<11} {:>9}",
            c.campaign,
            c.step,
            c.channel,
            c.state.as_str(),
            c.n
        );
    }
    Ok(EXIT_OK)
}
