//! Domain functions the engine adds to SQL, registered on every session.
//!
//! Each is something stage SQL could not say cheaply or plainly; each is documented in the
//! README ("Functions") and tested here and through the stages that use it.

pub mod gap_stats;
pub mod key_hash;
pub mod money_sum;
pub mod uplift_interval;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Make every domain function callable from stage SQL.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(gap_stats::udaf());
    for udf in scalar_udfs() {
        ctx.register_udf(udf);
    }
    ctx.register_udaf(money_sum::udaf());
}

/// The scalar functions (a Ballista executor and scheduler register the same list).
pub fn scalar_udfs() -> Vec<ScalarUDF> {
    vec![
        key_hash::udf(),
        uplift_interval::low_udf(),
        uplift_interval::high_udf(),
        uplift_interval::needed_udf(),
    ]
}
