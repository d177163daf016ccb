//! `hub bench sync`: how fast the outbox drains to central compared with raw rumqttc.
//!
//! Against a Mosquitto started on a free loopback port, in one run: (a) raw rumqttc QoS 1
//! publishes with the same in-flight window and payload size (the baseline); (b)/(c) a
//! pre-filled backlog drained by the real uplink to the reference central consumer, timed
//! until central holds every event contiguously (stored durably and de-duplicated).

use crate::store::{Store, StoreError, StoreOptions, outbox};
use crate::sync::uplink::{self, UplinkSettings};
use central::{CentralHandle, CentralOptions};
use hub_contract as contract;
use hub_core::{DomainEvent, Movement, MovementId, MovementKind, SiteId, SkuCode, Timestamp};
use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
use hub_mqtt::{BrokerAddress, Connection};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Figures from one run; field names are the JSON contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncBenchReport {
    pub raw_mqtt_qos1_per_s: f64,
    pub outbox_drain_per_s: f64,
    pub backlog_100k_drain_s: f64,
    pub drain_ratio: f64,
    pub events: usize,
    pub in_flight: usize,
    pub payload_bytes: usize,
    pub duplicates_at_central: i64,
}

const RATIO_TARGET: f64 = 0.3;
const DRAIN_TARGET_S: f64 = 10.0;

impl SyncBenchReport {
    /// Whether the targets hold: drain ≥ 0.3 × raw, and the backlog drains in ≤ 10 s.
    pub fn meets_targets(&self) -> bool {
        self.drain_ratio >= RATIO_TARGET && self.backlog_100k_drain_s <= DRAIN_TARGET_S
    }
}

impl std::fmt::Display for SyncBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = |ok: bool| if ok { "ok" } else { "BELOW TARGET" };
        writeln!(
            f,
            "Sync benchmark: {} events of {} bytes, {} in flight, local Mosquitto",
            self.events, self.payload_bytes, self.in_flight
        )?;
        writeln!(
            f,
            "  {:<56} {:>12} {:>9}  target",
            "phase", "value", "ratio"
        )?;
        writeln!(
            f,
            "  {:<56} {:>10.0}/s {:>9}",
            "(a) raw rumqttc QoS 1 publishes, acknowledged", self.raw_mqtt_qos1_per_s, "1.00x"
        )?;
        writeln!(
            f,
            "  {:<56} {:>10.0}/s {:>8.2}x  >= {RATIO_TARGET}x  {}",
            "(b) outbox drain to central (durable both ends, deduped)",
            self.outbox_drain_per_s,
            self.drain_ratio,
            verdict(self.drain_ratio >= RATIO_TARGET)
        )?;
        writeln!(
            f,
            "  {:<56} {:>11.2}s {:>9}  <= {DRAIN_TARGET_S} s  {}",
            format!("(c) seconds to drain a {}-event backlog", self.events),
            self.backlog_100k_drain_s,
            "",
            verdict(self.backlog_100k_drain_s <= DRAIN_TARGET_S)
        )?;
        write!(
            f,
            "  Central received every event; {} duplicate copies were dropped by (site, stream, seq).",
            self.duplicates_at_central
        )
    }
}

fn sample_event(n: usize) -> DomainEvent {
    DomainEvent::MovementRecorded {
        movement: Movement {
            id: MovementId::new(format!("bench-{n}")).expect("valid"),
            sku: SkuCode::new(format!("BENCH-{}", n % 50)).expect("valid"),
            batch: Some(hub_core::BatchKey {
                lot: format!("L{}", n % 7),
                expiry: None,
            }),
            kind: MovementKind::Receipt,
            quantity: 1,
            reason: String::new(),
            reference: "benchmark".into(),
            at: Timestamp(1_700_000_000_000 + n as i64),
        },
        sku_balance_after: n as i64,
        batch_balance_after: Some(n as i64),
    }
}

async fn raw_rate(
    port: u16,
    messages: usize,
    in_flight: usize,
    payload: usize,
) -> anyhow::Result<f64> {
    let mut options = MqttOptions::new("bench-raw", "127.0.0.1", port);
    options
        .set_inflight(in_flight.min(u16::MAX as usize) as u16)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, in_flight);
    let body = vec![b'x'; payload];
    let publisher = tokio::spawn(async move {
        for _ in 0..messages {
            client
                .publish("bench/raw", QoS::AtLeastOnce, false, body.clone())
                .await?;
        }
        Ok::<_, rumqttc::ClientError>(client)
    });
    let mut acked = 0;
    let mut start = None;
    while acked < messages {
        match eventloop.poll().await? {
            Event::Incoming(Packet::ConnAck(_)) => start = Some(Instant::now()),
            Event::Incoming(Packet::PubAck(_)) => acked += 1,
            _ => {}
        }
    }
    let elapsed = start.map_or(Duration::from_secs(1), |s| s.elapsed());
    let client = publisher.await??;
    let _ = client.try_disconnect();
    Ok(messages as f64 / elapsed.as_secs_f64())
}

/// Runs the benchmark (needs the `mosquitto` binary).
pub async fn run(events: usize, in_flight: usize) -> anyhow::Result<SyncBenchReport> {
    let scratch = tempfile::Builder::new()
        .prefix("hub-bench-sync-")
        .tempdir()?;
    let mut broker =
        Mosquitto::start(&scratch.path().join("broker"), &MosquittoOptions::default())?;
    let port = broker.port();
    let site = SiteId::new("bench-site")?;

    let payload_bytes = contract::encode_event(
        contract::EventRef {
            site: site.as_str(),
            stream: "0190b0b0-0000-7000-8000-0000000000aa",
            seq: 1,
            id: "0190b0b0-0000-7000-8000-000000000000",
            kind: "movement_recorded",
            created_at_ms: 1,
            payload: &serde_json::to_string(&sample_event(1))?,
        },
        contract::Lane::Backlog,
        usize::MAX,
    )?
    .0
    .len();

    eprintln!("(a) raw rumqttc QoS 1 publishes …");
    let raw = raw_rate(port, events, in_flight, payload_bytes).await?;

    eprintln!("    filling a {events}-event outbox …");
    let store = Store::open(
        &scratch.path().join("hub.sqlite"),
        site.as_str(),
        &StoreOptions::default(),
    )?;
    let mut written = 0;
    while written < events {
        let chunk = (events - written).min(20_000);
        let from = written;
        store
            .write(move |c| {
                for n in from..from + chunk {
                    outbox::append(c, &sample_event(n), crate::clock::now())?;
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        written += chunk;
    }

    let broker_address = BrokerAddress::loopback(port);
    let central = CentralHandle::start(CentralOptions::new(
        Connection::plain(broker_address.clone(), "bench-central"),
        scratch.path().join("central.sqlite"),
    ))?;
    central
        .wait_ready(
            &Connection::plain(broker_address.clone(), "bench-probe"),
            Duration::from_secs(20),
        )
        .await?;

    eprintln!("(b) draining the outbox to central …");
    let shutdown = CancellationToken::new();
    let mut settings =
        UplinkSettings::from_defaults(Connection::plain(broker_address, "hub-bench-site"));
    settings.tuning.in_flight = in_flight;
    let start = Instant::now();
    let task = tokio::spawn(uplink::run(
        site.clone(),
        settings,
        store.clone(),
        shutdown.clone(),
    ));
    let deadline = start + Duration::from_secs(120);
    let report = loop {
        let report = central.report()?;
        if let Some(s) = report
            .sites
            .iter()
            .find(|s| s.site == site.as_str() && s.contiguous_seq >= events as i64)
        {
            break s.clone();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the backlog did not drain within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let drain_s = start.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = task.await;
    central.stop().await?;
    store.close();
    broker.stop();
    let drain = events as f64 / drain_s;
    Ok(SyncBenchReport {
        raw_mqtt_qos1_per_s: raw,
        outbox_drain_per_s: drain,
        backlog_100k_drain_s: drain_s,
        drain_ratio: drain / raw,
        events,
        in_flight,
        payload_bytes,
        duplicates_at_central: report.duplicates_dropped,
    })
}
