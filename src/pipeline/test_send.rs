//! `winback send-test`: one step of a campaign rendered for a few sample rows of its
//! audience and sent to internal addresses through the step's real channel, the way a run
//! would render and send it. The audience is computed by the run's own phases (the
//! [`Session`], only the audience stage and what it reads); the messages are built by
//! `campaign::test_send`, sent by `delivery::test_send` and recorded in the state table
//! `test_sends`, never in the ledger: no customer row is written, results never count
//! them.

use std::path::PathBuf;

use chrono::{NaiveDate, SecondsFormat};

use super::RunOptions;
use super::campaign_inputs::audience;
use super::channels::build_channel;
use super::session::{Mode, Session};
use crate::campaign::test_send::{self as tests, TestSendInput};
use crate::delivery::test_send::{self as sending, TestMessage};
use crate::error::{Blame, ConfigError, PipelineError};
use crate::state::{State, TestSend};

/// What `send-test` sends.
#[derive(Clone)]
pub struct TestSendOptions {
    /// The pipeline, `as_of` (default today), overrides, engine and state folder.
    pub run: RunOptions,
    pub campaign: String,
    /// 1-based step of the campaign.
    pub step: u32,
    pub to: Vec<String>,
    /// Sample rows rendered (the lowest customer ids of the audience).
    pub rows: usize,
    /// One of the step's channels; None: the first whose medium `to` is.
    pub channel: Option<String>,
}

/// What a test send did.
#[derive(Debug, Clone)]
pub struct TestSendReport {
    pub campaign: String,
    pub step: u32,
    pub channel: String,
    pub medium: crate::message::Medium,
    pub sandbox: bool,
    pub as_of: NaiveDate,
    /// Rows of the campaign's audience for `as_of`.
    pub audience_rows: usize,
    /// One per (sample row, recipient), or one per sample row that did not render.
    pub sends: Vec<TestSend>,
    /// Why the channel stopped, and whose fault that is.
    pub stopped: Option<(String, Blame)>,
}

fn usage(problems: Vec<String>) -> PipelineError {
    ConfigError::Many(problems).into()
}

/// Compute the campaign's audience, render the step for the sample rows, send each to
/// every recipient and record it in `test_sends`. Nothing is read from the sources before
/// the campaign, step, recipients and channel are checked.
pub async fn send_test(opts: &TestSendOptions) -> Result<TestSendReport, PipelineError> {
    let session = Session::open(&opts.run, Mode::Run).await?;
    let campaign = match session.campaigns.iter().find(|c| c.name == opts.campaign) {
        Some(c) => c.clone(),
        None if !session.problems.is_empty() => return Err(usage(session.problems)),
        None => {
            let known: Vec<&str> = session.campaigns.iter().map(|c| c.name.as_str()).collect();
            return Err(usage(vec![format!(
                "--campaign {}: no such campaign (the pipeline has: {})",
                opts.campaign,
                known.join(", ")
            )]));
        }
    };
    let Some(step) = campaign
        .steps
        .iter()
        .find(|s| s.number == opts.step)
        .cloned()
    else {
        return Err(usage(vec![format!(
            "--step {}: campaign {} has steps 1 to {}",
            opts.step,
            campaign.name,
            campaign.steps.len()
        )]));
    };
    let chosen = match tests::choose_channel(&step, opts.channel.as_deref(), &opts.to) {
        Ok(c) => c,
        Err(problem) => return Err(usage(vec![problem])),
    };
    let mut problems = tests::check_recipients(chosen.medium, &opts.to);
    if !(1..=tests::MAX_ROWS).contains(&opts.rows) {
        problems.push(format!("--rows must be 1 to {}", tests::MAX_ROWS));
    }
    if !problems.is_empty() {
        return Err(usage(problems));
    }
    let pipeline = session.pipeline.clone();
    let state_dir = opts.run.state_dir.clone().unwrap_or(".winback".into());
    let channel = build_channel(&pipeline, &chosen.name, &outbox(&pipeline, &state_dir)?)
        .ok_or_else(|| PipelineError::Internal(format!("no channel {}", chosen.name)))?
        .map_err(|e| PipelineError::Delivery {
            message: e.to_string(),
            blame: e.blame(),
        })?;
    let sandbox = pipeline
        .channels
        .get(&chosen.name)
        .is_some_and(|c| c.config.sandbox());
    let state = State::open(&state_dir).map_err(|e| PipelineError::state(&e))?;

    // The audience, by the run's phases: its stage and the stages it reads.
    let mut run = opts.run.clone();
    run.select = vec![campaign.audience.clone()];
    let as_of = session.as_of;
    let prepared = session.prepare(&run).await?;
    crate::stage::executor::run_all(
        &prepared.ctx,
        &prepared.graph,
        &prepared.pipeline.stages,
        &prepared.params,
        &run.progress,
        &crate::stage::executor::Lifecycle::default(),
    )
    .await?;
    let rows = audience(&prepared.ctx, &campaign).await?;
    let audience_rows = rows.len();
    let samples = tests::sample(rows, opts.rows);
    if samples.is_empty() {
        return Err(PipelineError::Stage {
            stage: campaign.audience.clone(),
            file: String::new(),
            message: format!(
                "the audience of campaign {} has no rows for as_of {as_of}: nothing to render (try another --as-of)",
                campaign.name
            ),
            blame: Blame::Internal,
        });
    }

    let now = state.now();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let rendered = tests::test_messages(&TestSendInput {
        campaign: &campaign,
        step: &step,
        channel: &chosen,
        samples: &samples,
        to: &opts.to,
        as_of,
        stamp: &stamp,
    });
    let mut sends = Vec::new();
    let mut messages = Vec::new();
    for r in rendered {
        match r.messages {
            Ok(ms) => messages.extend(ms.into_iter().map(|message| TestMessage {
                sample_customer_id: r.sample_customer_id.clone(),
                message,
            })),
            Err(e) => sends.push(TestSend {
                campaign: campaign.name.clone(),
                step: step.number,
                channel: chosen.name.clone(),
                medium: chosen.medium.as_str().to_string(),
                sample_customer_id: r.sample_customer_id,
                recipient_masked: "-".into(),
                sandbox,
                sent_at: now,
                outcome: "render_error".into(),
                reason: Some(e.to_string()),
                provider_message_id: None,
            }),
        }
    }
    let (sent, halt) = sending::send(channel.as_ref(), &messages, sandbox, now).await;
    sends.extend(sent);
    state
        .record_test_sends(&sends)
        .map_err(|e| PipelineError::state(&e))?;
    Ok(TestSendReport {
        campaign: campaign.name.clone(),
        step: step.number,
        channel: chosen.name.clone(),
        medium: chosen.medium,
        sandbox,
        as_of,
        audience_rows,
        sends,
        stopped: halt.map(|e| (e.to_string(), e.blame())),
    })
}

/// Where a file channel writes test messages: `_outbox/test_sends/` beside the outputs on
/// a local disk, else in the state folder; never a run's `as_of=` outbox.
fn outbox(
    pipeline: &crate::config::Pipeline,
    state_dir: &std::path::Path,
) -> Result<PathBuf, PipelineError> {
    let root = crate::storage::locate(&pipeline.output.url)?;
    Ok(match root.local_dir() {
        Some(dir) => dir.join("_outbox").join("test_sends"),
        None => state_dir.join("outbox").join("test_sends"),
    })
}
