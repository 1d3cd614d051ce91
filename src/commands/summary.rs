//! The summary printed at the end of a run.

use crate::manifest::Manifest;

fn human_bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

pub fn print(m: &Manifest) {
    println!();
    println!(
        "pipeline {}  as_of {}  run {}",
        m.pipeline, m.as_of, m.run_id
    );
    stage_table(m);
    sources_and_quarantine(m);
    models_and_metrics(m);
    if let Some(c) = &m.campaigns {
        campaigns(c);
    }
    totals(m);
}

/// Rows and seconds of the source checks, the quarantine and each stage.
fn stage_table(m: &Manifest) {
    println!("{:<28} {:>12} {:>9}", "stage", "rows", "seconds");
    println!(
        "{:<28} {:>12} {:>9.2}",
        "(sources: checks, dedupe)", m.rows_read, m.sources_seconds
    );
    let rejected: u64 = m.quarantine.values().sum();
    println!(
        "{:<28} {:>12} {:>9.2}",
        "(quarantine)", rejected, m.quarantine_seconds
    );
    for s in &m.stages {
        let keys = s
            .incremental_keys
            .map_or(String::new(), |k| format!("  ({k} keys recomputed)"));
        println!("{:<28} {:>12} {:>9.2}{keys}", s.name, s.rows, s.seconds);
    }
    if let Some(i) = &m.incremental {
        match &i.reason {
            Some(reason) => println!("maintained stages recomputed in full: {reason}"),
            None => println!(
                "incremental night: {} new file(s), {} key(s) touched",
                i.new_files,
                i.keys_touched.unwrap_or(0)
            ),
        }
    }
}

/// Each source's rows, files and skipped duplicate files; the quarantined rows by reason.
fn sources_and_quarantine(m: &Manifest) {
    for src in &m.sources {
        println!(
            "source {:<21} {:>12} rows from {} file(s) ({})",
            src.name,
            src.rows_read,
            src.files.len(),
            src.selection
        );
        for skipped in &src.skipped {
            println!(
                "  skipped {}: the same bytes as {}",
                skipped.path, skipped.same_as
            );
        }
    }
    let quarantined: u64 = m.quarantine.values().sum();
    if quarantined > 0 {
        println!("quarantined {quarantined} row(s):");
        for (k, n) in &m.quarantine {
            println!("  {k:<40} {n:>10}");
        }
    } else {
        println!("quarantined 0 rows");
    }
}

/// Whether each model was fitted (and converged), and the run's metrics.
fn models_and_metrics(m: &Manifest) {
    for (name, d) in &m.models {
        match d.get("error") {
            Some(e) => println!("model {name:<34} NOT FITTED ({}): {e}", d["fallback"]),
            None => {
                let state = match d.pointer("/bgnbd/converged").and_then(|c| c.as_bool()) {
                    Some(true) => "fitted, converged",
                    Some(false) => "fitted, DID NOT CONVERGE (see manifest)",
                    None => "done",
                };
                println!("model {name:<34} {state}");
            }
        }
    }
    for (k, v) in &m.metrics {
        let shown = match v.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.4}"),
            _ => v.to_string(),
        };
        println!("{k:<40} {shown}");
    }
}

/// Rows, time, throughput and memory of the whole run; where the tables and the report are.
fn totals(m: &Manifest) {
    let out = m.outputs.first().map(|o| o.path.as_str()).unwrap_or("");
    let spilled = if m.spill_peak_bytes > 0 {
        format!(", spill files up to {}", human_bytes(m.spill_peak_bytes))
    } else {
        String::new()
    };
    println!(
        "{} rows in {:.2}s ({:.0} rows/s), peak memory {}{spilled}",
        m.rows_read,
        m.seconds,
        m.rows_per_second,
        m.peak_memory_bytes.map_or("unknown".into(), human_bytes)
    );
    if !m.outputs.is_empty() {
        let root = out.split("/as_of=").next().unwrap_or(out);
        let root = root.rsplit_once('/').map_or(root, |(r, _)| r);
        println!("{} tables written under {root}/", m.outputs.len());
    }
    if let Some(r) = &m.report {
        println!("report: {r}");
    }
}

/// Per campaign and channel: audience, holdout, suppressed and deferred by reason, sent;
/// then per channel what the provider made of it. No address appears.
fn campaigns(c: &crate::delivery::report::CampaignsReport) {
    let mode = match c.mode {
        crate::delivery::report::SendMode::DryRun => " (dry run: nothing sent)",
        _ => "",
    };
    println!("campaigns{mode}");
    println!(
        "  {:<22} {:<8} {:>8} {:>8} {:>8}  suppressed / deferred",
        "campaign", "channel", "audience", "holdout", "to send"
    );
    for (campaign, channels) in &c.plan.channels {
        let audience = c.plan.audience.get(campaign).copied().unwrap_or(0);
        for (channel, n) in channels {
            let reasons: Vec<String> = n
                .suppressed
                .iter()
                .map(|(r, k)| format!("{r} {k}"))
                .chain(
                    n.deferred
                        .iter()
                        .map(|(r, k)| format!("{r} {k} (deferred)")),
                )
                .collect();
            println!(
                "  {campaign:<22} {channel:<8} {audience:>8} {:>8} {:>8}  {}",
                n.holdout,
                n.send,
                reasons.join(", ")
            );
        }
    }
    for d in &c.deliveries {
        println!(
            "  channel {:<10} delivered {}, rejected {}, failed {}, unknown {}, not attempted {}, already sent {}, cost {:.2}, {} request(s){}",
            d.channel,
            d.delivered,
            d.rejected,
            d.failed,
            d.unknown,
            d.not_attempted,
            d.skipped,
            d.cost,
            d.requests,
            d.stopped
                .as_deref()
                .map(|s| format!(", stopped: {s}"))
                .unwrap_or_default()
        );
        for (why, n) in &d.unknown_reasons {
            println!(
                "    {n} unknown: {why} (maybe delivered: not sent again until `winback sends --reconcile` settles it)"
            );
        }
        if d.deferred + d.scheduled > 0 {
            println!(
                "    quiet hours when sent: {} deferred to the next run, {} scheduled for the window's opening",
                d.deferred, d.scheduled
            );
        }
        if d.opted_out > 0 {
            println!(
                "    {} refused as opted out (STOP): recorded, never messaged on this medium again",
                d.opted_out
            );
        }
    }
    for (campaign, b) in &c.plan.budget {
        let share = b
            .share
            .map(|s| format!(" ({:.0}% of the run's budget)", s * 100.0))
            .unwrap_or_default();
        let moved = if b.reallocated > 0.0 {
            format!(
                ", {:.2} of it reallocated from unused shares",
                b.reallocated
            )
        } else {
            String::new()
        };
        println!(
            "  budget {campaign:<22} spent {:.2} of {:.2}{share}{moved}",
            b.spent, b.limit
        );
    }
    let tz = &c.plan.timezones_inferred;
    if tz.total() > 0 {
        println!(
            "  timezones inferred (missing or not an IANA name): {} from country, {} from phone, {} the pipeline's",
            tz.country, tz.phone, tz.pipeline
        );
    }
    if c.plan.repeated_deferrals > 0 {
        println!(
            "  warning: {} step(s) deferred on {} or more nights in a row: the recipients' window is closed whenever the run sends (see README \"Send windows\")",
            c.plan.repeated_deferrals, c.plan.repeated_deferral_nights
        );
    }
    if c.unknown_recovered > 0 {
        println!(
            "  {} recipient(s) were in flight when a process died: `unknown`, not sent again (winback sends --unknown)",
            c.unknown_recovered
        );
    }
    for e in &c.errors {
        println!("  error: {e}");
    }
}
