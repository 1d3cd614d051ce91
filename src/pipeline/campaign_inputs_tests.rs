//! Contacts as read from a `customers` table: the timezone inferred when missing or invalid.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::prelude::SessionContext;

use super::contacts;
use crate::campaign::timezone::TimezoneSource;

fn text(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// `mars` has timezone `Mars/Olympus` and country `DE`: Berlin, from the country. `sh` has
/// none and an unknown country, a +86 phone: Shanghai, from the phone. `ny` has its own.
/// `none` has nothing: the pipeline's (None). `other` is not wanted: not read.
#[tokio::test]
async fn a_missing_or_invalid_timezone_is_inferred_from_country_then_phone() {
    let batch = RecordBatch::try_from_iter([
        (
            "customer_id",
            text(&[
                Some("mars"),
                Some("sh"),
                Some("ny"),
                Some("none"),
                Some("other"),
            ]),
        ),
        (
            "phone",
            text(&[
                Some("+15551234567"),
                Some("+8613812345678"),
                None,
                None,
                None,
            ]),
        ),
        (
            "country",
            text(&[Some("DE"), Some("XX"), Some("US"), None, Some("DE")]),
        ),
        (
            "timezone",
            text(&[
                Some("Mars/Olympus"),
                None,
                Some("America/Chicago"),
                Some(""),
                None,
            ]),
        ),
    ])
    .unwrap();
    let ctx = SessionContext::new();
    ctx.register_batch("customers", batch).unwrap();
    let wanted: HashSet<&str> = ["mars", "sh", "ny", "none"].into();
    let got = contacts(&ctx, &wanted).await.unwrap();
    let tz = |id: &str| (got[id].timezone, got[id].timezone_source);
    assert_eq!(
        tz("mars"),
        (Some(chrono_tz::Europe::Berlin), TimezoneSource::Country)
    );
    assert_eq!(
        tz("sh"),
        (Some(chrono_tz::Asia::Shanghai), TimezoneSource::Phone)
    );
    assert_eq!(
        tz("ny"),
        (Some(chrono_tz::America::Chicago), TimezoneSource::Given)
    );
    assert_eq!(tz("none"), (None, TimezoneSource::Pipeline));
    assert_eq!(got.len(), 4);
}
