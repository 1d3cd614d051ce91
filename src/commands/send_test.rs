//! `winback send-test`: a campaign step rendered for sample audience rows and sent to
//! internal addresses, then one line per recipient (masked) and outcome. Exit 0 when the
//! provider took every message, 2 when some were not, 78 for a wrong `--to`, campaign or
//! step and for refused credentials.

use crate::cli::SendTestArgs;
use crate::error::{EXIT_OK, EXIT_PARTIAL};
use crate::pipeline::RunOptions;
use crate::pipeline::test_send::{TestSendOptions, send_test as run_test_send};

pub async fn send_test(args: SendTestArgs) -> anyhow::Result<i32> {
    let mut run = RunOptions::new(&args.pipeline.pipeline);
    run.load = super::run::load_options(&args.pipeline, args.output.clone());
    run.as_of = args.as_of;
    run.state_dir = Some(args.state_dir.clone());
    let opts = TestSendOptions {
        run,
        campaign: args.campaign,
        step: args.step,
        to: args.to,
        rows: args.rows,
        channel: args.channel,
    };
    let r = run_test_send(&opts).await?;
    println!(
        "test send: campaign {}, step {} ({} through channel {}{}), as_of {}: {} sample row(s) of {}",
        r.campaign,
        r.step,
        r.medium.as_str(),
        r.channel,
        if r.sandbox {
            ", sandbox: accepted, not delivered"
        } else {
            ""
        },
        r.as_of,
        r.sends
            .iter()
            .map(|s| &s.sample_customer_id)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        r.audience_rows
    );
    println!(
        "{:<16} {:<28} {:<12} provider id / reason",
        "sample", "recipient", "outcome"
    );
    for s in &r.sends {
        let detail = s
            .provider_message_id
            .as_deref()
            .or(s.reason.as_deref())
            .unwrap_or("");
        println!(
            "{:<16} {:<28} {:<12} {detail}",
            s.sample_customer_id, s.recipient_masked, s.outcome
        );
    }
    println!(
        "Subjects (SMS: texts) start with \"[TEST] \"; recorded in the state table test_sends, \
         never in the send ledger or the results."
    );
    if let Some((why, blame)) = &r.stopped {
        eprintln!("error: {why}");
        return Ok(blame.exit_code());
    }
    Ok(if r.sends.iter().all(|s| s.outcome == "delivered") {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}
