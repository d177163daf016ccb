//! Brokers started by tools, never by a site: [`Mosquitto`] (a child process on a free
//! loopback port, killable and restartable, for the tests and `hub bench sync`) and
//! [`EmbeddedBroker`] (rumqttd in this process, for `hub demo`). Neither is on `hub run`'s
//! path; a site's hub connects to a real broker through [`crate::Connection`].

mod embedded;
mod mosquitto;

pub use embedded::EmbeddedBroker;
pub use mosquitto::{Mosquitto, MosquittoOptions, MosquittoTls, free_port};
