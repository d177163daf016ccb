//! MQTT connections, shared by the hub's uplink and the central consumer: where the broker is
//! ([`BrokerAddress`]), how to log in ([`Connection`], [`Secret`]), rumqttc options with a
//! persistent session and manual acknowledgements, TLS (rustls with the ring provider), and
//! what went wrong ([`MqttError`]). Secrets are never logged.
//!
//! It knows no topic and no payload (those are `hub-contract`'s) and runs no task of its own:
//! callers poll their event loops. [`brokers`] (feature `brokers`) holds the brokers the tests,
//! the benchmark and the demo start; they are tools, never on a site's path.

#[cfg(feature = "brokers")]
pub mod brokers;

use rumqttc::{ConnectionError, MqttOptions, TlsConfiguration, Transport};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A secret from the configuration: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must hand it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the broker is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    /// `mqtts://` (TLS) rather than `mqtt://`.
    pub tls: bool,
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Why a broker URL was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBrokerUrl {
    #[error("'{0}' is not a broker URL; use mqtt://host:port or mqtts://host:port")]
    Scheme(String),
    #[error("'{port}' in '{url}' is not a port number")]
    Port { port: String, url: String },
    #[error("'{0}' has no valid host")]
    Host(String),
}

impl BrokerAddress {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (default ports 1883 / 8883).
    pub fn parse(url: &str) -> Result<BrokerAddress, BadBrokerUrl> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(BadBrokerUrl::Scheme(url.to_owned()));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => match port.parse::<u16>() {
                Ok(p) if p > 0 => (host, p),
                _ => {
                    return Err(BadBrokerUrl::Port {
                        port: port.to_owned(),
                        url: url.to_owned(),
                    });
                }
            },
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() || host.contains('/') {
            return Err(BadBrokerUrl::Host(url.to_owned()));
        }
        Ok(BrokerAddress {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// Plain TCP to a port on the loopback interface (tests, the demo's embedded broker).
    pub fn loopback(port: u16) -> BrokerAddress {
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        }
    }
}

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

/// Why a connection to a broker could not be made or kept (the hub's uplink, central's
/// consumer, one-shot publishes).
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
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

impl MqttError {
    /// Classifies a rumqttc connection error on a broker.
    pub fn from_connection(broker: &BrokerAddress, timeout: Duration, e: ConnectionError) -> Self {
        let broker = broker.to_string();
        match e {
            ConnectionError::Tls(t) => MqttError::Tls {
                broker,
                detail: t.to_string(),
            },
            ConnectionError::ConnectionRefused(code) => MqttError::Refused {
                broker,
                code: format!("{code:?}"),
            },
            ConnectionError::NetworkTimeout => MqttError::Timeout {
                broker,
                seconds: timeout.as_secs_f64(),
            },
            ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(bytes),
            )) => MqttError::TooLarge { broker, bytes },
            ConnectionError::Io(io) => {
                // rustls reports handshake failures as I/O errors wrapping its own error.
                let detail = io.to_string();
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>())
                {
                    MqttError::Tls { broker, detail }
                } else if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    MqttError::Unreachable { broker, detail }
                } else {
                    MqttError::Lost { broker, detail }
                }
            }
            other => MqttError::Lost {
                broker,
                detail: other.to_string(),
            },
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, MqttError> {
    std::fs::read(path).map_err(|source| MqttError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

fn tls_config(c: &Connection) -> Result<rustls::ClientConfig, MqttError> {
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
            return Err(MqttError::BadPem {
                what: "CA file",
                path: ca.clone(),
                expected: "certificate",
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| MqttError::TlsSetup {
                broker: broker.clone(),
                detail: format!("CA file {}: {e}", ca.display()),
            })?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| MqttError::TlsSetup {
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
                return Err(MqttError::BadPem {
                    what: "client certificate",
                    path: cert.clone(),
                    expected: "certificate",
                });
            }
            let key_pem = read("client key", key)?;
            let key_der =
                PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| MqttError::BadPem {
                    what: "client key",
                    path: key.clone(),
                    expected: "private key",
                })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| MqttError::TlsSetup {
                    broker,
                    detail: format!("client certificate/key: {e}"),
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Builds rumqttc options: stable client id, persistent session (`clean_session=false`),
/// manual acknowledgements of incoming messages, TLS and credentials as configured.
pub fn mqtt_options(
    c: &Connection,
    max_incoming_bytes: usize,
    max_outgoing_bytes: usize,
) -> Result<MqttOptions, MqttError> {
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
pub async fn connect_once(c: &Connection) -> Result<bool, MqttError> {
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
                Err(e) => return Err(MqttError::from_connection(&c.broker, c.connect_timeout, e)),
            }
        }
    })
    .await
    .unwrap_or(Err(MqttError::Timeout {
        broker: c.broker.to_string(),
        seconds: c.connect_timeout.as_secs_f64(),
    }));
    if outcome.is_ok() {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    }
    outcome
}

/// Publishes raw bytes on a topic once at QoS 1 on a clean session of its own and waits for
/// the broker's acknowledgement (`central send`, tools, and tests that need malformed
/// messages).
pub async fn publish_once(c: &Connection, topic: &str, payload: Vec<u8>) -> Result<(), MqttError> {
    use rumqttc::{AsyncClient, Event, Packet, QoS};
    install_crypto_provider();
    let mut options = mqtt_options(c, 1 << 20, payload.len() + 4096)?;
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    eventloop.set_network_options(network_options(c));
    let wait = c.connect_timeout + Duration::from_secs(5);
    let lost = |e| MqttError::from_connection(&c.broker, c.connect_timeout, e);
    let outcome = tokio::time::timeout(wait, async {
        loop {
            match eventloop.poll().await.map_err(lost)? {
                Event::Incoming(Packet::ConnAck(_)) => {
                    client
                        .try_publish(topic, QoS::AtLeastOnce, false, payload.clone())
                        .map_err(|e| MqttError::Lost {
                            broker: c.broker.to_string(),
                            detail: e.to_string(),
                        })?;
                }
                Event::Incoming(Packet::PubAck(_)) => return Ok(()),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or(Err(MqttError::Timeout {
        broker: c.broker.to_string(),
        seconds: wait.as_secs_f64(),
    }));
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(300), eventloop.poll()).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports_and_say_what_is_wrong() {
        assert_eq!(
            BrokerAddress::parse("mqtts://broker.example.com").unwrap(),
            BrokerAddress {
                host: "broker.example.com".into(),
                port: 8883,
                tls: true
            }
        );
        assert_eq!(BrokerAddress::parse("mqtt://h:1884/").unwrap().port, 1884);
        assert!(
            BrokerAddress::parse("http://x")
                .unwrap_err()
                .to_string()
                .contains("mqtt://host:port")
        );
        assert!(
            BrokerAddress::parse("mqtt://h:0")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
        assert!(
            BrokerAddress::parse("mqtt://:1883")
                .unwrap_err()
                .to_string()
                .contains("host")
        );
        assert_eq!(BrokerAddress::loopback(7).to_string(), "mqtt://127.0.0.1:7");
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let s = Secret::new("hunter2");
        assert_eq!(
            (format!("{s:?}"), s.to_string()),
            ("***".into(), "***".into())
        );
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_missing_ca_file_is_named_with_what_to_do() {
        let mut c = Connection::plain(
            BrokerAddress {
                host: "h".into(),
                port: 8883,
                tls: true,
            },
            "c",
        );
        c.ca_file = Some(PathBuf::from("/no/such/ca.pem"));
        let err = mqtt_options(&c, 1024, 1024).unwrap_err();
        assert!(
            matches!(
                err,
                MqttError::ReadFile {
                    what: "CA file",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("/no/such/ca.pem"), "{err}");
    }
}
