//! The "act" half of a run: after the stages, plan every campaign from the session's
//! tables (audiences, contacts, unsubscribes, last purchases) and the send ledger; after
//! the commit, record every decision in the ledger and deliver through the channels.
//!
//! Order matters for never messaging anyone twice: decisions are written to the ledger
//! before any request; each batch is written `in_flight` before its request and its outcome
//! after (`crate::delivery`); rows a dead process left `in_flight` become `unknown` at the
//! next run, under the same run lock, and are not sent again unless a campaign says so.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;

use super::campaign_inputs::{self as inputs, stage_err};
use super::setup::channel_rules;
use crate::campaign::{Campaign, Draft, Plan, PlanInput};
use crate::clock::Clock;
use crate::config::Pipeline;
pub use crate::delivery::report::{CampaignsReport, SendMode};
use crate::delivery::{DeliveryOptions, deliver};
use crate::error::{Blame, PipelineError};
use crate::message::{Message, SendState};
use crate::state::{LedgerDecision, State, Tags};

/// The output tables planning adds beside the stages.
pub const SUPPRESSED: &str = "suppressed";
pub const HOLDOUT: &str = "holdout";

/// Tables planning reads, kept in the session until it has.
pub fn tables_read(campaigns: &[Campaign]) -> Vec<String> {
    let mut t: Vec<String> = campaigns.iter().map(|c| c.audience.clone()).collect();
    t.extend(["customers", "unsubscribes", "customer_summary"].map(String::from));
    t
}

/// Decide tonight's messages and everyone else's fate, and register the `suppressed` and
/// `holdout` tables. Reads the ledger, writes nothing to it.
pub async fn plan(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    campaigns: &[Campaign],
    as_of: NaiveDate,
    state: &State,
    now: DateTime<Utc>,
) -> Result<Planned, PipelineError> {
    // The stages' freed buffers go back to the system before planning fills memory again.
    crate::memory_cap::release_free_memory();
    crate::memory_cap::trace_resident("plan: start");
    let mut audiences = HashMap::new();
    for c in campaigns {
        audiences.insert(c.name.clone(), inputs::audience(ctx, c).await?);
    }
    crate::memory_cap::trace_resident("plan: audiences read");
    let since = as_of - chrono::Days::new(400);
    let ledger = state
        .past_sends(since)
        .map_err(|e| stage_err("ledger", e))?;
    // The customers a plan can reach: today's audiences and the sequences under way.
    let wanted: std::collections::HashSet<&str> = audiences
        .values()
        .flatten()
        .map(|r| r.customer_id.as_str())
        .chain(ledger.iter().map(|s| s.customer_id.as_str()))
        .collect();
    let contacts = inputs::contacts(ctx, &wanted).await?;
    let mut unsubscribes = inputs::unsubscribes(ctx).await?;
    // Opt-outs providers reported (a STOP reply): honoured whatever `as_of` this run is for.
    for o in state.opt_outs().map_err(|e| stage_err("opt_outs", e))? {
        unsubscribes.push(crate::campaign::Unsubscribe {
            customer_id: Some(o.customer_id),
            address: o.address,
            medium: crate::message::Medium::parse(&o.medium),
            at: o.at,
        });
    }
    let last_purchase = inputs::last_purchases(ctx, &wanted).await?;
    // And the read buffers of the scans over `customers` and `customer_summary`.
    crate::memory_cap::release_free_memory();
    crate::memory_cap::trace_resident("plan: contacts read");
    let channels = channel_rules(pipeline);
    let secret = pipeline
        .delivery
        .token_secret_env
        .as_deref()
        .and_then(|v| std::env::var(v).ok())
        .unwrap_or_else(|| pipeline.name.clone());
    let input = PlanInput {
        as_of,
        now,
        timezone: pipeline.timezone,
        campaigns,
        channels: &channels,
        audiences: &audiences,
        contacts: &contacts,
        unsubscribes: &unsubscribes,
        ledger: &ledger,
        last_purchase: &last_purchase,
        frequency_cap: pipeline.delivery.frequency_cap,
        token_secret: &secret,
    };
    let plan = crate::campaign::plan(&input).map_err(|e| stage_err("plan", e))?;
    crate::memory_cap::trace_resident("plan: planned");
    register_decisions(ctx, &plan)
        .await
        .map_err(|e| stage_err("tables", e))?;
    Ok(Planned { plan })
}

/// `suppressed` (suppressed and deferred recipients, with the reason) and `holdout` (the
/// control group, "would have been sent"). Neither holds an address.
async fn register_decisions(ctx: &SessionContext, plan: &Plan) -> datafusion::error::Result<()> {
    let (held, rest): (Vec<_>, Vec<_>) = plan
        .decisions
        .iter()
        .partition(|d| d.state == SendState::Holdout);
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    let common = |rows: &[&crate::campaign::Decision]| -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|d| d.campaign.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|d| d.step as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|d| d.customer_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|d| d.channel.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|d| d.medium.as_str()),
            )),
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|d| {
                crate::config::variables::days_since_epoch(d.entry_date)
            }))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|d| d.value))),
        ]
    };
    let mut fields = vec![
        text("campaign"),
        Field::new("step", DataType::Int64, false),
        text("customer_id"),
        text("channel"),
        text("medium"),
        Field::new("entry_date", DataType::Date32, false),
        Field::new("value", DataType::Float64, false),
    ];
    let holdout = RecordBatch::try_new(Arc::new(Schema::new(fields.clone())), common(&held))?;
    fields.extend([
        text("state"),
        text("reason"),
        Field::new("detail", DataType::Utf8, true),
    ]);
    let mut cols = common(&rest);
    cols.push(Arc::new(StringArray::from_iter_values(
        rest.iter().map(|d| d.state.as_str()),
    )));
    cols.push(Arc::new(StringArray::from_iter_values(
        rest.iter().map(|d| d.reason.as_str()),
    )));
    cols.push(Arc::new(StringArray::from_iter(
        rest.iter().map(|d| d.detail.as_deref()),
    )));
    let suppressed = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    for (name, batch) in [(HOLDOUT, holdout), (SUPPRESSED, suppressed)] {
        crate::engine::keep_batches(ctx, name, batch.schema(), vec![batch]).await?;
    }
    Ok(())
}

/// What the audience said of a recipient when the decision was made.
fn tags(fields: &crate::campaign::Fields, value: f64) -> Tags {
    Tags {
        segment: fields.text("segment"),
        treatment: fields.text("treatment"),
        value: Some(value),
    }
}

/// A ledger row for a recipient who is not sent (no content, the address when known).
fn ledger_row(d: &crate::campaign::Decision, as_of: NaiveDate) -> LedgerDecision {
    LedgerDecision {
        tags: tags(&d.fields, d.value),
        message: Message {
            campaign: d.campaign.clone(),
            step: d.step,
            customer_id: d.customer_id.clone(),
            channel: d.channel.clone(),
            medium: d.medium,
            to: d.address.clone().unwrap_or_default(),
            idempotency_key: d.idempotency_key.clone(),
            as_of,
            entry_date: d.entry_date,
            subject: None,
            html: None,
            text: String::new(),
            unsubscribe_url: None,
            unsubscribe_mailto: None,
            cost: 0.0,
        },
        entry_date: d.entry_date,
        state: d.state,
        reason: Some(d.reason.clone()),
    }
}

/// A planned message's ledger row (`planned`; no content: the ledger never holds it).
fn planned_row(draft: &Draft) -> LedgerDecision {
    LedgerDecision {
        tags: tags(&draft.fields, draft.value),
        message: draft.message.clone(),
        entry_date: draft.message.entry_date,
        state: SendState::Planned,
        reason: None,
    }
}

/// Decisions are written in transactions of this many rows, so the ledger rows of a
/// million recipients are never all in memory at once. All are written before any send.
const RECORD_CHUNK: usize = 10_000;

/// A run's plan, to be recorded and delivered after the commit.
pub struct Planned {
    pub plan: Plan,
}

/// Everything delivery needs besides the plan.
pub struct Delivering<'a> {
    pub pipeline: &'a Pipeline,
    pub campaigns: &'a [Campaign],
    pub state: &'a State,
    pub mode: SendMode,
    /// The file channel's folder, and where a dry run writes its requests.
    pub outbox: PathBuf,
    pub cancel: tokio_util::sync::CancellationToken,
    pub clock: Arc<dyn Clock>,
    /// The run's lock, recorded with each reservation.
    pub owner: Option<crate::state::RunOwner>,
}

/// Every channel of the pipeline that can be built (its secrets set), by name, and why
/// each other one cannot.
pub fn build_channels(
    pipeline: &Pipeline,
    outbox: &std::path::Path,
) -> crate::delivery::reconcile::Built {
    let env = |k: &str| std::env::var(k).ok();
    let ctx = crate::channels::BuildContext {
        outbox: outbox.to_path_buf(),
    };
    let (mut built, mut missing) = (BTreeMap::new(), BTreeMap::new());
    for (name, channel) in &pipeline.channels {
        match channel.config.build(name, &env, &ctx) {
            Ok(c) => {
                built.insert(name.clone(), c);
            }
            Err(e) => {
                missing.insert(name.clone(), e.to_string());
            }
        }
    }
    (built, missing)
}

/// Record every decision, then send each channel's messages. A channel whose credentials
/// are refused stops at once; the others go on; the error names the channel and variable.
pub async fn send(
    planned: Planned,
    as_of: NaiveDate,
    unknown_recovered: u64,
    d: &Delivering<'_>,
) -> Result<CampaignsReport, PipelineError> {
    let Planned { plan } = planned;
    let mut report = CampaignsReport {
        mode: d.mode,
        unknown_recovered,
        plan: plan.summary.clone(),
        deliveries: vec![],
        errors: vec![],
        blame: None,
    };
    let ledger_err = |e: crate::state::StateError| PipelineError::Stage {
        stage: "campaigns.ledger".into(),
        file: String::new(),
        message: e.to_string(),
        blame: Blame::External,
    };
    if d.mode == SendMode::Send {
        for chunk in plan.decisions.chunks(RECORD_CHUNK) {
            let rows: Vec<LedgerDecision> = chunk.iter().map(|x| ledger_row(x, as_of)).collect();
            d.state.record_decisions(&rows).map_err(ledger_err)?;
        }
        for chunk in plan.send.chunks(RECORD_CHUNK) {
            let rows: Vec<LedgerDecision> = chunk.iter().map(planned_row).collect();
            d.state.record_decisions(&rows).map_err(ledger_err)?;
        }
    }
    drop(plan.decisions);
    let resend: HashMap<&str, bool> = d
        .campaigns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.on_unknown == crate::campaign::config::OnUnknown::Resend,
            )
        })
        .collect();
    crate::memory_cap::trace_resident("send: decisions recorded");
    let mut by_channel: BTreeMap<(String, bool), Vec<Draft>> = BTreeMap::new();
    for draft in plan.send {
        let m = &draft.message;
        let again = resend.get(m.campaign.as_str()).copied().unwrap_or(false);
        by_channel
            .entry((m.channel.clone(), again))
            .or_default()
            .push(draft);
    }
    let env = |k: &str| std::env::var(k).ok();
    let ctx = crate::channels::BuildContext {
        outbox: d.outbox.clone(),
    };
    for ((name, resend_unknown), messages) in by_channel {
        let Some(channel) = d.pipeline.channels.get(&name) else {
            continue;
        };
        let built = channel
            .config
            .build(&name, &env, &ctx)
            .map_err(|e| PipelineError::Stage {
                stage: format!("channels.{name}"),
                file: d.pipeline.file.display().to_string(),
                message: e.to_string(),
                blame: Blame::User,
            })?;
        let mut opts = DeliveryOptions::new(d.clock.clone());
        opts.cancel = d.cancel.clone();
        opts.time_budget = d.pipeline.delivery.time_budget;
        opts.resend_unknown = resend_unknown;
        opts.owner = d.owner.clone();
        if d.mode == SendMode::DryRun {
            opts.dry_run = Some(d.outbox.clone());
        }
        match deliver(d.state, built, rendered(messages), opts).await {
            Ok(r) => report.deliveries.push(r),
            Err(e) => {
                tracing::error!(channel = %name, error = %e, "channel stopped");
                let blame = e.blame();
                report.blame = Some(report.blame.map_or(blame, |b| b.worst(blame)));
                report.errors.push(e.to_string());
            }
        }
    }
    crate::memory_cap::trace_resident("send: delivered");
    Ok(report)
}

/// The drafts' messages, each rendered as delivery takes it. Planning rendered every
/// draft once already, and rendering is deterministic: a failure here would be a bug. It
/// is logged (the template part, never the recipient) and the message stays `planned`
/// in the ledger, for the next run.
fn rendered(drafts: Vec<Draft>) -> impl Iterator<Item = Message> + Send + 'static {
    drafts.into_iter().filter_map(|draft| match draft.parts() {
        Ok(parts) => Some(draft.with(parts)),
        Err(e) => {
            tracing::error!(campaign = %draft.message.campaign, error = %e,
                "a planned message failed to render at send time: not sent");
            None
        }
    })
}

/// Where the file channel writes and a dry run puts its requests: beside the outputs on a
/// local disk, else in the state folder.
pub fn outbox_dir(
    root: &crate::storage::Location,
    as_of: &str,
    state_dir: Option<&std::path::Path>,
) -> std::path::PathBuf {
    let part = format!("as_of={as_of}");
    match root.local_dir() {
        Some(dir) => dir.join("_outbox").join(part),
        None => state_dir
            .unwrap_or(std::path::Path::new(".winback"))
            .join("outbox")
            .join(part),
    }
}

/// Plan the campaigns in the query task (they read the session's tables), after the
/// in-flight rows of a process that died are settled as `unknown`; stage `suppressed` and
/// `holdout` when they are outputs.
#[allow(clippy::too_many_arguments)]
pub async fn plan_in_run(
    p: &super::Prepared,
    opts: &super::RunOptions,
    state: &crate::state::State,
    outbox: &std::path::Path,
    writer: &crate::output::OutputWriter,
    written: &mut Vec<crate::output::WrittenTable>,
) -> Result<(Planned, u64), PipelineError> {
    let unknown = if opts.send == SendMode::Send {
        let rows = state
            .recover_in_flight()
            .map_err(|e| PipelineError::Internal(e.to_string()))?;
        if !rows.is_empty() {
            tracing::error!(
                recipients = rows.len(),
                "recipients were in flight when a process died: now `unknown`, not sent again until reconciled (see `winback sends --unknown`)"
            );
        }
        // Settle what can be settled before planning, so `not_sent` rows go out tonight.
        let opts = crate::delivery::reconcile::ReconcileOptions::default();
        let build = || build_channels(&p.pipeline, outbox);
        match crate::delivery::reconcile::reconcile(state, build, &opts, Utc::now()).await {
            Ok(r) if r.settled() > 0 || r.still_unknown() > 0 => tracing::info!(
                settled = r.settled(),
                still_unknown = r.still_unknown(),
                "reconciled unknown sends with the providers"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not reconcile unknown sends: they stay unknown")
            }
        }
        rows.len() as u64
    } else {
        0
    };
    let plan = plan(
        &p.ctx,
        &p.pipeline,
        &p.campaigns,
        p.as_of,
        state,
        Utc::now(),
    )
    .await?;
    for table in [SUPPRESSED, HOLDOUT] {
        let listed = p
            .pipeline
            .output
            .tables
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == table));
        if listed {
            let format = p
                .pipeline
                .output
                .formats
                .get(table)
                .copied()
                .unwrap_or(p.pipeline.output.format);
            written.push(writer.stage(&p.ctx, table, format).await?);
        }
    }
    Ok((plan, unknown))
}
