//! A private PostgreSQL cluster for tests and the benchmark: `initdb` in a temporary folder,
//! `pg_ctl start` on a free loopback port, stopped (and the folder removed) on drop. A tool, not
//! on `central run`'s path: in production central connects to a cluster the team runs.
//!
//! PostgreSQL refuses to run as root, so when this process is root the cluster runs as
//! `nobody` (the folder is handed to that user). The binaries come from Debian's `postgresql`
//! package (`/usr/lib/postgresql/<version>/bin`, not on `PATH`), or `PG_BIN` when set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a private cluster could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL binaries not found: install Debian's `postgresql` package (deploy/setup.sh) or set PG_BIN to the folder holding initdb and pg_ctl"
    )]
    NoBinaries,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("private PostgreSQL cluster: {0}")]
    Io(#[from] std::io::Error),
}

/// A running private cluster (user `postgres`, trust authentication, loopback only).
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
}

impl PgCluster {
    /// Creates and starts a cluster on a free loopback port.
    pub fn start() -> Result<PgCluster, ClusterError> {
        let bin = find_binaries().ok_or(ClusterError::NoBinaries)?;
        let dir = tempfile::Builder::new().prefix("central-pg-").tempdir()?;
        let run_as = if is_root() {
            Some(nobody().ok_or_else(|| ClusterError::Command {
                what: "finding user nobody".into(),
                detail: "running as root, and PostgreSQL needs a non-root user".into(),
            })?)
        } else {
            None
        };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let port = free_port()?;
        let cluster = PgCluster {
            dir,
            bin,
            port,
            run_as,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Connection settings for `tokio-postgres` (database `postgres`).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection settings for one database of the cluster.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database} connect_timeout=5",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open transactions are rolled back).
    pub fn stop(&self) -> Result<(), ClusterError> {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "fast",
                "-w",
            ],
        )
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port.
    pub fn start_server(&self) -> Result<(), ClusterError> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &self.data().to_string_lossy(),
                "-w",
                "-t",
                "60",
                "-l",
                &self.dir.path().join("server.log").to_string_lossy(),
                "-o",
                &options,
            ],
        )
    }

    /// Restarts the server (stop, then start).
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.stop()?;
        self.start_server()
    }

    /// Creates a database and returns its connection settings.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        )?;
        Ok(self.url_for(name))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), ClusterError> {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(self.bin.join(tool));
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid).env("HOME", self.dir.path());
        }
        let out = command.output().map_err(|e| ClusterError::Command {
            what: format!("{tool} {}", args.first().unwrap_or(&"")),
            detail: e.to_string(),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(ClusterError::Command {
            what: format!("{tool} {}", args.first().unwrap_or(&"")),
            detail: format!(
                "{} {}; server log ends: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        })
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
            ],
        );
    }
}

/// Debian's `postgresql` binaries (highest version), or `PG_BIN`.
fn find_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `nobody`'s uid and gid from `/etc/passwd`.
fn nobody() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string(Path::new("/etc/passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"nobody") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
