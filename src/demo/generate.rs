//! Synthetic purchases of customers with their own buying rhythms, heavy-tailed spend,
//! churn, refunds, complaints, a group that stops together, and some bad rows.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Gamma, LogNormal};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    /// Roughly how many purchase rows (about 8 per customer).
    pub rows: u64,
    /// The last day of history is the day before this date.
    pub end: NaiveDate,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub customers: u64,
    pub purchase_rows: u64,
    pub complaint_rows: u64,
    pub files: usize,
}

const COUNTRIES: [(&str, &str, f64); 5] = [
    ("US", "America/New_York", 0.35),
    ("DE", "Europe/Berlin", 0.2),
    ("FR", "Europe/Paris", 0.15),
    ("CN", "Asia/Shanghai", 0.2),
    ("GB", "Europe/London", 0.1),
];
const CHANNELS: [&str; 3] = ["web", "store", "app"];
const COMPLAINTS: [&str; 4] = [
    "complaint",
    "service_ticket",
    "bad_review",
    "refund_request",
];
const PURCHASES_PER_CUSTOMER: u64 = 8;
const CUSTOMERS_PER_FILE: u64 = 125_000;

struct Purchases {
    order_id: Vec<Option<String>>,
    customer_id: Vec<Option<String>>,
    order_ts: Vec<Option<i64>>,
    amount: Vec<f64>,
    quantity: Vec<i32>,
    channel: Vec<&'static str>,
}

struct Complaints {
    customer_id: Vec<String>,
    ts: Vec<i64>,
    kind: Vec<&'static str>,
}

struct Customers {
    customer_id: Vec<String>,
    email: Vec<String>,
    phone: Vec<String>,
    country: Vec<&'static str>,
    timezone: Vec<&'static str>,
    consent_email: Vec<bool>,
    consent_sms: Vec<bool>,
    consent_call: Vec<bool>,
}

/// Generate `purchases/`, `customers/`, `complaints/` and `feedback/` Parquet folders under
/// `opts.dir`.
pub fn generate(opts: &DemoOptions) -> std::io::Result<DemoReport> {
    let customers = (opts.rows / PURCHASES_PER_CUSTOMER).max(1);
    let chunks: Vec<(u64, u64)> = (0..customers)
        .step_by(CUSTOMERS_PER_FILE as usize)
        .map(|start| (start, (start + CUSTOMERS_PER_FILE).min(customers)))
        .collect();
    for sub in ["purchases", "customers", "complaints", "feedback"] {
        let dir = opts.dir.join(sub);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let results: Vec<std::io::Result<(u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let chunks = &chunks;
                s.spawn(move || {
                    let mut totals = (0, 0);
                    for (i, (start, end)) in chunks.iter().enumerate() {
                        if i % threads == t {
                            let (p, c) = write_chunk(opts, i, *start, *end)?;
                            totals.0 += p;
                            totals.1 += c;
                        }
                    }
                    Ok(totals)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("demo thread"))
            .collect()
    });
    let mut report = DemoReport {
        customers,
        files: chunks.len(),
        ..Default::default()
    };
    for r in results {
        let (p, c) = r?;
        report.purchase_rows += p;
        report.complaint_rows += c;
    }
    Ok(report)
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn write_chunk(
    opts: &DemoOptions,
    index: usize,
    start: u64,
    end: u64,
) -> std::io::Result<(u64, u64)> {
    let mut rng =
        StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
    let n = (end - start) as usize;
    let mut p = Purchases {
        order_id: Vec::with_capacity(n * 9),
        customer_id: Vec::with_capacity(n * 9),
        order_ts: Vec::with_capacity(n * 9),
        amount: Vec::with_capacity(n * 9),
        quantity: Vec::with_capacity(n * 9),
        channel: Vec::with_capacity(n * 9),
    };
    let mut c = Complaints {
        customer_id: vec![],
        ts: vec![],
        kind: vec![],
    };
    let mut cu = Customers {
        customer_id: vec![],
        email: vec![],
        phone: vec![],
        country: vec![],
        timezone: vec![],
        consent_email: vec![],
        consent_sms: vec![],
        consent_call: vec![],
    };
    let end_ts = opts.end.and_hms_opt(0, 0, 0).expect("midnight");
    let gap_dist = LogNormal::new(40f64.ln(), 0.6).expect("valid lognormal");
    let spend_dist = LogNormal::new(40f64.ln(), 0.8).expect("valid lognormal");
    let churn_dist = Beta::new(1.0, 8.0).expect("valid beta");
    let mut order_seq = 0u64;
    let mut voices = super::feedback::Voices::new(opts.seed, index);
    for id in start..end {
        let cid = format!("C{id:08}");
        let (country, tz) = pick_country(rng.random());
        let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
        cu.customer_id.push(cid.clone());
        cu.email.push(format!("customer{id}@example.com"));
        cu.phone.push(format!("+1555{:07}", id % 10_000_000));
        cu.country.push(country);
        cu.timezone.push(tz);
        cu.consent_email.push(rng.random_bool(0.9));
        cu.consent_sms.push(rng.random_bool(0.6));
        // Two customers in five may be called (from the id: the random stream, and so the
        // rest of the data, stays as it was).
        cu.consent_call.push(id % 5 < 2);
        // A school of fish: a third of French app customers are weekly buyers who all
        // stopped 11 days ago, so their lapse alarms ring together in the last week.
        let school = channel == "app" && country == "FR" && rng.random_bool(0.33);
        let gap = if school {
            7.0
        } else {
            gap_dist.sample(&mut rng).clamp(5.0, 400.0)
        };
        let spend = spend_dist.sample(&mut rng).clamp(3.0, 5_000.0);
        let churn = if school {
            0.0
        } else {
            churn_dist.sample(&mut rng)
        };
        let shape = if school { 40.0 } else { 4.0 };
        let gap_shape = Gamma::new(shape, gap / shape).expect("valid gamma");
        let amount_dist = Gamma::new(3.0, spend / 3.0).expect("valid gamma");
        let stops_with_group = school;
        let group_stop = end_ts - Duration::days(11);
        let mut t = end_ts - Duration::minutes(rng.random_range(60..3 * 365 * 24 * 60));
        let mut last = t;
        loop {
            if t >= end_ts || (stops_with_group && t >= group_stop) {
                break;
            }
            order_seq += 1;
            let oid = format!("O{index:03}{order_seq:09}");
            let amount = (amount_dist.sample(&mut rng) * 100.0).round() / 100.0;
            push(
                &mut p,
                Some(oid.clone()),
                Some(cid.clone()),
                Some(micros(t)),
                amount.max(0.5),
                rng.random_range(1..5),
                channel,
            );
            if rng.random_bool(0.02) {
                let when = t + Duration::days(rng.random_range(1..10));
                if when < end_ts {
                    let back = -((amount * rng.random_range(0.3..1.0)) * 100.0).round() / 100.0;
                    push(
                        &mut p,
                        Some(oid),
                        Some(cid.clone()),
                        Some(micros(when)),
                        back,
                        1,
                        channel,
                    );
                }
            }
            last = t;
            if rng.random_bool(churn) {
                break;
            }
            t += Duration::minutes((gap_shape.sample(&mut rng) * 24.0 * 60.0) as i64 + 1);
        }
        let mut complained = None;
        if rng.random_bool(0.05) {
            let when = last + Duration::days(rng.random_range(0..20));
            if when < end_ts {
                c.customer_id.push(cid.clone());
                c.ts.push(micros(when));
                c.kind
                    .push(COMPLAINTS[rng.random_range(0..COMPLAINTS.len())]);
                complained = Some(when);
            }
        }
        // Answers to "why did you leave?", and recent complaints of customers still buying.
        if let Some((ts, kind)) = voices.customer(&cid, last, end_ts, complained) {
            c.customer_id.push(cid.clone());
            c.ts.push(ts);
            c.kind.push(kind);
        }
    }
    add_bad_rows(&mut p, &mut rng, index);
    let rows = p.order_id.len() as u64;
    let complaints = c.customer_id.len() as u64;
    write_parquet(
        &opts.dir.join(format!("purchases/part-{index:04}.parquet")),
        purchases_batch(p),
    )?;
    write_parquet(
        &opts.dir.join(format!("customers/part-{index:04}.parquet")),
        customers_batch(cu),
    )?;
    write_parquet(
        &opts.dir.join(format!("complaints/part-{index:04}.parquet")),
        complaints_batch(c),
    )?;
    write_parquet(
        &opts.dir.join(format!("feedback/part-{index:04}.parquet")),
        voices.batch(),
    )?;
    Ok((rows, complaints))
}

fn pick_country(u: f64) -> (&'static str, &'static str) {
    let mut acc = 0.0;
    for (c, tz, w) in COUNTRIES {
        acc += w;
        if u < acc {
            return (c, tz);
        }
    }
    (COUNTRIES[0].0, COUNTRIES[0].1)
}

fn push(
    p: &mut Purchases,
    oid: Option<String>,
    cid: Option<String>,
    ts: Option<i64>,
    amount: f64,
    qty: i32,
    channel: &'static str,
) {
    p.order_id.push(oid);
    p.customer_id.push(cid);
    p.order_ts.push(ts);
    p.amount.push(amount);
    p.quantity.push(qty);
    p.channel.push(channel);
}

/// About 0.1% each of: no customer id, blank customer id, no timestamp, NaN amount,
/// and an exact duplicate of an order row.
fn add_bad_rows(p: &mut Purchases, rng: &mut StdRng, index: usize) {
    let n = p.order_id.len();
    if n == 0 {
        return;
    }
    let bad = (n / 1000).max(1);
    for k in 0..bad {
        let i = rng.random_range(0..n);
        let ts = p.order_ts[i];
        let cid = p.customer_id[i].clone();
        let oid = |tag: &str| Some(format!("B{index:03}{tag}{k:07}"));
        push(p, oid("n"), None, ts, 10.0, 1, "web");
        push(p, oid("e"), Some("  ".into()), ts, 10.0, 1, "web");
        push(p, oid("t"), cid.clone(), None, 10.0, 1, "web");
        push(p, oid("a"), cid, ts, f64::NAN, 1, "web");
        let (o, c, t, a, q, ch) = (
            p.order_id[i].clone(),
            p.customer_id[i].clone(),
            p.order_ts[i],
            p.amount[i],
            p.quantity[i],
            p.channel[i],
        );
        push(p, o, c, t, a, q, ch);
    }
}

fn purchases_batch(p: Purchases) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("order_id", DataType::Utf8, true),
        Field::new("customer_id", DataType::Utf8, true),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("amount", DataType::Float64, true),
        Field::new("quantity", DataType::Int32, true),
        Field::new("channel", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(p.order_id)),
        Arc::new(StringArray::from(p.customer_id)),
        Arc::new(TimestampMicrosecondArray::from(p.order_ts)),
        Arc::new(Float64Array::from(p.amount)),
        Arc::new(Int32Array::from(p.quantity)),
        Arc::new(StringArray::from(p.channel)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
}

/// Purchases as the generator writes them: (order id, customer, time, amount, channel).
pub fn purchase_rows(rows: Vec<(String, String, NaiveDateTime, f64, &'static str)>) -> RecordBatch {
    let mut p = Purchases {
        order_id: vec![],
        customer_id: vec![],
        order_ts: vec![],
        amount: vec![],
        quantity: vec![],
        channel: vec![],
    };
    for (oid, cid, ts, amount, channel) in rows {
        push(
            &mut p,
            Some(oid),
            Some(cid),
            Some(micros(ts)),
            amount,
            1,
            channel,
        );
    }
    purchases_batch(p)
}

fn customers_batch(c: Customers) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("timezone", DataType::Utf8, true),
        Field::new("consent_email", DataType::Boolean, true),
        Field::new("consent_sms", DataType::Boolean, true),
        Field::new("consent_call", DataType::Boolean, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(c.customer_id)),
        Arc::new(StringArray::from(c.email)),
        Arc::new(StringArray::from(c.phone)),
        Arc::new(StringArray::from(c.country)),
        Arc::new(StringArray::from(c.timezone)),
        Arc::new(BooleanArray::from(c.consent_email)),
        Arc::new(BooleanArray::from(c.consent_sms)),
        Arc::new(BooleanArray::from(c.consent_call)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
}

fn complaints_batch(c: Complaints) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("kind", DataType::Utf8, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(c.customer_id)),
        Arc::new(TimestampMicrosecondArray::from(c.ts)),
        Arc::new(StringArray::from(c.kind)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
}

/// Write one batch as a Parquet file, in row groups of 1M rows.
pub fn write_parquet(path: &Path, batch: RecordBatch) -> std::io::Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let file = File::create(path)?;
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(std::io::Error::other)?;
    writer.write(&batch).map_err(std::io::Error::other)?;
    writer.close().map_err(std::io::Error::other)?;
    Ok(())
}
