//! `central bench ingest`: central's ingest from MQTT into PostgreSQL against a raw baseline,
//! side by side in one run on one private cluster and one Mosquitto.
//!
//! - **catch-up**: every site comes back with a one-hour backlog (`events_per_site` events) and
//!   publishes it at once; central ingests it with 1, then 2 consumers sharing the
//!   subscription (a fresh database each). Events/s = events ÷ time from the first publish to
//!   the last commit; that time is the catch-up time.
//! - **raw batched**: the same rows inserted by plain `INSERT … SELECT FROM unnest(…) ON CONFLICT
//!   DO NOTHING` into the same `event` table, in transactions of the mean batch size the
//!   1-consumer run committed, measured right after that run (the machine's load then).
//! - **raw COPY**: the same rows by binary `COPY` in transactions of the same size, shown beside
//!   the goal's baseline (central writes its new rows by COPY).
//! - **latency**: after the catch-up, the sites publish live events at half the 1-consumer
//!   rate; p99 of publish → commit (the consumer's commit time of the batch holding it).
//!
//! A baseline that cannot be measured is an error (exit 1); one consumer below half the raw
//! rate is exit 4 (the caller maps [`BenchOutcome::below_target`]).

use crate::pg_cluster::PgCluster;
use crate::{CentralHandle, CentralOptions, EventStore, PgStore};
use anyhow::Context;
use hub_contract::{self as contract, EventRef, Lane};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The broker's window of unacknowledged messages per consumer (`max_inflight_messages`):
/// larger than a batch, so the broker keeps sending while the consumer commits one (the
/// setting `docs/central.md` gives operators).
pub const BROKER_INFLIGHT: u32 = 20_000;

/// How big a run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub sites: usize,
    /// Events per site in the backlog (one hour of a busy site: one every 10 s = 360).
    pub events_per_site: usize,
    /// Live events (across the fleet) for the latency run.
    pub live_events: usize,
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchOutcome {
    pub sites: usize,
    pub events: usize,
    pub raw_batched_per_s: f64,
    /// The same rows by `COPY … FROM STDIN BINARY` in transactions of the same size (shown
    /// beside the goal's baseline, since central's ingest writes its new rows by COPY).
    pub raw_copy_per_s: f64,
    pub ingest_1_consumer_per_s: f64,
    pub ingest_2_consumers_per_s: f64,
    pub ingest_p99_ms: f64,
    pub ingest_p50_ms: f64,
    pub catch_up_1_consumer_s: f64,
    pub catch_up_2_consumers_s: f64,
    pub mean_batch: f64,
    /// Batches the 1-consumer catch-up committed, and the time spent in their transactions
    /// (the rest of the catch-up is the broker's delivery, reading and acknowledging).
    pub batches_1_consumer: u64,
    pub transactions_1_consumer_s: f64,
    pub ratio_1_consumer_to_raw: f64,
    pub ratio_2_consumers_to_raw: f64,
    /// The goal: one consumer at least half the raw batched rate.
    pub below_target: bool,
}

impl std::fmt::Display for BenchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "central bench ingest: {} sites × {} events = {} events (one-hour backlog per site)",
            self.sites,
            self.events / self.sites.max(1),
            self.events
        )?;
        writeln!(
            f,
            "  raw batched INSERT (batches of {:.0}):   {:>10.0} events/s",
            self.mean_batch, self.raw_batched_per_s
        )?;
        writeln!(
            f,
            "  raw COPY (batches of {:.0}):              {:>10.0} events/s",
            self.mean_batch, self.raw_copy_per_s
        )?;
        writeln!(
            f,
            "  ingest via MQTT, 1 consumer:           {:>10.0} events/s  ({:.2}× raw)  catch-up {:.1} s",
            self.ingest_1_consumer_per_s, self.ratio_1_consumer_to_raw, self.catch_up_1_consumer_s
        )?;
        writeln!(
            f,
            "    its {} batches, decoded and committed in {:.2} s  ({:.0} % of its catch-up)",
            self.batches_1_consumer,
            self.transactions_1_consumer_s,
            100.0 * self.transactions_1_consumer_s / self.catch_up_1_consumer_s.max(f64::EPSILON)
        )?;
        writeln!(
            f,
            "  ingest via MQTT, 2 consumers:          {:>10.0} events/s  ({:.2}× raw)  catch-up {:.1} s",
            self.ingest_2_consumers_per_s,
            self.ratio_2_consumers_to_raw,
            self.catch_up_2_consumers_s
        )?;
        writeln!(
            f,
            "  live latency publish → committed:      p50 {:.1} ms, p99 {:.1} ms",
            self.ingest_p50_ms, self.ingest_p99_ms
        )?;
        writeln!(
            f,
            "  goal (1 consumer ≥ 0.5× raw): {}",
            if self.below_target { "MISSED" } else { "met" }
        )
    }
}

/// One pre-encoded message.
struct Msg {
    topic: String,
    payload: Vec<u8>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn site(n: usize) -> String {
    format!("bench-{n:05}")
}

fn encode(site: &str, seq: i64, lane: Lane, at_ms: i64) -> Msg {
    let stream = format!("stream-{site}");
    let id = format!("{site}-{seq}");
    let body = format!(
        r#"{{"kind":"stock_moved","sku":"SKU-{}","qty":{}}}"#,
        seq % 97,
        seq % 13
    );
    let (payload, _) = contract::encode_event(
        EventRef {
            site,
            stream: &stream,
            seq,
            id: &id,
            kind: "stock_moved",
            created_at_ms: at_ms,
            payload: &body,
        },
        lane,
        64 << 10,
    )
    .expect("the benchmark's JSON");
    Msg {
        topic: contract::events_topic(site),
        payload,
    }
}

/// The backlog: every site's events, interleaved as they would arrive from many hubs.
fn backlog(options: &BenchOptions) -> Vec<Msg> {
    let start = now_ms() - 3_600_000;
    let mut out = Vec::with_capacity(options.sites * options.events_per_site);
    for seq in 1..=options.events_per_site as i64 {
        for n in 0..options.sites {
            out.push(encode(&site(n), seq, Lane::Backlog, start + seq * 10_000));
        }
    }
    out
}

struct Publisher {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

async fn publisher(port: u16, id: &str) -> Publisher {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_clean_session(true);
    o.set_inflight(1000);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(o, 10_000);
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Disconnect)) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    Publisher { client, task }
}

fn connection(port: u16, id: &str) -> Connection {
    Connection::plain(
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            tls: false,
        },
        id,
    )
}

/// Commits seen by the hook: (site, seq) → commit time, and batch sizes.
#[derive(Default)]
struct Commits {
    at: HashMap<(String, i64), i64>,
    batches: Vec<usize>,
}

struct Run {
    consumers: Vec<CentralHandle>,
    metrics: Vec<Arc<crate::metrics::Metrics>>,
    commits: Arc<std::sync::Mutex<Commits>>,
    /// Whether the collector reads every committed message's key (the latency run only: during
    /// the catch-up it would take CPU from the consumer it measures).
    track_keys: Arc<std::sync::atomic::AtomicBool>,
    collector: tokio::task::JoinHandle<()>,
}

async fn start_consumers(port: u16, db: &str, count: usize) -> anyhow::Result<Run> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<rumqttc::Publish>, i64)>();
    let commits = Arc::new(std::sync::Mutex::new(Commits::default()));
    let track_keys = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let commits = commits.clone();
        let track_keys = track_keys.clone();
        tokio::spawn(async move {
            while let Some((batch, at)) = rx.recv().await {
                let mut c = commits.lock().unwrap_or_else(|e| e.into_inner());
                c.batches.push(batch.len());
                if !track_keys.load(Ordering::Relaxed) {
                    continue;
                }
                for p in batch {
                    if let Ok(e) = contract::decode_event(&p.payload) {
                        c.at.entry((e.site, e.seq)).or_insert(at);
                    }
                }
            }
        })
    };
    let mut consumers = Vec::new();
    let mut metrics = Vec::new();
    for n in 0..count {
        let mut o = CentralOptions::new(
            connection(port, &format!("bench-central-{n}")),
            "unused.sqlite",
        );
        o.postgres = Some(db.to_owned());
        o.share_group = Some("bench".into());
        o.committed = Some(tx.clone());
        metrics.push(o.metrics.clone());
        let handle = CentralHandle::start(o)?;
        handle
            .wait_ready(&connection(port, "bench-probe"), Duration::from_secs(60))
            .await?;
        consumers.push(handle);
    }
    Ok(Run {
        consumers,
        metrics,
        commits,
        track_keys,
        collector,
    })
}

impl Run {
    fn stored(&self) -> u64 {
        self.metrics
            .iter()
            .map(|m| m.events_stored.load(Ordering::Relaxed))
            .sum()
    }

    async fn wait_stored(&self, want: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.stored() < want {
            anyhow::ensure!(
                Instant::now() < deadline,
                "central stored {} of {want} events within {within:?}",
                self.stored()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    async fn stop(self) -> anyhow::Result<()> {
        for c in self.consumers {
            c.stop().await?;
        }
        self.collector.abort();
        Ok(())
    }
}

/// Publishes the backlog and returns the time from the first publish to the last commit.
async fn catch_up(
    port: u16,
    db: &str,
    consumers: usize,
    msgs: &[Msg],
) -> anyhow::Result<(f64, Run)> {
    let run = start_consumers(port, db, consumers).await?;
    let publisher = publisher(port, &format!("bench-fleet-{consumers}")).await;
    let started = Instant::now();
    for m in msgs {
        publisher
            .client
            .publish(m.topic.clone(), QoS::AtLeastOnce, false, m.payload.clone())
            .await
            .context("publishing the backlog")?;
    }
    run.wait_stored(msgs.len() as u64, Duration::from_secs(1800))
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = publisher.client.disconnect().await;
    publisher.task.abort();
    Ok((elapsed, run))
}

/// Live events at a steady rate; p50 and p99 of publish → commit in ms.
async fn latency(
    port: u16,
    run: &Run,
    options: &BenchOptions,
    rate: f64,
) -> anyhow::Result<(f64, f64)> {
    let publisher = publisher(port, "bench-live").await;
    run.track_keys.store(true, Ordering::Relaxed);
    let base = run.stored();
    let mut sent: Vec<((String, i64), i64)> = Vec::new();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    for i in 0..options.live_events {
        let n = i % options.sites;
        let seq = (options.events_per_site + 1 + i / options.sites) as i64;
        let s = site(n);
        let m = encode(&s, seq, Lane::Live, now_ms());
        // Paced against the start, so a slow publish does not slow the rate down.
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        sent.push(((s, seq), now_ms()));
        publisher
            .client
            .publish(m.topic, QoS::AtLeastOnce, false, m.payload)
            .await?;
    }
    run.wait_stored(base + options.live_events as u64, Duration::from_secs(600))
        .await?;
    // The hook sees a batch just after its commit; give the collector a moment to catch up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut lat: Vec<f64> = {
        let commits = run.commits.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter()
            .filter_map(|(key, at)| commits.at.get(key).map(|c| (c - at) as f64))
            .collect()
    };
    anyhow::ensure!(
        lat.len() == sent.len(),
        "latency: {} of {} live events seen committed",
        lat.len(),
        sent.len()
    );
    lat.sort_by(f64::total_cmp);
    let pick = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
    let _ = publisher.client.disconnect().await;
    publisher.task.abort();
    Ok((pick(0.50), pick(0.99)))
}

/// The baseline: the same rows, plain batched INSERTs in transactions of `batch` rows.
async fn raw_batched(db: &str, msgs: &[Msg], batch: usize) -> anyhow::Result<f64> {
    let (mut client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .context("raw baseline: connecting")?;
    tokio::spawn(conn);
    let events: Vec<contract::EventIn> = msgs
        .iter()
        .map(|m| contract::decode_event(&m.payload))
        .collect::<Result<_, _>>()?;
    let received = now_ms();
    let started = Instant::now();
    for chunk in events.chunks(batch.max(1)) {
        let tx = client.transaction().await?;
        let sites: Vec<&str> = chunk.iter().map(|e| e.site.as_str()).collect();
        let streams: Vec<&str> = chunk.iter().map(|e| e.stream()).collect();
        let seqs: Vec<i64> = chunk.iter().map(|e| e.seq).collect();
        let ids: Vec<&str> = chunk.iter().map(|e| e.id.as_str()).collect();
        let kinds: Vec<&str> = chunk.iter().map(|e| e.kind.as_str()).collect();
        let ats: Vec<i64> = chunk.iter().map(|e| e.at_ms).collect();
        let lanes: Vec<&str> = chunk.iter().map(|e| e.lane.as_str()).collect();
        let bodies: Vec<Option<&str>> = chunk
            .iter()
            .map(|e| e.event.as_ref().map(|b| b.get()))
            .collect();
        let arrivals: Vec<i64> = chunk.iter().map(|e| e.seq).collect();
        tx.execute(
            "INSERT INTO event (site, stream, seq, id, kind, at_ms, lane, withheld, body, arrival, received_at)
             SELECT site, stream, seq, id, kind, at_ms, lane, NULL, body, arrival, $10
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                         $7::text[], $8::text[], $9::bigint[])
                  AS r(site, stream, seq, id, kind, at_ms, lane, body, arrival)
             ON CONFLICT DO NOTHING",
            &[&sites, &streams, &seqs, &ids, &kinds, &ats, &lanes, &bodies, &arrivals, &received],
        )
        .await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored: i64 = client
        .query_one("SELECT COUNT(*) FROM event", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        stored as usize == msgs.len(),
        "raw baseline stored {stored} of {} rows",
        msgs.len()
    );
    anyhow::ensure!(elapsed > 0.0, "raw baseline took no measurable time");
    Ok(msgs.len() as f64 / elapsed)
}

/// The same rows by binary COPY in transactions of `batch` rows.
async fn raw_copy(db: &str, msgs: &[Msg], batch: usize) -> anyhow::Result<f64> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;
    let (mut client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls)
        .await
        .context("raw COPY baseline: connecting")?;
    tokio::spawn(conn);
    let events: Vec<contract::EventIn> = msgs
        .iter()
        .map(|m| contract::decode_event(&m.payload))
        .collect::<Result<_, _>>()?;
    let received = now_ms();
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
    ];
    let started = Instant::now();
    for chunk in events.chunks(batch.max(1)) {
        let tx = client.transaction().await?;
        let sink = tx
            .copy_in(
                "COPY event (site, stream, seq, id, kind, at_ms, lane, body, arrival, received_at)
                 FROM STDIN BINARY",
            )
            .await?;
        let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
        for e in chunk {
            writer
                .as_mut()
                .write(&[
                    &e.site,
                    &e.stream(),
                    &e.seq,
                    &e.id,
                    &e.kind,
                    &e.at_ms,
                    &e.lane.as_str(),
                    &e.event.as_ref().map(|b| b.get()),
                    &e.seq,
                    &received,
                ])
                .await?;
        }
        writer.as_mut().finish().await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored: i64 = client
        .query_one("SELECT COUNT(*) FROM event", &[])
        .await?
        .get(0);
    anyhow::ensure!(
        stored as usize == msgs.len(),
        "raw COPY baseline stored {stored} of {} rows",
        msgs.len()
    );
    anyhow::ensure!(elapsed > 0.0, "raw COPY baseline took no measurable time");
    Ok(msgs.len() as f64 / elapsed)
}

/// Opens (migrates) a fresh database of the cluster for one run.
async fn fresh_database(cluster: &Arc<PgCluster>, name: &str) -> anyhow::Result<String> {
    let cluster = cluster.clone();
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let url = cluster.create_database(&name)?;
        PgStore::open(&url, now_ms())?;
        Ok(url)
    })
    .await?
}

/// Runs the whole benchmark.
pub async fn ingest(options: &BenchOptions) -> anyhow::Result<BenchOutcome> {
    anyhow::ensure!(
        options.sites > 0 && options.events_per_site > 0,
        "--sites and --events must be at least 1"
    );
    let cluster = Arc::new(
        tokio::task::spawn_blocking(PgCluster::start)
            .await?
            .context("starting a private PostgreSQL cluster")?,
    );
    let dir = tempfile::tempdir()?;
    let broker = Mosquitto::start(
        dir.path(),
        &MosquittoOptions {
            max_inflight_messages: Some(BROKER_INFLIGHT),
            ..MosquittoOptions::default()
        },
    )?;
    let port = broker.port();
    let msgs = backlog(options);

    let db1 = fresh_database(&cluster, "ingest1").await?;
    let (catch_up_1, run1) = catch_up(port, &db1, 1, &msgs).await?;
    let ingest_1 = msgs.len() as f64 / catch_up_1;
    let (batches_1, transactions_1) = run1.metrics.iter().fold((0, 0), |(n, us), m| {
        (
            n + m.batches.load(Ordering::Relaxed),
            us + m.batch_commit_us.load(Ordering::Relaxed),
        )
    });
    let mean_batch = {
        let c = run1.commits.lock().unwrap_or_else(|e| e.into_inner());
        c.batches.iter().sum::<usize>() as f64 / c.batches.len().max(1) as f64
    };
    // The baseline right after the run it is compared with: on a shared machine the load
    // changes within a minute, and both sides should see the same.
    let raw_db = fresh_database(&cluster, "raw").await?;
    let raw = raw_batched(&raw_db, &msgs, mean_batch.round() as usize).await?;
    let copy_db = fresh_database(&cluster, "rawcopy").await?;
    let raw_copy = raw_copy(&copy_db, &msgs, mean_batch.round() as usize).await?;
    let (p50, p99) = latency(port, &run1, options, ingest_1 * 0.5).await?;
    run1.stop().await?;

    let db2 = fresh_database(&cluster, "ingest2").await?;
    let (catch_up_2, run2) = catch_up(port, &db2, 2, &msgs).await?;
    run2.stop().await?;
    let ingest_2 = msgs.len() as f64 / catch_up_2;

    // The stores behind every run hold what was sent (checked, not assumed).
    for db in [&db1, &db2] {
        let db = db.clone();
        let want = (msgs.len() + if db == db1 { options.live_events } else { 0 }) as i64;
        let held: i64 = tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
            let r = PgStore::open(&db, now_ms())?.report()?;
            Ok(r.sites
                .iter()
                .filter(|s| s.site != "probe")
                .map(|s| s.events)
                .sum())
        })
        .await??;
        anyhow::ensure!(
            held == want,
            "a run's database holds {held} of {want} events"
        );
    }
    let ratio_1 = ingest_1 / raw;
    Ok(BenchOutcome {
        sites: options.sites,
        events: msgs.len(),
        raw_batched_per_s: raw,
        raw_copy_per_s: raw_copy,
        ingest_1_consumer_per_s: ingest_1,
        ingest_2_consumers_per_s: ingest_2,
        ingest_p99_ms: p99,
        ingest_p50_ms: p50,
        catch_up_1_consumer_s: catch_up_1,
        catch_up_2_consumers_s: catch_up_2,
        mean_batch,
        batches_1_consumer: batches_1,
        transactions_1_consumer_s: transactions_1 as f64 / 1e6,
        ratio_1_consumer_to_raw: ratio_1,
        ratio_2_consumers_to_raw: ingest_2 / raw,
        below_target: ratio_1 < 0.5,
    })
}
