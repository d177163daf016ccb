//! A Mosquitto broker run as a child process on a free loopback port, for `hub bench sync`
//! and the sync tests. It can be killed (SIGKILL) and restarted on the same port with the same
//! persistence folder. Needs the `mosquitto` binary (Debian package `mosquitto`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// TLS settings for the listener.
#[derive(Debug, Clone)]
pub struct MosquittoTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Require client certificates and use their CN as the user name (for ACLs).
    pub require_certificate: bool,
}

/// What the broker is started with.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    pub tls: Option<MosquittoTls>,
    /// ACL file (`acl_file`).
    pub acl_file: Option<PathBuf>,
    /// QoS 1 messages the broker sends a client before it waits for their PUBACKs
    /// (`max_inflight_messages`); 1000 when not set. A consumer that acknowledges a batch only
    /// after committing it needs a window larger than its batch, so the broker keeps sending
    /// while a batch commits.
    pub max_inflight_messages: Option<u32>,
}

/// A running (or killed) Mosquitto.
#[derive(Debug)]
pub struct Mosquitto {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Finds a free loopback port.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Mosquitto {
    /// Writes a configuration into `dir` and starts the broker on a free port.
    pub fn start(dir: &Path, options: &MosquittoOptions) -> anyhow::Result<Mosquitto> {
        std::fs::create_dir_all(dir.join("persist"))?;
        let port = free_port()?;
        // Queued messages for offline persistent sessions must never be dropped, and the
        // consumer may have many messages in flight; persistence keeps sessions across a
        // graceful restart.
        // `user root` keeps a broker started by root from switching to the `mosquitto` user,
        // which could not read the test's private files (no effect for other users).
        let mut conf = format!(
            "user root\n\
             listener {port} 127.0.0.1\n\
             persistence true\n\
             persistence_location {}/\n\
             max_inflight_messages {}\n\
             max_queued_messages 0\n\
             max_queued_bytes 0\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n",
            dir.join("persist").display(),
            options.max_inflight_messages.unwrap_or(1000)
        );
        match &options.tls {
            Some(tls) => {
                conf.push_str(&format!(
                    "cafile {}\ncertfile {}\nkeyfile {}\n",
                    tls.ca_file.display(),
                    tls.cert_file.display(),
                    tls.key_file.display()
                ));
                if tls.require_certificate {
                    conf.push_str(
                        "require_certificate true\nuse_identity_as_username true\nallow_anonymous false\n",
                    );
                } else {
                    conf.push_str("allow_anonymous true\n");
                }
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if let Some(acl) = &options.acl_file {
            conf.push_str(&format!("acl_file {}\n", acl.display()));
        }
        std::fs::write(dir.join("mosquitto.conf"), conf)?;
        let mut broker = Mosquitto {
            dir: dir.to_owned(),
            port,
            child: None,
        };
        broker.restart()?;
        Ok(broker)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the broker with SIGKILL (no chance to save anything) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistence file) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the broker on the same port and waits until it accepts connections.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("mosquitto.log"))?;
            let mut child = Command::new("mosquitto")
                .arg("-c")
                .arg(self.dir.join("mosquitto.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot start mosquitto: {e}; install it with `apt-get install mosquitto`"
                    )
                })?;
            // Ready when the port accepts connections; a bind failure (the old process'
            // socket still closing) makes the child exit, and we try again.
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    anyhow::ensure!(
                        Instant::now() < deadline,
                        "mosquitto exited with {status}; see {}",
                        self.dir.join("mosquitto.log").display()
                    );
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "mosquitto did not listen on 127.0.0.1:{} in time",
                    self.port
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
