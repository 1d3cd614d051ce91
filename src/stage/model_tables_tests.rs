//! Tests of `model_tables.rs`, kept apart so the table code stays short to read.

use super::*;
use datafusion::prelude::SessionContext;
use std::collections::BTreeMap;

/// The tier of each customer, from `tier_sql` over customers `ids` worth `values`.
async fn tiers(values: &[f64], ids: &[&str]) -> BTreeMap<String, String> {
    let n = ids.len();
    let batch = RecordBatch::try_new(
        scored_schema(ModelKind::Clv),
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            f64s(vec![0.0; n]),
            f64s(vec![0.5; n]),
            f64s(vec![1.0; n]),
            f64s(vec![10.0; n]),
            f64s(values.to_vec()),
        ],
    )
    .unwrap();
    let ctx = SessionContext::new();
    ctx.register_batch("scored", batch).unwrap();
    let out = ctx
        .sql(&tier_sql("scored", n as u64))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut m = BTreeMap::new();
    for b in out {
        let id = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let tier = b.column(6).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            m.insert(id.value(i).to_string(), tier.value(i).to_string());
        }
    }
    m
}

#[tokio::test]
async fn tiers_split_20_30_50_by_value() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    let ids: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let t = tiers(&v, &ids).await;
    for (id, want) in [
        ("c9", "high"),
        ("c8", "high"),
        ("c7", "medium"),
        ("c5", "medium"),
        ("c4", "low"),
        ("c0", "low"),
    ] {
        assert_eq!(t[id], want, "{id}");
    }
}

#[tokio::test]
async fn tiers_break_ties_by_customer_id_not_row_order() {
    // Ten customers worth exactly the same: the two smallest ids are the top 20%.
    let ids = ["c7", "c2", "c9", "c0", "c5", "c1", "c3", "c8", "c4", "c6"];
    let v = vec![5.0; ids.len()];
    let forward = tiers(&v, &ids).await;
    let mut reversed = ids;
    reversed.reverse();
    assert_eq!(forward, tiers(&v, &reversed).await);
    let want = [
        "high", "high", "medium", "medium", "medium", "low", "low", "low", "low", "low",
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(forward[&format!("c{i}")], *w, "c{i}");
    }
}
