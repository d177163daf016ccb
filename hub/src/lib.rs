//! The hub daemon: adapters around `hub-core` — store, CLI, daemon lifecycle, status page,
//! demo, benchmarks.
//!
//! Dependency direction: everything here may use `hub_core`; `hub_core` uses nothing here.

pub mod catalogue;
pub mod cli;
pub mod cli_output;
pub mod clock;
pub mod codes;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod devices;
pub mod evidence;
pub mod imports;
pub mod incarnation;
pub mod station_app;
pub mod status;
pub mod storage;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod telemetry;
pub mod tools;
pub mod vision;
pub mod workflows;
