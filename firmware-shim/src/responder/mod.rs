//! Device-side protocol responders: they answer a host over an `embedded-io` UART using the
//! [`crate::scale`] core.
//!
//! Each responder is sans-IO in the time dimension: feed received bytes with
//! `on_bytes(input, now_ms, out)` and call `tick(now_ms, out)` periodically for timeouts and
//! streaming output. They never block, read a clock or allocate; the hub's simulated scales run
//! the same code on a pseudo-terminal.

pub mod continuous;
pub mod mtsics;
pub mod toledo8217;

pub use continuous::{ContinuousEmitter, ContinuousFormat};
pub use mtsics::{DeviceInfo, SicsConfig, SicsResponder};
pub use toledo8217::Toledo8217Responder;
