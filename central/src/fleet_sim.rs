//! The fleet simulator behind `central sim-fleet`, the benchmark and the fault tests: it
//! publishes, through a real broker, what N hubs would — event envelopes of a realistic mix,
//! live and backlog lanes interleaved, retained status, heartbeats, withheld markers for
//! events too large to send, duplicates after a reconnect, sites that were offline and come
//! back with a backlog, and events "lost after the broker acknowledged them" that it sends
//! again only when central asks for them. It keeps everything it published, so it can answer
//! any resend and the tests can compare central's store with what was sent.
//!
//! A tool, not on `central run`'s path. One MQTT connection stands in for all sites (the
//! messages are the hubs'; the connection count is not what is measured).

use hub_contract::{self as contract, EventRef, Lane, SyncControl};
use hub_mqtt::{Connection, mqtt_options, network_options};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct FleetSimOptions {
    pub connection: Connection,
    pub sites: usize,
    pub events_per_site: usize,
    /// Site ids are `<prefix>-<n>`.
    pub site_prefix: String,
    /// Every n-th site "loses" one event after the broker acknowledged it: central must ask
    /// for it (0: none).
    pub lost_every: usize,
    /// Every n-th site is offline for the first half and comes back with a backlog (0: none).
    pub offline_every: usize,
    /// Every n-th event of a site is too large and sent as a withheld marker (0: none).
    pub withheld_every: usize,
    /// Every n-th site reconnects at the end and sends its last events again (0: none).
    pub duplicate_every: usize,
    /// Event time of the first event (ms since the epoch); one second apart per site.
    pub start_ms: i64,
    /// Pause after each round of events (one event per site), to spread a run over time.
    pub round_pause: Duration,
    /// How often every site sends a heartbeat once its events are published.
    pub heartbeat_every: Duration,
}

impl FleetSimOptions {
    pub fn new(connection: Connection, sites: usize, events_per_site: usize) -> FleetSimOptions {
        FleetSimOptions {
            connection,
            sites,
            events_per_site,
            site_prefix: "sim".into(),
            lost_every: 10,
            offline_every: 7,
            withheld_every: 50,
            duplicate_every: 5,
            start_ms: 1_700_000_000_000,
            round_pause: Duration::ZERO,
            heartbeat_every: Duration::from_secs(1),
        }
    }

    pub fn site(&self, n: usize) -> String {
        format!("{}-{n:05}", self.site_prefix)
    }
}

/// A resend request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResendRequest {
    pub site: String,
    pub from_seq: i64,
    pub to_seq: i64,
}

/// What the simulator did.
#[derive(Debug, Clone, Default)]
pub struct FleetSimReport {
    /// Distinct `(site, seq)` published (every one of them must be stored once).
    pub events: u64,
    /// Messages published, copies and resends included.
    pub messages: u64,
    /// The `(site, seq)` it held back until central asked.
    pub lost: Vec<(String, i64)>,
    pub resend_requests: Vec<ResendRequest>,
    /// Highest cursor central confirmed, per site.
    pub confirmed: HashMap<String, i64>,
    /// Publish time of each `(site, seq)`'s first copy (ms since the epoch), for latency.
    pub published_at_ms: HashMap<(String, i64), i64>,
}

/// The sync messages the simulator has heard.
#[derive(Default)]
struct Heard {
    resends: Vec<ResendRequest>,
    confirmed: HashMap<String, i64>,
}

/// Now, strictly later than any earlier call (a hub's reports are ordered by their time).
fn now_ms() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let prev = LAST.fetch_max(wall, Ordering::Relaxed);
    if prev >= wall {
        LAST.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        wall
    }
}

fn site_number(site: &str) -> u64 {
    site.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Open red alerts a simulated site reports in its heartbeat (every 13th site has one).
pub fn sim_red_alerts(site: &str) -> i64 {
    i64::from(site_number(site) % 13 == 12)
}

/// Devices offline a simulated site reports (every 17th site has two).
pub fn sim_devices_offline(site: &str) -> i64 {
    if site_number(site) % 17 == 16 { 2 } else { 0 }
}

/// The stream every simulated site numbers its events in.
pub fn sim_stream(site: &str) -> String {
    format!("stream-{site}")
}

/// A realistic mix of event kinds (stock movements dominate, then pickups and receiving).
const KINDS: &[(&str, u32)] = &[
    ("stock_moved", 55),
    ("pickup_handed_over", 20),
    ("line_decided", 10),
    ("trace_code_bound", 8),
    ("alert_raised", 4),
    ("device_status", 3),
];

fn kind_of(seq: i64) -> &'static str {
    let total: u32 = KINDS.iter().map(|(_, w)| w).sum();
    let mut at = (seq.unsigned_abs() as u32).wrapping_mul(2_654_435_761) % total;
    for (kind, w) in KINDS {
        if at < *w {
            return kind;
        }
        at -= w;
    }
    KINDS[0].0
}

/// One site's events as the simulator keeps them (payload per seq, encoded once).
struct SiteEvents {
    stream: String,
    payloads: BTreeMap<i64, Vec<u8>>,
}

fn encode_site(options: &FleetSimOptions, site: &str, lane: Lane) -> SiteEvents {
    let stream = sim_stream(site);
    let mut payloads = BTreeMap::new();
    for seq in 1..=options.events_per_site as i64 {
        let kind = kind_of(seq);
        let id = format!("{site}-{seq}");
        let withheld = options.withheld_every > 0 && seq % options.withheld_every as i64 == 0;
        let body = if withheld {
            format!(
                r#"{{"kind":"{kind}","photo_evidence":"{}"}}"#,
                "x".repeat(600)
            )
        } else {
            format!(
                r#"{{"kind":"{kind}","sku":"SKU-{}","qty":{}}}"#,
                seq % 97,
                seq % 13
            )
        };
        let row = EventRef {
            site,
            stream: &stream,
            seq,
            id: &id,
            kind,
            created_at_ms: options.start_ms + seq * 1000,
            payload: &body,
        };
        let limit = if withheld { 256 } else { 64 << 10 };
        let (bytes, _) = contract::encode_event(row, lane, limit).expect("the simulator's JSON");
        payloads.insert(seq, bytes);
    }
    SiteEvents { stream, payloads }
}

/// A publisher on one connection: counts the broker's acknowledgements, hands sync messages
/// to the simulator, resubscribes after every reconnect (the broker may restart).
struct Publisher {
    client: AsyncClient,
    acked: Arc<AtomicU64>,
    published: AtomicU64,
}

impl Publisher {
    async fn publish(&self, topic: String, retain: bool, payload: Vec<u8>) {
        // The request queue is bounded: this waits while the connection is down.
        if self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .is_ok()
        {
            self.published.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until the broker acknowledged everything published so far.
    async fn settle(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.acked.load(Ordering::Relaxed) >= self.published.load(Ordering::Relaxed) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Runs the fleet: publishes every site's events, then keeps heartbeating and answering
/// resend requests until `done` says central confirmed enough, or `stop` is cancelled.
pub async fn run(
    options: FleetSimOptions,
    stop: CancellationToken,
    until_confirmed: bool,
) -> anyhow::Result<FleetSimReport> {
    hub_mqtt::install_crypto_provider();
    let mut mqtt = mqtt_options(&options.connection, 1 << 20, 1 << 20)?;
    mqtt.set_clean_session(true);
    mqtt.set_manual_acks(false);
    mqtt.set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(mqtt, 4096);
    eventloop.set_network_options(network_options(&options.connection));
    let acked = Arc::new(AtomicU64::new(0));
    let heard = Arc::new(Mutex::new(Heard::default()));
    let (resend_tx, mut resend_rx) = tokio::sync::mpsc::unbounded_channel::<ResendRequest>();
    let poller = {
        let (acked, heard, client) = (acked.clone(), heard.clone(), client.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let polled = tokio::select! {
                    _ = stop.cancelled() => return,
                    p = eventloop.poll() => p,
                };
                match polled {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(contract::FLEET_SYNC_FILTER, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        match contract::decode_sync(&p.payload) {
                            Ok(SyncControl::Resend {
                                site,
                                from_seq,
                                to_seq,
                                ..
                            }) => {
                                let r = ResendRequest {
                                    site,
                                    from_seq,
                                    to_seq,
                                };
                                heard.lock().await.resends.push(r.clone());
                                let _ = resend_tx.send(r);
                            }
                            Ok(SyncControl::Cursor {
                                site,
                                contiguous_seq,
                                ..
                            }) => {
                                let mut h = heard.lock().await;
                                let c = h.confirmed.entry(site).or_insert(0);
                                *c = (*c).max(contiguous_seq);
                            }
                            _ => {}
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    };
    let publisher = Publisher {
        client: client.clone(),
        acked,
        published: AtomicU64::new(0),
    };
    let sites: Vec<String> = (0..options.sites).map(|n| options.site(n)).collect();
    let live: HashMap<&str, SiteEvents> = sites
        .iter()
        .map(|s| (s.as_str(), encode_site(&options, s, Lane::Live)))
        .collect();
    let backlog: HashMap<&str, SiteEvents> = sites
        .iter()
        .map(|s| (s.as_str(), encode_site(&options, s, Lane::Backlog)))
        .collect();
    let m = options.events_per_site as i64;
    let every = |n: usize, i: usize| n > 0 && i % n == n - 1;
    let mut report = FleetSimReport::default();
    for (i, site) in sites.iter().enumerate() {
        if every(options.lost_every, i) && m >= 2 {
            report.lost.push((site.clone(), m / 2 + 1));
        }
    }
    let lost: std::collections::HashSet<(String, i64)> = report.lost.iter().cloned().collect();
    let status = |site: &str, state: &str, last: i64| {
        contract::encode(&contract::Status {
            v: contract::CONTRACT_VERSION,
            site: site.into(),
            state: state.into(),
            hub_version: "sim".into(),
            last_seq: last,
            // A hub coming back has its backlog still to send.
            first_undelivered_seq: (last > 0).then_some(1),
            at_ms: now_ms(),
            stream: contract::StreamFields {
                stream: Some(sim_stream(site)),
                stream_continues: None,
                stream_base_seq: Some(0),
            },
        })
    };
    // Offline sites' status says so (as their Last Will would have); the others are online.
    for (i, site) in sites.iter().enumerate() {
        let state = if every(options.offline_every, i) {
            "offline"
        } else {
            "online"
        };
        publisher
            .publish(contract::status_topic(site), true, status(site, state, 0))
            .await;
    }
    // Rounds: each site publishes its next event; an offline site comes back at half time
    // and sends its backlog interleaved with everyone's live events.
    let half = m / 2;
    let mut backlog_next: HashMap<&str, i64> = HashMap::new();
    for seq in 1..=m {
        if !options.round_pause.is_zero() {
            tokio::time::sleep(options.round_pause).await;
        }
        for (i, site) in sites.iter().enumerate() {
            let offline = every(options.offline_every, i);
            if offline && seq <= half {
                continue;
            }
            if offline && seq == half + 1 {
                publisher
                    .publish(
                        contract::status_topic(site),
                        true,
                        status(site, "online", seq),
                    )
                    .await;
                backlog_next.insert(site, 1);
            }
            // A few backlog events for each live one, until the backlog is sent.
            if let Some(next) = backlog_next.get_mut(site.as_str()) {
                for _ in 0..3 {
                    if *next > half {
                        break;
                    }
                    let key = (site.clone(), *next);
                    if !lost.contains(&key) {
                        report.published_at_ms.insert(key, now_ms());
                        publisher
                            .publish(
                                contract::events_topic(site),
                                false,
                                backlog[site.as_str()].payloads[next].clone(),
                            )
                            .await;
                    }
                    *next += 1;
                }
            }
            let key = (site.clone(), seq);
            if !lost.contains(&key) {
                report.published_at_ms.insert(key, now_ms());
                publisher
                    .publish(
                        contract::events_topic(site),
                        false,
                        live[site.as_str()].payloads[&seq].clone(),
                    )
                    .await;
            }
        }
    }
    // Whatever backlog is left (short runs).
    for (site, next) in backlog_next.iter_mut() {
        while *next <= half {
            let key = (site.to_string(), *next);
            if !lost.contains(&key) {
                report.published_at_ms.insert(key, now_ms());
                publisher
                    .publish(
                        contract::events_topic(site),
                        false,
                        backlog[site].payloads[next].clone(),
                    )
                    .await;
            }
            *next += 1;
        }
    }
    // Reconnected sites send their last events again (their PUBACKs were lost).
    for (i, site) in sites.iter().enumerate() {
        if every(options.duplicate_every, i) {
            for seq in (m - 2).max(1)..=m {
                publisher
                    .publish(
                        contract::events_topic(site),
                        false,
                        backlog[site.as_str()].payloads[&seq].clone(),
                    )
                    .await;
            }
        }
    }
    report.events = sites.len() as u64 * m as u64;
    // Heartbeats (everything counts as delivered: the lost events too) and resends until
    // central holds everything, or until stopped.
    let mut beat = tokio::time::interval(options.heartbeat_every);
    let mut beats = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(r) = resend_rx.recv() => {
                let Some(events) = backlog.get(r.site.as_str()) else { continue };
                for seq in r.from_seq.max(1)..=r.to_seq.min(m) {
                    publisher.publish(contract::events_topic(&r.site), false, events.payloads[&seq].clone()).await;
                }
            }
            _ = beat.tick() => {
                // Before the first heartbeat, give the broker a moment to acknowledge what was
                // published (a message it lost in a restart is never acknowledged; the hub
                // counts it as sent all the same, and central will ask for it).
                if beats == 0 {
                    publisher.settle(Duration::from_secs(5)).await;
                }
                let confirmed = heard.lock().await.confirmed.clone();
                if until_confirmed && beats > 0 && sites.iter().all(|s| confirmed.get(s).copied().unwrap_or(0) >= m) {
                    break;
                }
                beats += 1;
                for site in &sites {
                    let hb = contract::Heartbeat {
                        v: contract::CONTRACT_VERSION,
                        site: site.clone(),
                        at_ms: now_ms(),
                        outbox_depth: 0,
                        oldest_undelivered_age_s: 0.0,
                        last_seq: m,
                        first_undelivered_seq: None,
                        confirmed_seq: confirmed.get(site).copied().unwrap_or(0),
                        in_flight: 0,
                        red_alerts_open: Some(sim_red_alerts(site)),
                        devices_offline: Some(sim_devices_offline(site)),
                        stream: contract::StreamFields {
                            stream: Some(live[site.as_str()].stream.clone()),
                            stream_continues: None,
                            stream_base_seq: Some(0),
                        },
                    };
                    publisher.publish(contract::heartbeat_topic(site), false, contract::encode(&hb)).await;
                }
            }
        }
    }
    let heard = std::mem::take(&mut *heard.lock().await);
    report.resend_requests = heard.resends;
    report.confirmed = heard.confirmed;
    report.messages = publisher.published.load(Ordering::Relaxed);
    let _ = client.try_disconnect();
    poller.abort();
    Ok(report)
}
