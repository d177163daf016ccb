//! `hub bench …`: measurements an operator can run on a site's own box.
//!
//! Each benchmark measures a baseline in the same run, so figures are read as ratios: the
//! machine may be noisy, but both sides see the same noise.

pub mod dashboard;
pub mod devices;
pub mod disk;
pub mod forecast;
pub mod ledger;
pub mod python;
pub mod stations;
pub mod sync;
