//! The hub's MQTT adapter: uplink, downlink and station commands.
//!
//! The SQLite outbox is the only source of truth: rumqttc keeps nothing on disk, so the uplink
//! reads rows from the store, publishes them at QoS 1 and marks them delivered only when the
//! broker acknowledges them on the same connection.
//!
//! - [`window`]: in-flight window, PUBACK matching and lanes, without I/O;
//! - [`uplink`]: the hub's connection task (outbox drain, status, heartbeat, retention);
//! - [`downlink`]: commands and sync control from central, applied through [`crate::commands`];
//! - [`station`]: staff commands from station tablets, run through `workflows`.
//!
//! Topic strings and payloads are `hub_contract`'s; connections (options, TLS, credentials,
//! errors) are `hub_mqtt`'s. The reference central consumer is the `central` crate.

pub mod downlink;
pub mod uplink;
pub mod window;
