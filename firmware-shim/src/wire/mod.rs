//! Wire formats spoken by scales and scanners, shared by the firmware and the hub.
//!
//! Every parser here takes bytes from outside the program, so each one is total: it returns a
//! typed error naming the reason instead of panicking, and it never grows memory (all buffers are
//! fixed-size). Weights are fixed-point decimals ([`Weight`]); nothing in this module uses floats,
//! reads a clock, allocates or touches I/O.

pub mod continuous;
pub mod framer;
pub mod mtsics;
pub mod scanner;
pub mod toledo8217;
pub mod yaohua;

mod weight;
mod writer;

pub use weight::{DecimalError, Unit, Weight};
pub use writer::{BufferFull, ByteWriter};
