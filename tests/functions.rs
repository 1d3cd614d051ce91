//! The SQL functions winback adds, checked against the plain-SQL definition they replace.

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::MemTable;
use rand::{Rng, SeedableRng, rngs::StdRng};
use winback::engine::{EngineOptions, new_session};

use crate::support::query;

/// `rows` purchase days of `customers` customers (repeats included) in `parts` partitions.
fn days_table(customers: usize, rows: usize, parts: usize, seed: u64) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("order_date", DataType::Date32, true),
    ]));
    let mut rng = StdRng::seed_from_u64(seed);
    let per_part = rows / parts;
    let partitions = (0..parts)
        .map(|_| {
            let ids: Vec<String> = (0..per_part)
                .map(|_| format!("c{}", rng.random_range(0..customers)))
                .collect();
            let days: Vec<Option<i32>> = (0..per_part)
                .map(|_| (!rng.random_ratio(1, 50)).then(|| 20_000 + rng.random_range(0..400)))
                .collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(Date32Array::from(days)),
                ],
            )
            .unwrap();
            // Several small batches per partition, so groups span batches.
            (0..batch.num_rows())
                .step_by(97)
                .map(|start| batch.slice(start, 97.min(batch.num_rows() - start)))
                .collect()
        })
        .collect();
    MemTable::try_new(schema, partitions).unwrap()
}

#[tokio::test]
async fn gap_stats_equals_the_window_and_percentile_sql_it_replaces() {
    // One phase; partial and final phases (state and merge); partial skipped (each row
    // turned into a state of its own).
    for (parts, threads, skip_partial) in [(1, 1, false), (4, 3, false), (4, 3, true)] {
        let ctx = new_session(&EngineOptions {
            target_partitions: Some(threads),
            memory_limit_bytes: None,
            ..EngineOptions::default()
        })
        .await
        .unwrap();
        if skip_partial {
            for set in [
                "set datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 10",
                "set datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.0",
            ] {
                ctx.sql(set).await.unwrap();
            }
        }
        ctx.register_table("days", Arc::new(days_table(300, 6_000, parts, 7)))
            .unwrap();
        let ours = query(
            &ctx,
            "select customer_id, g['gaps'] as gaps, g['median'] as median, g['p75'] - g['p25'] as iqr \
             from (select customer_id, gap_stats(order_date) as g from days group by customer_id)",
        )
        .await;
        let plain = query(
            &ctx,
            "with distinct_days as (select distinct customer_id, order_date from days where order_date is not null), \
             gaps as (select customer_id, cast(order_date - lag(order_date) over (partition by customer_id order by order_date) as double) as gap from distinct_days), \
             customers as (select distinct customer_id from days) \
             select c.customer_id, coalesce(s.gaps, 0) as gaps, s.median, s.iqr from customers c left join ( \
               select customer_id, count(gap) as gaps, median(gap) as median, \
                 percentile_cont(0.75) within group (order by gap) - percentile_cont(0.25) within group (order by gap) as iqr \
               from gaps where gap is not null group by customer_id) s on s.customer_id = c.customer_id",
        )
        .await;
        assert_eq!(ours.len(), 301, "every customer once, plus the header");
        assert_eq!(
            ours, plain,
            "{parts} partitions, {threads} threads, partial skipped: {skip_partial}"
        );
    }
}

#[tokio::test]
async fn gap_stats_honours_filter_and_works_without_group_by() {
    let ctx = new_session(&EngineOptions::default()).await.unwrap();
    let got = query(
        &ctx,
        "select g['gaps'], g['median'], g['p25'], g['p75'] from (select gap_stats(d) filter (where d <> date '2026-01-20') as g \
         from (values (date '2026-01-01'), (date '2026-01-11'), (date '2026-01-11'), (date '2026-01-20'), (date '2026-01-31'), (null)) t(d))",
    )
    .await;
    // Days 1, 11, 31: gaps 10 and 20.
    assert_eq!(got[1], "2,15,12.5,17.5");
    let none = query(
        &ctx,
        "select g['gaps'], g['median'] from (select gap_stats(d) as g from (values (date '2026-01-01')) t(d))",
    )
    .await;
    assert_eq!(none[1], "0,");
}
