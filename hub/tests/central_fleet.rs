//! Real hubs in a fleet: two `hub run` processes and twenty simulated sites publish through one
//! Mosquitto to two central consumers sharing the uplink into a private PostgreSQL cluster.
//! Each hub's events arrive exactly once, its cursor comes from the database, and the fleet view
//! shows the hubs with what their heartbeats say (version, outbox, red alerts, devices offline).

use central::fleet_sim::{self, FleetSimOptions};
use central::pg_cluster::PgCluster;
use central::web::FleetSource;
use central::{CentralHandle, CentralOptions, EventStore, PgStore};
use hub::store::{Store, StoreError, StoreOptions, outbox};
use hub_core::DomainEvent;
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 150;

fn plain(port: u16, id: &str) -> Connection {
    Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        },
        id,
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A hub's config and a database holding `EVENTS` events waiting in its outbox.
fn prepare_hub(dir: &Path, site: &str, port: u16) -> PathBuf {
    let data = dir.join(site);
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.join(format!("{site}.toml"));
    std::fs::write(
        &config,
        format!(
            "[site]\nid = \"{site}\"\n[store]\ndata_dir = \"{}\"\nmin_free_percent = 0\nmin_free_mb = 0\n[log]\nlevel = \"warn\"\n\
             [uplink]\nbroker = \"mqtt://127.0.0.1:{port}\"\nin_flight = 50\n\
             heartbeat_seconds = 0.3\nreconnect_min_seconds = 0.05\nreconnect_max_seconds = 0.3\n\
             connect_timeout_seconds = 3\n",
            data.display()
        ),
    )
    .unwrap();
    config
}

fn fill_outbox(db: &Path, site: &str) {
    let store = Store::open(db, site, &StoreOptions::default()).expect("store opens");
    store
        .write_blocking(|c| {
            for i in 0..EVENTS {
                outbox::append(
                    c,
                    &DomainEvent::SyncAlert {
                        code: "fleet".into(),
                        message: format!("event {i}"),
                        seq: None,
                    },
                    hub::clock::now(),
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_hubs_and_simulated_sites_reach_consumers_sharing_postgres_once() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    let broker =
        Mosquitto::start(&dir.path().join("broker"), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let db = cluster.create_database("fleet").unwrap();
    let mut consumers = Vec::new();
    for n in 0..2 {
        let mut o = CentralOptions::new(plain(port, &format!("central-{n}")), "unused.sqlite");
        o.postgres = Some(db.clone());
        o.share_group = Some("central".into());
        let c = CentralHandle::start(o).unwrap();
        c.wait_ready(&plain(port, "probe"), Duration::from_secs(30))
            .await
            .unwrap();
        consumers.push(c);
    }

    let sites = ["hub-a", "hub-b"];
    let mut hubs = Vec::new();
    for site in sites {
        let config = prepare_hub(dir.path(), site, port);
        let db_file = dir.path().join(site).join(format!("hub-{site}.sqlite"));
        tokio::task::block_in_place(|| fill_outbox(&db_file, site));
        hubs.push(
            std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
                .args(["run", "--config"])
                .arg(&config)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("hub starts"),
        );
    }
    let sim = FleetSimOptions::new(plain(port, "fleet-sim"), 20, 40);
    let sim = tokio::time::timeout(
        Duration::from_secs(120),
        fleet_sim::run(sim, CancellationToken::new(), true),
    )
    .await
    .expect("central confirmed every simulated site")
    .unwrap();

    // The real hubs: every event once, in sequence, and the fleet view shows them online with
    // what their heartbeats carry.
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        let db = db.clone();
        let view = tokio::task::spawn_blocking(move || FleetSource::postgres(&db).fleet(now_ms()))
            .await
            .unwrap()
            .unwrap();
        let done = sites.iter().all(|s| {
            view.fleet.iter().any(|f| {
                f.site == *s && f.contiguous_seq >= EVENTS as i64 && f.heartbeat_age_s.is_some()
            })
        });
        if done {
            break view;
        }
        assert!(Instant::now() < deadline, "hubs not delivered: {view:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for site in sites {
        let f = view.fleet.iter().find(|f| f.site == site).unwrap();
        assert_eq!(f.state, "online", "{f:?}");
        assert_eq!(f.hub_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!((f.missing, f.gap_open_s), (0, None), "{f:?}");
        // A hub of this version reports its alert figures (none open here).
        assert_eq!(
            (f.red_alerts_open, f.devices_offline),
            (Some(0), Some(0)),
            "{f:?}"
        );
        let db = db.clone();
        let seqs: Vec<i64> = tokio::task::spawn_blocking(move || {
            PgStore::open(&db, now_ms())
                .unwrap()
                .events(site)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        })
        .await
        .unwrap();
        assert_eq!(seqs.len(), EVENTS, "{site}");
        assert!(
            seqs.iter().copied().eq(1..=EVENTS as i64),
            "{site}: {seqs:?}"
        );
    }
    assert_eq!(view.sites, 22);
    assert_eq!(view.events_total as u64, sim.events + 2 * EVENTS as u64);

    for mut hub in hubs {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &hub.id().to_string()])
            .status();
        let status = hub.wait().unwrap();
        assert!(status.success(), "hub run: {status:?}");
    }
    for c in consumers {
        c.stop().await.unwrap();
    }
}
