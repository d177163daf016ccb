//! The embedded broker `hub demo` starts in place of the central one (rumqttd, from the same
//! project as rumqttc), so the demo needs no external service. Loopback only, no TLS, no
//! persistence: a stand-in for demos, never for a site.

use std::net::TcpListener;

/// A running embedded broker. Its threads end with the process.
#[derive(Debug)]
pub struct EmbeddedBroker {
    port: u16,
}

impl EmbeddedBroker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    pub fn start() -> anyhow::Result<EmbeddedBroker> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let text = format!(
            r#"
id = 0
[router]
id = 0
max_connections = 64
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "demo"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 1048576
max_inflight_count = 100
dynamic_filters = true
"#
        );
        let config: rumqttd::Config = toml::from_str(&text)?;
        let mut broker = rumqttd::Broker::new(config);
        std::thread::Builder::new()
            .name("demo-broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded demo broker stopped");
                }
            })?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the embedded broker did not start listening on 127.0.0.1:{port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(EmbeddedBroker { port })
    }

    /// The broker's URL.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}
