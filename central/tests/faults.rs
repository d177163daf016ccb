//! Faults at fleet scale: 1,000 simulated sites, three `central run` processes sharing the
//! uplink into one PostgreSQL database; while the sites publish, consumers are killed
//! (SIGKILL) at random moments and started again, PostgreSQL is restarted twice and the broker
//! killed and restarted twice (losing what it held in memory after acknowledging it). At the
//! end every `(site, seq)` the simulator published is stored exactly once, no gap is open,
//! no gap was asked for twice, every event held back was asked for, and the fleet view agrees
//! with the simulator's count.

use central::fleet_sim::{self, FleetSimOptions};
use central::pg_cluster::PgCluster;
use central::web::FleetSource;
use central::{EventStore, PgStore};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use rand::Rng;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SITES: usize = 1000;
const EVENTS_PER_SITE: usize = 12;
const CONSUMERS: usize = 3;

fn consumer(port: u16, db: &str, n: usize, logs: &std::path::Path) -> Child {
    let log =
        std::fs::File::create(logs.join(format!("central-{n}-{}.log", rand::random::<u32>())))
            .unwrap();
    Command::new(env!("CARGO_BIN_EXE_central"))
        .args([
            "run",
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--client-id",
            &format!("central-{n}"),
            "--postgres",
            db,
            "--share-group",
            "central",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("central run starts")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Reads the store on a thread of its own (the store owns a runtime).
fn read<T: Send + 'static>(
    db: &str,
    f: impl FnOnce(&PgStore) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let db = db.to_owned();
    std::thread::spawn(move || {
        // PostgreSQL may be restarting: try again for a while.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match PgStore::open(&db, now_ms()) {
                Ok(store) => return f(&store),
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot open the store: {e}"),
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_consumers_restarted_postgres_and_broker_lose_and_double_nothing() {
    let started = Instant::now();
    let cluster = Arc::new(PgCluster::start().expect("private PostgreSQL cluster starts"));
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(dir.path(), &MosquittoOptions::default()).unwrap();
    let port = broker.port();
    let db = cluster.create_database("faults").unwrap();
    read(&db, |_| ()).join().unwrap();

    let logs = dir.path().to_owned();
    let mut consumers: Vec<Child> = (0..CONSUMERS)
        .map(|n| consumer(port, &db, n, &logs))
        .collect();
    // Subscribed: a probe heartbeat reaches the database.
    let probe = Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        },
        "probe",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let beat = hub_contract::Heartbeat {
            v: 1,
            site: "probe".into(),
            at_ms: now_ms(),
            outbox_depth: 0,
            oldest_undelivered_age_s: 0.0,
            last_seq: 0,
            first_undelivered_seq: None,
            confirmed_seq: 0,
            in_flight: 0,
            red_alerts_open: None,
            devices_offline: None,
            stream: Default::default(),
        };
        let _ = hub_mqtt::publish_once(
            &probe,
            &hub_contract::heartbeat_topic("probe"),
            hub_contract::encode(&beat),
        )
        .await;
        let seen = read(&db, |s| {
            s.report()
                .map(|r| r.sites.iter().any(|x| x.site == "probe"))
                .unwrap_or(false)
        })
        .join()
        .unwrap();
        if seen {
            break;
        }
        assert!(Instant::now() < deadline, "no consumer subscribed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The fleet publishes over about 30 s while the faults happen.
    let mut options = FleetSimOptions::new(
        Connection::plain(
            BrokerAddress {
                host: "127.0.0.1".into(),
                port,
                tls: false,
            },
            "fleet-sim",
        ),
        SITES,
        EVENTS_PER_SITE,
    );
    options.round_pause = Duration::from_millis(2500);
    options.heartbeat_every = Duration::from_secs(4);
    let stop_sim = CancellationToken::new();
    let sim = tokio::spawn(fleet_sim::run(options.clone(), stop_sim.clone(), true));

    // Faults: 12 consumer kills at random moments, PostgreSQL restarted twice, the broker
    // killed and restarted twice, spread over the publishing time.
    let mut rng = rand::rng();
    let mut kills = 0;
    let (mut pg_restarts, mut broker_restarts) = (0, 0);
    for step in 0..16 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(800..2000))).await;
        match step {
            3 | 10 => {
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.restart())
                    .await
                    .unwrap()
                    .expect("PostgreSQL restarts");
                pg_restarts += 1;
            }
            6 | 13 => {
                broker.restart().expect("Mosquitto restarts");
                broker_restarts += 1;
            }
            _ => {
                let n = rng.random_range(0..CONSUMERS);
                consumers[n].kill().unwrap();
                consumers[n].wait().unwrap();
                kills += 1;
                // Sometimes it stays down a while (its queued messages wait for it).
                if rng.random_bool(0.3) {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
                }
                consumers[n] = consumer(port, &db, n, &logs);
            }
        }
    }
    assert!(kills >= 10 && pg_restarts == 2 && broker_restarts == 2);

    let report = match tokio::time::timeout(Duration::from_secs(150), sim).await {
        Ok(done) => done.unwrap().unwrap(),
        Err(_) => {
            // Say where it stands before failing.
            let behind = read(&db, move |s| {
                let r = s.report().unwrap();
                r.sites
                    .into_iter()
                    .filter(|x| x.site != "probe" && x.contiguous_seq < EVENTS_PER_SITE as i64)
                    .map(|x| (x.site, x.contiguous_seq, x.max_seq, x.gaps, x.hub_last_seq))
                    .take(10)
                    .collect::<Vec<_>>()
            })
            .join()
            .unwrap();
            let mut logs = String::new();
            for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if e.file_name().to_string_lossy().starts_with("central-") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    logs.push_str(&format!("{:?}: {tail:?}\n", e.file_name()));
                }
            }
            panic!("central did not confirm every site within 150 s; behind: {behind:?}\n{logs}");
        }
    };

    // Exactly once: every published (site, seq) stored, none twice (the primary key would
    // refuse a second copy; the counts and the sequence lists say none is missing).
    let m = EVENTS_PER_SITE as i64;
    let (sites, seqs_ok, total) = read(&db, move |s| {
        let r = s.report().unwrap();
        let mut ok = 0;
        let mut total = 0;
        for site in r.sites.iter().filter(|x| x.site != "probe") {
            let seqs: Vec<i64> = s
                .events(&site.site)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect();
            total += seqs.len() as i64;
            if seqs == (1..=m).collect::<Vec<_>>()
                && site.gaps.is_empty()
                && site.contiguous_seq == m
            {
                ok += 1;
            }
        }
        (r.sites.len() - 1, ok, total)
    })
    .join()
    .unwrap();
    assert_eq!((sites, seqs_ok), (SITES, SITES));
    assert_eq!(total as u64, report.events);

    // One request per gap: no (site, from_seq) asked twice; every held-back event asked for.
    let mut asked: HashMap<(String, i64), usize> = HashMap::new();
    for r in &report.resend_requests {
        *asked.entry((r.site.clone(), r.from_seq)).or_default() += 1;
    }
    let twice: Vec<_> = asked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "gaps asked for more than once: {twice:?}");
    for (site, seq) in &report.lost {
        assert!(
            report
                .resend_requests
                .iter()
                .any(|r| r.site == *site && (r.from_seq..=r.to_seq).contains(seq)),
            "{site} #{seq} was never asked for"
        );
    }

    // The fleet view agrees with the simulator.
    let fleet = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || FleetSource::postgres(&db).fleet(now_ms()))
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        (fleet.sites, fleet.gaps_open, fleet.events_total as u64),
        (SITES, 0, report.events)
    );

    for mut c in consumers {
        let _ = c.kill();
        let _ = c.wait();
    }
    eprintln!(
        "faults: {kills} consumer kills, {pg_restarts} PostgreSQL and {broker_restarts} broker restarts, {} events, {} messages, {} resend requests, {:.0} s",
        report.events,
        report.messages,
        report.resend_requests.len(),
        started.elapsed().as_secs_f64()
    );
}
