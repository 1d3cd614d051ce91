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
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;

use super::setup::channel_rules;
use crate::campaign::message::{Medium, Message, SendState};
use crate::campaign::{AudienceRow, Campaign, Contact, IdMap, Plan, PlanInput, Unsubscribe};
use crate::clock::Clock;
use crate::config::Pipeline;
pub use crate::delivery::report::{CampaignsReport, SendMode};
use crate::delivery::{DeliveryOptions, deliver};
use crate::error::{Blame, ConfigError, PipelineError};
use crate::state::{LedgerDecision, State};

/// The output tables planning adds beside the stages.
pub const SUPPRESSED: &str = "suppressed";
pub const HOLDOUT: &str = "holdout";

fn stage_err(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Stage {
        stage: format!("campaigns.{what}"),
        file: String::new(),
        message: e.to_string(),
        blame: Blame::Internal,
    }
}

/// Tables planning reads, kept in the session until it has.
pub fn tables_read(campaigns: &[Campaign]) -> Vec<String> {
    let mut t: Vec<String> = campaigns.iter().map(|c| c.audience.clone()).collect();
    t.extend(["customers", "unsubscribes", "customer_summary"].map(String::from));
    t
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, PipelineError> {
    let df = ctx.sql(sql).await.map_err(|e| stage_err("read", e))?;
    df.collect().await.map_err(|e| stage_err("read", e))
}

fn has(ctx: &SessionContext, table: &str) -> bool {
    ctx.table_exist(table).unwrap_or(false)
}

async fn columns_of(ctx: &SessionContext, table: &str) -> Vec<String> {
    match ctx.table(table).await {
        Ok(df) => df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        Err(_) => vec![],
    }
}

fn text(col: &ArrayRef) -> Result<StringArray, PipelineError> {
    let c = cast(col, &DataType::Utf8).map_err(|e| stage_err("read", e))?;
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new())))
}

/// The audience rows of one campaign, with every column as a template field.
async fn audience(ctx: &SessionContext, c: &Campaign) -> Result<Vec<AudienceRow>, PipelineError> {
    let columns = columns_of(ctx, &c.audience).await;
    let problems = c.validate_fields(&columns);
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    let batches = collect(ctx, &format!("select * from \"{}\"", c.audience)).await?;
    let mut rows = Vec::new();
    for b in &batches {
        let ids = text(b.column_by_name("customer_id").expect("validated column"))?;
        let entry = cast(
            b.column_by_name("entry_date").expect("validated column"),
            &DataType::Date32,
        )
        .map_err(|e| stage_err(&c.name, e))?;
        let entry = entry
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("cast to Date32");
        let value = cast(
            b.column_by_name(&c.value_column).expect("validated column"),
            &DataType::Float64,
        )
        .map_err(|e| stage_err(&c.name, e))?;
        let value = value
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to Float64");
        let fields = json_rows(b)?;
        for (i, fields) in fields.into_iter().enumerate() {
            if ids.is_null(i) || entry.is_null(i) {
                continue;
            }
            rows.push(AudienceRow {
                customer_id: ids.value(i).to_string(),
                entry_date: entry.value_as_date(i).expect("a valid date"),
                value: if value.is_null(i) {
                    0.0
                } else {
                    value.value(i)
                },
                fields: Arc::new(fields),
            });
        }
    }
    Ok(rows)
}

/// Every row of `b` as a map of column name to JSON value (dates as `YYYY-MM-DD`).
fn json_rows(b: &RecordBatch) -> Result<Vec<BTreeMap<String, serde_json::Value>>, PipelineError> {
    let mut buf = Vec::new();
    let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
    w.write(b).map_err(|e| stage_err("fields", e))?;
    w.finish().map_err(|e| stage_err("fields", e))?;
    drop(w);
    if buf.is_empty() {
        return Ok(vec![BTreeMap::new(); b.num_rows()]);
    }
    let mut rows: Vec<BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(&buf).map_err(|e| stage_err("fields", e))?;
    // The JSON writer leaves nulls out: a template sees them as null, not as missing.
    for row in &mut rows {
        for f in b.schema().fields() {
            row.entry(f.name().clone())
                .or_insert(serde_json::Value::Null);
        }
    }
    Ok(rows)
}

/// Contacts from the `customers` source (no row, or a null consent, is no consent).
async fn contacts(ctx: &SessionContext) -> Result<IdMap<String, Contact>, PipelineError> {
    let mut out = IdMap::default();
    if !has(ctx, "customers") {
        return Ok(out);
    }
    let have = columns_of(ctx, "customers").await;
    let col = |c: &str, ty: &str| {
        if have.iter().any(|h| h == c) {
            format!("cast(\"{c}\" as {ty}) as \"{c}\"")
        } else {
            format!("cast(null as {ty}) as \"{c}\"")
        }
    };
    let sql = format!(
        "select cast(customer_id as varchar) as customer_id, {}, {}, {}, {}, {} from customers",
        col("email", "varchar"),
        col("phone", "varchar"),
        col("consent_email", "boolean"),
        col("consent_sms", "boolean"),
        col("timezone", "varchar"),
    );
    for b in collect(ctx, &sql).await? {
        let s = |i: usize| text(b.column(i));
        let (ids, email, phone, tz) = (s(0)?, s(1)?, s(2)?, s(5)?);
        let flag = |i: usize| b.column(i).as_any().downcast_ref::<BooleanArray>().cloned();
        let (ce, cs) = (flag(3), flag(4));
        let get = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
        let consent = |a: &Option<BooleanArray>, i: usize| {
            a.as_ref().and_then(|a| (!a.is_null(i)).then(|| a.value(i)))
        };
        for i in 0..b.num_rows() {
            if ids.is_null(i) {
                continue;
            }
            out.insert(
                ids.value(i).to_string(),
                Contact {
                    email: get(&email, i),
                    phone: get(&phone, i),
                    consent_email: consent(&ce, i),
                    consent_sms: consent(&cs, i),
                    timezone: get(&tz, i).and_then(|t| t.parse().ok()),
                    unsubscribe_token: None,
                },
            );
        }
    }
    Ok(out)
}

/// The optional `unsubscribes` source: customer or address, channel (`email`, `sms`, or
/// anything else for all), time.
async fn unsubscribes(ctx: &SessionContext) -> Result<Vec<Unsubscribe>, PipelineError> {
    if !has(ctx, "unsubscribes") {
        return Ok(vec![]);
    }
    let have = columns_of(ctx, "unsubscribes").await;
    let col = |c: &str| {
        if have.iter().any(|h| h == c) {
            format!("cast(\"{c}\" as varchar)")
        } else {
            "cast(null as varchar)".to_string()
        }
    };
    let sql = format!(
        "select {}, {}, {}, cast({} as varchar) from unsubscribes",
        col("customer_id"),
        col("address"),
        col("channel"),
        if have.iter().any(|h| h == "ts") {
            "ts"
        } else {
            "null"
        }
    );
    let mut out = Vec::new();
    for b in collect(ctx, &sql).await? {
        let (ids, addr, chan) = (text(b.column(0))?, text(b.column(1))?, text(b.column(2))?);
        for i in 0..b.num_rows() {
            let get = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            let medium = match get(&chan)
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("email") => Some(Medium::Email),
                Some("sms") => Some(Medium::Sms),
                _ => None,
            };
            out.push(Unsubscribe {
                customer_id: get(&ids),
                address: get(&addr),
                medium,
                at: Utc::now(),
            });
        }
    }
    Ok(out)
}

/// Each customer's last purchase date (from `customer_summary`).
async fn last_purchases(ctx: &SessionContext) -> Result<IdMap<String, NaiveDate>, PipelineError> {
    let mut out = IdMap::default();
    if !has(ctx, "customer_summary") {
        return Ok(out);
    }
    let sql = "select cast(customer_id as varchar), cast(last_purchase_date as date) from customer_summary";
    for b in collect(ctx, sql).await? {
        let ids = text(b.column(0))?;
        let Some(days) = b.column(1).as_any().downcast_ref::<Date32Array>() else {
            continue;
        };
        for i in 0..b.num_rows() {
            if let (false, Some(d)) = (ids.is_null(i), days.value_as_date(i)) {
                out.insert(ids.value(i).to_string(), d);
            }
        }
    }
    Ok(out)
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
) -> Result<Plan, PipelineError> {
    let mut audiences = HashMap::new();
    for c in campaigns {
        audiences.insert(c.name.clone(), audience(ctx, c).await?);
    }
    let contacts = contacts(ctx).await?;
    let unsubscribes = unsubscribes(ctx).await?;
    let last_purchase = last_purchases(ctx).await?;
    let since = as_of - chrono::Days::new(400);
    let ledger = state
        .past_sends(since)
        .map_err(|e| stage_err("ledger", e))?;
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
    register_decisions(ctx, &plan).map_err(|e| stage_err("tables", e))?;
    Ok(plan)
}

/// `suppressed` (suppressed and deferred recipients, with the reason) and `holdout` (the
/// control group, "would have been sent"). Neither holds an address.
fn register_decisions(ctx: &SessionContext, plan: &Plan) -> datafusion::error::Result<()> {
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
        let _ = ctx.deregister_table(name);
        ctx.register_table(
            name,
            Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?),
        )?;
    }
    Ok(())
}

/// A ledger row for a recipient who is not sent (no content, the address when known).
fn ledger_row(d: &crate::campaign::Decision, as_of: NaiveDate) -> LedgerDecision {
    LedgerDecision {
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
}

/// Record every decision, then send each channel's messages. A channel whose credentials
/// are refused stops at once; the others go on; the error names the channel and variable.
pub async fn send(
    plan: Plan,
    as_of: NaiveDate,
    unknown_recovered: u64,
    d: &Delivering<'_>,
) -> Result<CampaignsReport, PipelineError> {
    let mut report = CampaignsReport {
        mode: d.mode,
        unknown_recovered,
        plan: plan.summary.clone(),
        deliveries: vec![],
        errors: vec![],
    };
    let ledger_err = |e: crate::state::StateError| PipelineError::Stage {
        stage: "campaigns.ledger".into(),
        file: String::new(),
        message: e.to_string(),
        blame: Blame::External,
    };
    if d.mode == SendMode::Send {
        let mut rows: Vec<LedgerDecision> = plan
            .decisions
            .iter()
            .map(|x| ledger_row(x, as_of))
            .collect();
        rows.extend(plan.send.iter().map(|m| LedgerDecision {
            message: m.clone(),
            entry_date: m.entry_date,
            state: SendState::Planned,
            reason: None,
        }));
        d.state.record_decisions(&rows).map_err(ledger_err)?;
    }
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
    let mut by_channel: BTreeMap<(String, bool), Vec<Message>> = BTreeMap::new();
    for m in plan.send {
        let again = resend.get(m.campaign.as_str()).copied().unwrap_or(false);
        by_channel
            .entry((m.channel.clone(), again))
            .or_default()
            .push(m);
    }
    let env = |k: &str| std::env::var(k).ok();
    let ctx = crate::channels::config::BuildContext {
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
        if d.mode == SendMode::DryRun {
            opts.dry_run = Some(d.outbox.clone());
        }
        match deliver(d.state, built, messages, opts).await {
            Ok(r) => report.deliveries.push(r),
            Err(e) => {
                tracing::error!(channel = %name, error = %e, "channel stopped");
                report.errors.push(e.to_string());
            }
        }
    }
    Ok(report)
}
