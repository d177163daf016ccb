//! Keeping the report's per-site-day rollups (`store::report_rollup`) up to
//! date: the records of the closed days are planned on a reader (the fold of the journal's
//! tail, or of the whole journal when they must be rebuilt, does not hold the writer) and
//! written in one transaction. Run by the daemon beside its daily forecast job, and by
//! `hub report` and the dashboard before they compute, so a hub that was off at midnight is
//! right on its first report.

use crate::store::{Store, StoreError, report_rollup};
use hub_core::Timestamp;

/// Rolls up the site days closed at `now` that have no valid record; the number of day
/// records written (0 when they were up to date).
pub async fn refresh_report_rollups(
    store: &Store,
    zone: chrono_tz::Tz,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let plan = store
        .read(move |c| report_rollup::plan(c, zone, now))
        .await?;
    let Some(plan) = plan else {
        return Ok(0);
    };
    store.write(move |c| report_rollup::store(c, &plan)).await
}

/// [`refresh_report_rollups`] for callers without a runtime (the CLI).
pub fn refresh_report_rollups_blocking(
    store: &Store,
    zone: chrono_tz::Tz,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let plan = store.read_blocking(move |c| report_rollup::plan(c, zone, now))?;
    let Some(plan) = plan else {
        return Ok(0);
    };
    store.write_blocking(move |c| report_rollup::store(c, &plan))
}
