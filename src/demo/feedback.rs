//! The demo's voices: answers to "why did you leave?" (the `feedback` source: survey
//! answers and replies, so `lapse_reasons` has stated reasons beside inferred ones) and a
//! few complaints from customers who still buy (so `at_risk_customers` and the
//! `winback_at_risk` campaign have customers before the silence). Drawn from a random
//! stream of their own, so the purchases and the other complaints are the same with or
//! without them.

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (reason code, weight, channel, what the customer wrote): codes of
/// `sql/seeds/reason_codes.sql`. The texts are the demo's own words, no personal data.
const ANSWERS: [(&str, u32, &str, &str); 10] = [
    (
        "found_cheaper",
        22,
        "survey",
        "Found the same thing cheaper elsewhere.",
    ),
    ("price", 12, "survey", "Prices went up too much."),
    (
        "late_delivery",
        12,
        "email_reply",
        "My last two orders came a week late.",
    ),
    (
        "poor_quality",
        10,
        "email_reply",
        "The last jacket fell apart after a month.",
    ),
    (
        "moved_away",
        10,
        "survey",
        "I moved abroad, you don't ship here.",
    ),
    (
        "no_longer_needed",
        12,
        "survey",
        "The kids grew up, I don't need this any more.",
    ),
    (
        "switched_brand",
        8,
        "sms_reply",
        "Trying another shop for now.",
    ),
    (
        "rude_service",
        6,
        "email_reply",
        "Your support line was rude to me.",
    ),
    ("other", 6, "survey", "Just busy."),
    (
        "abusive",
        2,
        "call",
        "Threatened staff; returns of used goods.",
    ),
];

/// What a complaint says, of the company's codes (answers after a complaint).
const AFTER_COMPLAINT: [&str; 4] = ["late_delivery", "poor_quality", "rude_service", "price"];

/// Share of long-silent customers who answer, of complainers who say why, and of active
/// customers who complain recently (the at-risk ones).
const ANSWER_SHARE: f64 = 0.12;
const COMPLAINER_ANSWER_SHARE: f64 = 0.5;
const RECENT_COMPLAINT_SHARE: f64 = 0.04;

#[derive(Default)]
struct Answers {
    customer_id: Vec<String>,
    ts: Vec<i64>,
    reason_code: Vec<&'static str>,
    text: Vec<&'static str>,
    channel: Vec<&'static str>,
}

/// One chunk's voices.
pub struct Voices {
    rng: StdRng,
    answers: Answers,
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

impl Voices {
    pub fn new(seed: u64, chunk: usize) -> Voices {
        let seed = seed ^ 0x5eed_f33d_ba5e_u64;
        Voices {
            rng: StdRng::seed_from_u64(seed.wrapping_mul(1_000_033).wrapping_add(chunk as u64)),
            answers: Answers::default(),
        }
    }

    /// One customer, after their purchases (`last`: the last one) and complaint (if any):
    /// maybe an answer, and maybe a recent complaint of a customer who still buys,
    /// returned for the complaints file as (time, kind).
    pub fn customer(
        &mut self,
        cid: &str,
        last: NaiveDateTime,
        end: NaiveDateTime,
        complaint: Option<NaiveDateTime>,
    ) -> Option<(i64, &'static str)> {
        if let Some(when) = complaint
            && self.rng.random_bool(COMPLAINER_ANSWER_SHARE)
        {
            let at = when + Duration::days(self.rng.random_range(1..10));
            let code = AFTER_COMPLAINT[self.rng.random_range(0..AFTER_COMPLAINT.len())];
            let text = ANSWERS.iter().find(|a| a.0 == code).map_or("", |a| a.3);
            self.push(cid, at, end, code, "email_reply", text);
        } else if last < end - Duration::days(45) && self.rng.random_bool(ANSWER_SHARE) {
            let at = last + Duration::days(self.rng.random_range(20..120));
            let (code, _, channel, text) = self.pick();
            self.push(cid, at, end, code, channel, text);
        }
        let still_buying = last >= end - Duration::days(20);
        if still_buying && complaint.is_none() && self.rng.random_bool(RECENT_COMPLAINT_SHARE) {
            let days = (end - last).num_days().max(1);
            let at = last + Duration::days(self.rng.random_range(0..days));
            let kind = ["complaint", "service_ticket", "bad_review"][self.rng.random_range(0..3)];
            return (at < end).then(|| (micros(at), kind));
        }
        None
    }

    fn pick(&mut self) -> (&'static str, u32, &'static str, &'static str) {
        let total: u32 = ANSWERS.iter().map(|a| a.1).sum();
        let mut x = self.rng.random_range(0..total);
        for a in ANSWERS {
            if x < a.1 {
                return a;
            }
            x -= a.1;
        }
        ANSWERS[0]
    }

    fn push(
        &mut self,
        cid: &str,
        at: NaiveDateTime,
        end: NaiveDateTime,
        code: &'static str,
        channel: &'static str,
        text: &'static str,
    ) {
        if at >= end {
            return;
        }
        let a = &mut self.answers;
        a.customer_id.push(cid.to_string());
        a.ts.push(micros(at));
        a.reason_code.push(code);
        a.text.push(text);
        a.channel.push(channel);
    }

    /// The answers as the `feedback` source's rows.
    pub fn batch(self) -> RecordBatch {
        let a = self.answers;
        let schema = Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, false),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("reason_code", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, true),
            Field::new("channel", DataType::Utf8, true),
        ]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(a.customer_id)),
            Arc::new(TimestampMicrosecondArray::from(a.ts)),
            Arc::new(StringArray::from(a.reason_code)),
            Arc::new(StringArray::from(a.text)),
            Arc::new(StringArray::from(a.channel)),
        ];
        RecordBatch::try_new(Arc::new(schema), cols).expect("columns match the schema")
    }
}
