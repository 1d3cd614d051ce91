//! The commit phase: [`Planned`] → [`Committed`]. Every staged table and `manifest.json`
//! go in place together; before this nothing a reader sees has changed, and only after it
//! may anything be sent (a [`Committed`] is made here and nowhere else).

use chrono::NaiveDate;

use super::plan::{CampaignPlan, Planned};
use super::recorder::RunRecorder;
use crate::campaign::Campaign;
use crate::config::Pipeline;
use crate::error::PipelineError;

/// A run whose tables are in place, with the campaign decisions still to deliver.
pub struct Committed {
    pipeline: Pipeline,
    campaigns: Vec<Campaign>,
    as_of: NaiveDate,
    plan: Option<CampaignPlan>,
}

impl Committed {
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// The decisions to record and deliver, taken once.
    pub fn take_plan(&mut self) -> Option<CampaignPlan> {
        self.plan.take()
    }
}

/// Commit the planned run's tables with its manifest.
pub async fn commit(
    planned: Planned,
    recorder: &mut RunRecorder,
) -> Result<Committed, PipelineError> {
    let Planned {
        pipeline,
        campaigns,
        as_of,
        written,
        record,
        plan,
    } = planned;
    recorder.computed(record, written);
    recorder.commit().await?;
    Ok(Committed {
        pipeline,
        campaigns,
        as_of,
        plan,
    })
}
