//! Central at fleet scale on real parts: a private PostgreSQL cluster, Mosquitto, consumers
//! sharing the fleet's uplink through a shared subscription, and the fleet simulator. One
//! cluster and one broker for the whole binary; the cases run one after another on them.

use central::fleet_sim::{self, FleetSimOptions, FleetSimReport};
use central::pg_cluster::PgCluster;
use central::web::{FleetSource, WebServer};
use central::{CentralHandle, CentralOptions, EventStore, PgStore};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn connection(broker: &Mosquitto, client_id: &str) -> Connection {
    Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port: broker.port(),
            tls: false,
        },
        client_id,
    )
}

fn consumer(broker: &Mosquitto, db: &str, n: usize) -> CentralOptions {
    let mut o = CentralOptions::new(connection(broker, &format!("central-{n}")), "unused.sqlite");
    o.postgres = Some(db.to_owned());
    o.share_group = Some("central".into());
    o.resend_grace = Duration::from_secs(2);
    o.resend_lease = Duration::from_secs(600);
    o
}

/// Reads the whole store on a thread of its own (the store owns a runtime).
fn read_store(db: &str) -> (central::CentralReport, HashMap<String, Vec<i64>>) {
    let db = db.to_owned();
    std::thread::spawn(move || {
        let store = PgStore::open(&db, 1_700_000_000_000).unwrap();
        let report = store.report().unwrap();
        let seqs = report
            .sites
            .iter()
            .map(|s| {
                let seqs = store
                    .events(&s.site)
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect();
                (s.site.clone(), seqs)
            })
            .collect();
        (report, seqs)
    })
    .join()
    .unwrap()
}

/// Every `(site, seq)` the simulator published is stored exactly once, no gap is open, each
/// held-back event was asked for exactly once.
fn assert_exactly_once(db: &str, sim: &FleetSimReport, options: &FleetSimOptions) {
    let (report, seqs) = read_store(db);
    let m = options.events_per_site as i64;
    for n in 0..options.sites {
        let site = options.site(n);
        let r = report
            .sites
            .iter()
            .find(|s| s.site == site)
            .unwrap_or_else(|| panic!("{site} not stored"));
        assert_eq!(
            (r.events, r.contiguous_seq, r.max_seq),
            (m, m, m),
            "{site}: {r:?}"
        );
        assert!(r.gaps.is_empty(), "{site}: {:?}", r.gaps);
        assert_eq!(seqs[&site], (1..=m).collect::<Vec<_>>(), "{site}");
    }
    let stored: i64 = report
        .sites
        .iter()
        .filter(|s| s.site != "probe")
        .map(|s| s.events)
        .sum();
    assert_eq!(stored as u64, sim.events);
    for (site, seq) in &sim.lost {
        let asked = sim
            .resend_requests
            .iter()
            .filter(|r| r.site == *site && (r.from_seq..=r.to_seq).contains(seq))
            .count();
        assert_eq!(asked, 1, "{site} #{seq}: {:?}", sim.resend_requests);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_sharing_a_subscription_store_every_event_once_and_ask_once_per_gap() {
    let cluster = PgCluster::start().expect("private PostgreSQL cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path(), &MosquittoOptions::default()).unwrap();
    let db = cluster.create_database("fleet").unwrap();

    let options: Vec<CentralOptions> = (0..2).map(|n| consumer(&broker, &db, n)).collect();
    let metrics: Vec<_> = options.iter().map(|o| o.metrics.clone()).collect();
    let consumers: Vec<CentralHandle> = options
        .into_iter()
        .map(|o| CentralHandle::start(o).unwrap())
        .collect();
    let web = WebServer::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let web_addr = web.local_addr();
    let stop_web = CancellationToken::new();
    tokio::spawn(web.serve(
        FleetSource::postgres(&db),
        metrics[0].clone(),
        None,
        stop_web.clone(),
    ));
    for c in &consumers {
        c.wait_ready(&connection(&broker, "probe"), Duration::from_secs(30))
            .await
            .unwrap();
    }
    let mut options = FleetSimOptions::new(connection(&broker, "sim"), 40, 30);
    options.lost_every = 4;
    let sim = tokio::time::timeout(
        Duration::from_secs(120),
        fleet_sim::run(options.clone(), CancellationToken::new(), true),
    )
    .await
    .expect("central confirmed every site within 2 minutes")
    .unwrap();
    assert_eq!(sim.lost.len(), 10);
    assert_exactly_once(&db, &sim, &options);
    // The cursor each hub heard is what the database holds.
    for n in 0..options.sites {
        assert_eq!(sim.confirmed[&options.site(n)], 30);
    }
    // Duplicates after reconnects and withheld markers arrived and were told apart.
    let (report, _) = read_store(&db);
    let dups: i64 = report.sites.iter().map(|s| s.duplicates_dropped).sum();
    let withheld: i64 = report.sites.iter().map(|s| s.withheld).sum();
    assert!(dups >= 8 * 3, "{dups}");
    assert_eq!(withheld, 0, "a 30-event site has no 50th event");
    // Both consumers took part, and between them stored each event once.
    let stored: Vec<u64> = metrics
        .iter()
        .map(|m| m.events_stored.load(Ordering::Relaxed))
        .collect();
    assert!(stored.iter().all(|n| *n > 0), "{stored:?}");
    assert_eq!(stored.iter().sum::<u64>(), sim.events);

    // The fleet view agrees with the simulator: the command line and the web endpoints.
    let out = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_central"))
                .args(["fleet", "--json", "--postgres", &db])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let red: i64 = (0..options.sites)
        .map(|n| fleet_sim::sim_red_alerts(&options.site(n)))
        .sum();
    let devices: i64 = (0..options.sites)
        .map(|n| fleet_sim::sim_devices_offline(&options.site(n)))
        .sum();
    assert_eq!(view["sites"], 40);
    assert_eq!(view["sites_offline"], 0);
    assert_eq!(view["gaps_open"], 0);
    assert_eq!(view["events_total"], sim.events);
    assert_eq!(view["events_today"], sim.events);
    assert_eq!(
        (
            view["red_alerts_open"].as_i64(),
            view["devices_offline"].as_i64()
        ),
        (Some(red), Some(devices))
    );
    assert!(red > 0 && devices > 0);
    // Worst first: the sites with red alerts lead.
    assert_eq!(
        view["fleet"][0]["red_alerts_open"], 1,
        "{}",
        view["fleet"][0]
    );
    let page = http_get(web_addr, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("sim-00012"), "{page}");
    let metrics_text = http_get(web_addr, "/metrics").await;
    assert!(
        metrics_text.contains(&format!("central_events_stored_total {}", stored[0])),
        "{metrics_text}"
    );
    assert!(
        metrics_text.contains("central_gaps_open 0"),
        "{metrics_text}"
    );
    assert!(
        metrics_text.contains("central_sites_offline 0"),
        "{metrics_text}"
    );
    assert!(
        metrics_text.contains("central_consumer_lag_messages"),
        "{metrics_text}"
    );
    stop_web.cancel();
    for c in consumers {
        c.stop().await.unwrap();
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}
