//! What campaign planning reads from a run's session: each audience's rows (every column a
//! template field), contacts, consent and timezones (inferred from `country` or the phone
//! when missing or invalid) from `customers`, the optional `unsubscribes`,
//! and each customer's last purchase.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;

use crate::campaign::{AudienceRow, Campaign, Contact, IdMap, Unsubscribe};
use crate::config::OPT_OUTS_SOURCE;
use crate::error::{Blame, ConfigError, PipelineError};
use crate::message::Medium;

pub(super) fn stage_err(what: &str, e: impl std::fmt::Display) -> PipelineError {
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
    t.extend(["customers", OPT_OUTS_SOURCE, "customer_summary"].map(String::from));
    t
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, PipelineError> {
    let df = ctx.sql(sql).await.map_err(|e| stage_err("read", e))?;
    df.collect().await.map_err(|e| stage_err("read", e))
}

/// Run `sql` and hand each batch to `each` as it arrives: only one batch is held at a
/// time, however large the table.
async fn for_each_batch(
    ctx: &SessionContext,
    sql: &str,
    mut each: impl FnMut(&RecordBatch) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    use futures::StreamExt;
    let df = ctx.sql(sql).await.map_err(|e| stage_err("read", e))?;
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| stage_err("read", e))?;
    while let Some(batch) = stream.next().await {
        each(&batch.map_err(|e| stage_err("read", e))?)?;
    }
    Ok(())
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

/// The audience rows of one campaign, with the columns templates use as fields.
pub(super) async fn audience(
    ctx: &SessionContext,
    c: &Campaign,
) -> Result<Vec<AudienceRow>, PipelineError> {
    let columns = columns_of(ctx, &c.audience).await;
    let problems = c.validate_fields(&columns);
    if !problems.is_empty() {
        return Err(ConfigError::Many(problems).into());
    }
    // Only what planning and the templates read: an audience row's fields are kept for
    // each recipient until delivery.
    let used = c.audience_fields();
    let select: Vec<String> = columns
        .iter()
        .filter(|col| used.contains(col.as_str()))
        .map(|col| format!("\"{}\"", col.replace('"', "\"\"")))
        .collect();
    let sql = format!("select {} from \"{}\"", select.join(", "), c.audience);
    let batches = collect(ctx, &sql).await?;
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
        let table = crate::campaign::Fields::table(b).map_err(|e| stage_err("fields", e))?;
        for i in 0..b.num_rows() {
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
                fields: crate::campaign::Fields::new(Arc::clone(&table), i),
            });
        }
    }
    Ok(rows)
}

/// Contacts from the `customers` source (no row, or a null consent, is no consent), of the
/// customers in `wanted` only (the campaigns' audiences and sequences): the source streams
/// past, so memory follows the audiences, not the customer base.
pub(super) async fn contacts(
    ctx: &SessionContext,
    wanted: &HashSet<&str>,
) -> Result<IdMap<String, Contact>, PipelineError> {
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
        "select cast(customer_id as varchar) as customer_id, {}, {}, {}, {}, {}, {}, {}, {} from customers",
        col("email", "varchar"),
        col("phone", "varchar"),
        col("consent_email", "boolean"),
        col("consent_sms", "boolean"),
        col("timezone", "varchar"),
        col("country", "varchar"),
        col("consent_call", "boolean"),
        col("owner", "varchar"),
    );
    for_each_batch(ctx, &sql, |b| {
        let s = |i: usize| text(b.column(i));
        let (ids, email, phone, tz, country) = (s(0)?, s(1)?, s(2)?, s(5)?, s(6)?);
        let flag = |i: usize| b.column(i).as_any().downcast_ref::<BooleanArray>().cloned();
        let (ce, cs, cc) = (flag(3), flag(4), flag(7));
        let owner = s(8)?;
        let get = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
        let consent = |a: &Option<BooleanArray>, i: usize| {
            a.as_ref().and_then(|a| (!a.is_null(i)).then(|| a.value(i)))
        };
        for i in 0..b.num_rows() {
            if ids.is_null(i) || !wanted.contains(ids.value(i)) {
                continue;
            }
            let phone = get(&phone, i);
            // A missing or invalid timezone is inferred from the country, else the phone.
            let (timezone, timezone_source) = crate::campaign::timezone::resolve(
                get(&tz, i).as_deref(),
                get(&country, i).as_deref(),
                phone.as_deref(),
            );
            out.insert(
                ids.value(i).to_string(),
                Contact {
                    email: get(&email, i),
                    phone,
                    consent_email: consent(&ce, i),
                    consent_sms: consent(&cs, i),
                    consent_call: consent(&cc, i),
                    owner: get(&owner, i).filter(|o| !o.trim().is_empty()),
                    timezone,
                    timezone_source,
                    unsubscribe_token: None,
                },
            );
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The optional `unsubscribes` source: customer or address, channel (`email`, `sms`, or
/// anything else for all), time.
pub(super) async fn unsubscribes(ctx: &SessionContext) -> Result<Vec<Unsubscribe>, PipelineError> {
    if !has(ctx, OPT_OUTS_SOURCE) {
        return Ok(vec![]);
    }
    let have = columns_of(ctx, OPT_OUTS_SOURCE).await;
    let col = |c: &str| {
        if have.iter().any(|h| h == c) {
            format!("cast(\"{c}\" as varchar)")
        } else {
            "cast(null as varchar)".to_string()
        }
    };
    let sql = format!(
        "select {}, {}, {}, cast({} as varchar) from {OPT_OUTS_SOURCE}",
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
                Some("call") => Some(Medium::Call),
                _ => None,
            };
            out.push(Unsubscribe {
                customer_id: get(&ids),
                address: get(&addr),
                medium,
                at: Utc::now(),
                reason: "unsubscribed",
            });
        }
    }
    Ok(out)
}

/// The last purchase date (from `customer_summary`) of each customer in `wanted`.
pub(super) async fn last_purchases(
    ctx: &SessionContext,
    wanted: &HashSet<&str>,
) -> Result<IdMap<String, NaiveDate>, PipelineError> {
    let mut out = IdMap::default();
    if !has(ctx, "customer_summary") {
        return Ok(out);
    }
    let sql = "select cast(customer_id as varchar), cast(last_purchase_date as date) from customer_summary";
    for_each_batch(ctx, sql, |b| {
        let ids = text(b.column(0))?;
        let Some(days) = b.column(1).as_any().downcast_ref::<Date32Array>() else {
            return Ok(());
        };
        for i in 0..b.num_rows() {
            if ids.is_null(i) || !wanted.contains(ids.value(i)) {
                continue;
            }
            if let Some(d) = days.value_as_date(i) {
                out.insert(ids.value(i).to_string(), d);
            }
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

#[cfg(test)]
#[path = "campaign_inputs_tests.rs"]
mod tests;
