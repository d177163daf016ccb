//! Device-side code for the hub's scales and scanners, and the wire formats both sides speak.
//!
//! * [`wire`]: byte-exact scale and scanner protocols (MT-SICS, Toledo 8217, Mettler Toledo
//!   continuous output, Yaohua XK3190, serial scanner framing) with bounded, streaming framers.
//! * [`codes`]: GS1 element strings, GS1 Digital Link URIs and trace-code classification.
//! * [`hx711`], [`scale`], [`responder`]: the firmware side of a scale: an HX711 driver on
//!   `embedded-hal` 1.0, a pure scale core, and protocol responders over `embedded-io`.
//!
//! This crate is `no_std` without `alloc` so that it builds for a microcontroller; unit tests
//! run on the host. Nothing here reads a clock, allocates, or performs I/O by itself: time comes
//! in as an argument and bytes come in and go out through caller-provided buffers or traits.
#![cfg_attr(not(test), no_std)]

pub mod codes;
pub mod hx711;
pub mod responder;
pub mod scale;
pub mod wire;
