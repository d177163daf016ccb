//! Upstream sync over MQTT: the hub's uplink and downlink, and a reference central consumer.
//!
//! The SQLite outbox is the only source of truth: rumqttc keeps nothing on disk, so the uplink
//! reads rows from the store, publishes them at QoS 1 and marks them delivered only when the
//! broker acknowledges them on the same connection. The central side drops duplicates by
//! `(site, stream, seq)` (keeping an event whose id differs from the stored one as a conflict)
//! and asks for a resend of anything missing.
//!
//! - [`contract`]: every topic string and JSON envelope (nothing else knows them);
//! - [`window`]: in-flight window, PUBACK matching, lanes and backoff, without I/O;
//! - [`uplink`]: the hub's connection task (outbox drain, status, heartbeat, retention);
//! - [`downlink`]: commands and sync control from central, applied through [`crate::commands`];
//! - [`central`]: the reference central consumer (`hub central`);
//! - [`broker`]: the embedded broker used by `hub demo`;
//! - [`mosquitto`]: a Mosquitto child process for the benchmark and the tests.
//!
//! Connections are set up here: client options, TLS (rustls with the ring provider) and
//! credentials. Secrets are never logged.

pub mod broker;
pub mod central;
pub mod contract;
pub mod downlink;
pub mod mosquitto;
pub mod station;
pub mod uplink;
pub mod window;

use crate::config::{BrokerAddress, Secret};
use rumqttc::{ConnectionError, MqttOptions, TlsConfiguration, Transport};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Installs the process-wide rustls crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How to reach and log in to a broker; shared by the hub and the central consumer.
#[derive(Debug, Clone)]
pub struct Connection {
    pub broker: BrokerAddress,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub keep_alive: Duration,
    pub connect_timeout: Duration,
}

impl Connection {
    /// Plain TCP to `broker`, no credentials, default timeouts.
    pub fn plain(broker: BrokerAddress, client_id: impl Into<String>) -> Connection {
        Connection {
            broker,
            client_id: client_id.into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            keep_alive: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the uplink (or central) could not connect or stay connected.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot read {what} {path}: {source}; check the path and its permissions")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} holds no usable PEM {expected}; check that it is the right file")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("cannot set up TLS for {broker}: {detail}")]
    TlsSetup { broker: String, detail: String },
    #[error(
        "TLS handshake with {broker} failed: {detail}; check that uplink.ca_file is the CA that signed the broker's certificate and that the host name matches it"
    )]
    Tls { broker: String, detail: String },
    #[error(
        "broker {broker} refused the connection ({code}); check the username, password or client certificate"
    )]
    Refused { broker: String, code: String },
    #[error("cannot reach broker {broker}: {detail}; check the address and the network")]
    Unreachable { broker: String, detail: String },
    #[error(
        "no answer from broker {broker} within {seconds:.0} s; check the address and the network"
    )]
    Timeout { broker: String, seconds: f64 },
    #[error("connection to broker {broker} lost: {detail}")]
    Lost { broker: String, detail: String },
    #[error(
        "broker {broker} sent a {bytes}-byte packet, more than this client reads; set the broker's message_size_limit to the limit"
    )]
    TooLarge { broker: String, bytes: usize },
}

impl SyncError {
    /// Classifies a rumqttc connection error on a broker.
    pub fn from_connection(broker: &BrokerAddress, timeout: Duration, e: ConnectionError) -> Self {
        let broker = broker.to_string();
        match e {
            ConnectionError::Tls(t) => SyncError::Tls {
                broker,
                detail: t.to_string(),
            },
            ConnectionError::ConnectionRefused(code) => SyncError::Refused {
                broker,
                code: format!("{code:?}"),
            },
            ConnectionError::NetworkTimeout => SyncError::Timeout {
                broker,
                seconds: timeout.as_secs_f64(),
            },
            ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(bytes),
            )) => SyncError::TooLarge { broker, bytes },
            ConnectionError::Io(io) => {
                // rustls reports handshake failures as I/O errors wrapping its own error.
                let detail = io.to_string();
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>())
                {
                    SyncError::Tls { broker, detail }
                } else if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    SyncError::Unreachable { broker, detail }
                } else {
                    SyncError::Lost { broker, detail }
                }
            }
            other => SyncError::Lost {
                broker,
                detail: other.to_string(),
            },
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, SyncError> {
    std::fs::read(path).map_err(|source| SyncError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn tls_config(c: &Connection) -> Result<rustls::ClientConfig, SyncError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let broker = c.broker.to_string();
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &c.ca_file {
        let pem = read("CA file", ca)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            return Err(SyncError::BadPem {
                what: "CA file",
                path: ca.clone(),
                expected: "certificate",
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| SyncError::TlsSetup {
                broker: broker.clone(),
                detail: format!("CA file {}: {e}", ca.display()),
            })?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SyncError::TlsSetup {
        broker: broker.clone(),
        detail: e.to_string(),
    })?
    .with_root_certificates(roots);
    match (&c.client_cert_file, &c.client_key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = read("client certificate", cert)?;
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
                .filter_map(Result::ok)
                .collect();
            if chain.is_empty() {
                return Err(SyncError::BadPem {
                    what: "client certificate",
                    path: cert.clone(),
                    expected: "certificate",
                });
            }
            let key_pem = read("client key", key)?;
            let key_der =
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| SyncError::BadPem {
                    what: "client key",
                    path: key.clone(),
                    expected: "private key",
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| SyncError::TlsSetup {
                    broker,
                    detail: format!("client certificate/key: {e}"),
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Largest packet the reference central consumer reads. (The hub's uplink reads up to
/// `uplink.max_command_bytes`, see `uplink::max_incoming_packet`.)
pub const MAX_INCOMING_PACKET_BYTES: usize = 64 << 20;

/// Builds rumqttc options: stable client id, persistent session (`clean_session=false`),
/// manual acknowledgements of incoming messages, TLS and credentials as configured.
pub fn mqtt_options(
    c: &Connection,
    max_incoming_bytes: usize,
    max_outgoing_bytes: usize,
) -> Result<MqttOptions, SyncError> {
    let mut options = MqttOptions::new(&c.client_id, &c.broker.host, c.broker.port);
    options
        .set_keep_alive(c.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(max_incoming_bytes, max_outgoing_bytes);
    if c.broker.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(c)?),
        )));
    }
    if let Some(user) = &c.username {
        let password = match (&c.password, &c.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(file)) => Secret::new(
                String::from_utf8_lossy(&read("password file", file)?)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            (None, None) => Secret::new(""),
        };
        options.set_credentials(user, password.expose());
    }
    Ok(options)
}

/// Network options with the configured connect timeout.
pub fn network_options(c: &Connection) -> rumqttc::NetworkOptions {
    let mut n = rumqttc::NetworkOptions::new();
    n.set_connection_timeout(c.connect_timeout.as_secs().max(1));
    n
}

/// Connects once and disconnects: checks address, TLS and credentials. Returns whether the
/// broker still held a session for this client id.
pub async fn connect_once(c: &Connection) -> Result<bool, SyncError> {
    install_crypto_provider();
    let options = mqtt_options(c, 1 << 20, 1 << 20)?;
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    eventloop.set_network_options(network_options(c));
    let outcome = tokio::time::timeout(c.connect_timeout + Duration::from_secs(1), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => {
                    return Ok(ack.session_present);
                }
                Ok(_) => continue,
                Err(e) => return Err(SyncError::from_connection(&c.broker, c.connect_timeout, e)),
            }
        }
    })
    .await
    .unwrap_or(Err(SyncError::Timeout {
        broker: c.broker.to_string(),
        seconds: c.connect_timeout.as_secs_f64(),
    }));
    if outcome.is_ok() {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    }
    outcome
}
