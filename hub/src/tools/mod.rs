//! Tools around the hub, never on a site's data path: the demo ([`demo`], with simulated
//! devices in [`demo_devices`]), simulated serial devices on pseudo-terminals ([`sim`]), the
//! benchmarks an operator can run on a box ([`bench`]), and load generators for development
//! ([`dev`]), and the what-if simulator of the site ([`simulate`]). They drive the hub through the same workflows, store and adapters as a site does;
//! nothing in the hub's own modules depends on them.

pub mod bench;
pub mod demo;
pub mod demo_devices;
pub mod demo_station;
pub mod dev;
pub mod sim;
pub mod simulate;
