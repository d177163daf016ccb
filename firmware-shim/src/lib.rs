//! Device-side code for the hub's scales and scanners, and the wire formats both sides speak.
//!
//! This crate is `no_std` so that it builds for a microcontroller; unit tests run on the host.
#![cfg_attr(not(test), no_std)]
