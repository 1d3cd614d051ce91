//! Domain functions the engine adds to SQL, registered on every session.
//!
//! Each is something stage SQL could not say cheaply or plainly; each is documented in the
//! README ("Functions") and tested here and through the stages that use it.

pub mod gap_stats;
pub mod key_hash;
pub mod money_sum;

use datafusion::prelude::SessionContext;

/// Make every domain function callable from stage SQL.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(gap_stats::udaf());
    ctx.register_udf(key_hash::udf());
    ctx.register_udaf(money_sum::udaf());
}
