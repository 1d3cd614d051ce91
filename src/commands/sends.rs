//! `winback sends`: what the send ledger holds, by campaign, step, channel and state; with
//! `--unknown`, the recipients whose request may have been processed (addresses masked);
//! with `--reconcile`, those settled by asking the providers.

use crate::cli::SendsArgs;
use crate::delivery::reconcile::{ReconcileOptions, reconcile};
use crate::error::{EXIT_OK, EXIT_PARTIAL};
use crate::pipeline::channels::{build_channels, outbox_dir};
use crate::pipeline::session;
use crate::state::State;

pub async fn sends(args: SendsArgs) -> anyhow::Result<i32> {
    let state = State::open(&args.state_dir)?;
    if args.reconcile {
        return reconcile_unknown(&state, &args).await;
    }
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

/// `--reconcile`: settle the `unknown` rows with the providers. Exit 2 while some stay.
async fn reconcile_unknown(state: &State, args: &SendsArgs) -> anyhow::Result<i32> {
    let opts = crate::config::LoadOptions {
        output: args.output.clone(),
        ..crate::config::LoadOptions::default()
    };
    let pipeline = session::load(&args.pipeline, &opts)?;
    let root = crate::storage::locate(&pipeline.output.url)?;
    let today = session::today(&pipeline).to_string();
    let outbox = outbox_dir(&root, &today, Some(&args.state_dir));
    let ropts = ReconcileOptions {
        campaign: args.campaign.clone(),
        as_of: args.as_of,
        dry_run: args.dry_run,
    };
    let build = || build_channels(&pipeline, &outbox);
    let done = reconcile(state, build, &ropts, state.now()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        if done.dry_run {
            println!("dry run: nothing was changed");
        }
        println!(
            "{:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "channel", "unknown", "waiting", "delivered", "rejected", "not_sent", "open"
        );
        for c in &done.channels {
            println!(
                "{:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
                c.channel,
                c.unknown,
                c.waiting,
                c.delivered,
                c.rejected,
                c.not_sent,
                c.still_unknown
            );
            for (why, n) in &c.reasons {
                println!("  {n} still unknown: {why}");
            }
            if c.waiting > 0 {
                println!(
                    "  {} attempted too recently for the provider to list them (reconcile_after_secs)",
                    c.waiting
                );
            }
        }
    }
    Ok(if done.still_unknown() > 0 {
        EXIT_PARTIAL
    } else {
        EXIT_OK
    })
}
