//! The plan phase: [`Computed`] → [`Planned`]. After the stages, plan every campaign from
//! the session's tables (audiences, contacts, unsubscribes, last purchases) and the send
//! ledger, which it reads and never writes; register and stage `suppressed` and `holdout`.
//! Before planning, the in-flight rows of a process that died become `unknown`, and the
//! `unknown` rows old enough are settled with the providers (`crate::delivery::reconcile`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;

use super::campaign_inputs::{self as inputs, stage_err};
use super::channels::build_channels;
use super::compute::{ComputeRecord, Computed};
use super::session::channel_rules;
use super::{RunOptions, SendMode};
use crate::campaign::{Campaign, Plan, PlanInput};
use crate::config::Pipeline;
use crate::error::PipelineError;
use crate::message::SendState;
use crate::output::{OutputWriter, WrittenTable};
use crate::state::State;
use crate::state_tables::suppressions_table;
use crate::unsubscribe_token::{TokenKeyError, TokenKeys};

/// The output tables planning adds beside the stages.
pub const SUPPRESSED: &str = "suppressed";
pub const HOLDOUT: &str = "holdout";

/// A computed pipeline with tonight's campaign decisions, nothing committed or sent yet.
/// The session is gone: what follows needs only the staged tables and the decisions.
pub struct Planned {
    pub pipeline: Pipeline,
    pub campaigns: Vec<Campaign>,
    pub as_of: NaiveDate,
    /// The staged tables to commit.
    pub written: Vec<WrittenTable>,
    pub record: ComputeRecord,
    /// `None` when this run's campaigns do not act (no state folder, `--no-send`,
    /// `--select`, no campaigns).
    pub plan: Option<CampaignPlan>,
}

/// The campaigns' decisions, to be recorded and delivered after the commit.
pub struct CampaignPlan {
    pub plan: Plan,
    /// Recipients a dead process left `in_flight`, now `unknown`.
    pub unknown_recovered: u64,
}

/// Plan the campaigns (when this run acts) in the query task: they read the session's
/// tables. `suppressed` and `holdout` are staged when they are outputs.
pub async fn plan_phase(
    mut computed: Computed,
    opts: &RunOptions,
    state: Option<&State>,
    outbox: &Path,
    writer: &OutputWriter,
) -> Result<Planned, PipelineError> {
    let plan = match state {
        Some(state) => Some(plan_campaigns(&mut computed, opts, state, outbox, writer).await?),
        None => None,
    };
    let Computed {
        prepared,
        written,
        record,
    } = computed;
    Ok(Planned {
        pipeline: prepared.pipeline,
        campaigns: prepared.campaigns,
        as_of: prepared.as_of,
        written,
        record,
        plan,
    })
}

async fn plan_campaigns(
    computed: &mut Computed,
    opts: &RunOptions,
    state: &State,
    outbox: &Path,
    writer: &OutputWriter,
) -> Result<CampaignPlan, PipelineError> {
    let unknown_recovered = settle_before_planning(computed, opts, state, outbox).await?;
    let p = &computed.prepared;
    let tokens = token_keys(&p.pipeline, opts.send, &|v| std::env::var(v).ok())?;
    let plan = plan(
        &p.ctx,
        &p.pipeline,
        &p.campaigns,
        p.as_of,
        state,
        Utc::now(),
        &tokens,
    )
    .await?;
    for table in [SUPPRESSED, HOLDOUT, suppressions_table::TABLE] {
        if p.pipeline.output.lists(table) {
            let format = p.pipeline.output.format_of(table);
            let staged = writer.write_to_staging(&p.ctx, table, format).await?;
            computed.written.push(staged);
        }
    }
    Ok(CampaignPlan {
        plan,
        unknown_recovered,
    })
}

/// When sending: the in-flight rows of a process that died become `unknown`, then what can
/// be settled with the providers is, so `not_sent` rows go out tonight. Returns how many
/// rows were recovered as `unknown`.
async fn settle_before_planning(
    computed: &Computed,
    opts: &RunOptions,
    state: &State,
    outbox: &Path,
) -> Result<u64, PipelineError> {
    if opts.send != SendMode::Send {
        return Ok(0);
    }
    let rows = state
        .recover_in_flight()
        .map_err(|e| PipelineError::state(&e))?;
    if !rows.is_empty() {
        tracing::error!(
            recipients = rows.len(),
            "recipients were in flight when a process died: now `unknown`, not sent again until reconciled (see `winback sends --unknown`)"
        );
    }
    let reconcile = crate::delivery::reconcile::ReconcileOptions::default();
    let build = || build_channels(&computed.prepared.pipeline, outbox);
    match crate::delivery::reconcile::reconcile(state, build, &reconcile, Utc::now()).await {
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
    Ok(rows.len() as u64)
}

/// The keys unsubscribe tokens are signed with. A run that sends through a channel that
/// reaches people needs its configured secrets; the file channel and dry runs may use the
/// public development secret, and say so. Never a silent fallback.
pub fn token_keys(
    pipeline: &Pipeline,
    send: SendMode,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TokenKeys, PipelineError> {
    let configured = &pipeline.delivery.token_secret_envs;
    let refused = |message: String| {
        PipelineError::Config(crate::error::ConfigError::Invalid {
            path: pipeline.file.clone(),
            message,
        })
    };
    let keys = match TokenKeys::from_env(configured, env) {
        Ok(keys) => keys,
        Err(e @ TokenKeyError::TooShort { .. }) => return Err(refused(e.to_string())),
        Err(e @ TokenKeyError::Unset { .. }) => {
            let reaching = pipeline
                .channels
                .iter()
                .find(|(_, c)| !matches!(c.config, crate::channels::ChannelConfig::File(_)));
            if let (SendMode::Send, Some((name, _))) = (send, reaching) {
                return Err(refused(format!(
                    "{e} (channel {name:?} sends to real recipients)"
                )));
            }
            TokenKeys::development()
        }
    };
    if keys.is_development() {
        tracing::warn!(
            "unsubscribe tokens are signed with winback's public development secret: fine for \
             files and dry runs, never for real recipients (set delivery.token_secret_env)"
        );
    }
    Ok(keys)
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
    tokens: &TokenKeys,
) -> Result<Plan, PipelineError> {
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
        .ledger_entries(since)
        .map_err(|e| PipelineError::state(&e))?;
    // The customers a plan can reach: today's audiences and the sequences under way.
    let wanted: std::collections::HashSet<&str> = audiences
        .values()
        .flatten()
        .map(|r| r.customer_id.as_str())
        .chain(ledger.iter().map(|s| s.customer_id.as_str()))
        .collect();
    let contacts = inputs::contacts(ctx, &wanted).await?;
    let mut unsubscribes = inputs::unsubscribes(ctx).await?;
    // What winback recorded itself (one-click unsubscribes, bounces, complaints, STOP
    // replies): honoured whatever `as_of` this run is for.
    for s in state.suppressions().map_err(|e| PipelineError::state(&e))? {
        unsubscribes.push(crate::campaign::Unsubscribe {
            customer_id: s.customer_id,
            address: s.address,
            medium: s.medium,
            at: s.at,
            reason: crate::campaign::suppression_reason(&s.reason),
        });
    }
    let last_purchase = inputs::last_purchases(ctx, &wanted).await?;
    // And the read buffers of the scans over `customers` and `customer_summary`.
    crate::memory_cap::release_free_memory();
    crate::memory_cap::trace_resident("plan: contacts read");
    let channels = channel_rules(pipeline);
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
        tokens,
        staff: &pipeline.staff,
        warn_deferred_nights: pipeline.delivery.warn_deferred_nights,
        budget: pipeline.budget.as_ref(),
    };
    let plan = crate::campaign::plan(&input).map_err(|e| stage_err("plan", e))?;
    let s = &plan.summary;
    if s.timezones_inferred.total() > 0 {
        tracing::info!(
            from_country = s.timezones_inferred.country,
            from_phone = s.timezones_inferred.phone,
            pipeline = s.timezones_inferred.pipeline,
            "customers without a valid timezone: inferred for quiet hours"
        );
    }
    if s.repeated_deferrals > 0 {
        tracing::warn!(
            steps = s.repeated_deferrals,
            nights = s.repeated_deferral_nights,
            "steps deferred night after night: their recipients' window is closed when the run sends (check the schedule's hour, the channel's quiet_hours, or defer = \"schedule\")"
        );
    }
    crate::memory_cap::trace_resident("plan: planned");
    register_decisions(ctx, &plan)
        .await
        .map_err(|e| stage_err("tables", e))?;
    Ok(plan)
}

/// `suppressed` (suppressed and deferred recipients, with the reason) and `holdout` (the
/// control group, "would have been sent", with `would_be_suppressed`: the rule that would
/// have stopped the message, or null). Neither holds an address.
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
    let mut held_fields = fields.clone();
    held_fields.push(Field::new("would_be_suppressed", DataType::Utf8, true));
    let mut held_cols = common(&held);
    held_cols.push(Arc::new(StringArray::from_iter(
        held.iter().map(|d| d.would_be_suppressed.as_deref()),
    )));
    let holdout = RecordBatch::try_new(Arc::new(Schema::new(held_fields)), held_cols)?;
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
