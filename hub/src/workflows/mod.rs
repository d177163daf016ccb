//! Workflows: what staff and devices do, each as one durable write through the store.
//!
//! A workflow composes store operations (which apply the core's rules) into one transaction,
//! so a handover, its movements, its tier re-evaluation and all their events commit together.
//! Callers are the CLI, MQTT station commands, device adapters and the demo: they all go
//! through here, so every entry point behaves the same.

pub mod alerts;
pub mod pickup;
pub mod receiving;
