//! The hub's uplink task: one connection at a time, draining the outbox at QoS 1.
//!
//! Per connection ("epoch"): a fresh rumqttc client and event loop, polled by a task that
//! only polls and forwards what it sees (it never publishes, so it cannot deadlock). This
//! task publishes with `try_publish` (never blocking) within the in-flight window, pairs
//! PUBACKs with outbox rows through [`Window`], and marks rows delivered only on a PUBACK of
//! the same connection. On any error the connection and everything known about it are
//! dropped; after a capped, jittered backoff the next one resends from the oldest undelivered
//! row. Rows recorded after a connection is up travel on the live lane, ahead of the backlog.
//! A maintenance task prunes delivered rows; it never deletes an undelivered row. The uplink
//! reports its state (connecting, online, offline with the reason) to the status board.

use super::contract::{self, EventRef, Lane, Withheld};
use super::downlink::{self, Incoming};
use super::window::{Backoff, Tag, Window};
use super::{Connection, SyncError, install_crypto_provider, mqtt_options, network_options};
use crate::config::{Config, UplinkConfig};
use crate::status::{StatusBoard, Uplink, UplinkState};
use crate::store::outbox::{self, OutboxRow};
use crate::store::stream::{self as stream_store, StreamInfo};
use crate::store::{Store, StoreError};
use hub_core::{DomainEvent, SiteId, Timestamp};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, Outgoing, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything the uplink needs besides the store.
#[derive(Debug, Clone)]
pub struct UplinkSettings {
    pub connection: Connection,
    pub in_flight: usize,
    pub max_message_bytes: usize,
    pub max_command_bytes: usize,
    pub heartbeat: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub retention: Duration,
    /// The hub's config, for station commands (`None`: they are answered `unavailable`).
    pub stations: Option<Arc<Config>>,
    /// Where the uplink reports its state for the status page.
    pub board: Option<StatusBoard>,
}

impl UplinkSettings {
    /// The configuration defaults for a connection (what `[uplink]` gives when only the
    /// broker is set).
    pub fn from_defaults(connection: Connection) -> UplinkSettings {
        UplinkSettings {
            connection,
            in_flight: 100,
            max_message_bytes: 65_536,
            max_command_bytes: 262_144,
            heartbeat: Duration::from_secs(60),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 24 * 3600),
            stations: None,
            board: None,
        }
    }

    /// Settings from the validated `[uplink]` section.
    pub fn from_config(c: &UplinkConfig) -> UplinkSettings {
        UplinkSettings {
            connection: Connection {
                broker: c.broker.clone(),
                client_id: c.client_id.clone(),
                username: c.username.clone(),
                password: c.password.clone(),
                password_file: c.password_file.clone(),
                ca_file: c.ca_file.clone(),
                client_cert_file: c.client_cert_file.clone(),
                client_key_file: c.client_key_file.clone(),
                keep_alive: c.keep_alive,
                connect_timeout: c.connect_timeout,
            },
            in_flight: c.in_flight,
            max_message_bytes: c.max_message_bytes,
            max_command_bytes: c.max_command_bytes,
            heartbeat: c.heartbeat,
            reconnect_min: c.reconnect_min,
            reconnect_max: c.reconnect_max,
            retention: c.retention,
            stations: None,
            board: None,
        }
    }
}

/// Reports the uplink's state to the status board, if there is one.
fn report(settings: &UplinkSettings, state: UplinkState, detail: String) {
    if let Some(board) = &settings.board {
        board.set_uplink(Uplink::new(state, crate::clock::now()).with_detail(detail));
    }
}

/// What the polling task forwards.
enum Polled {
    ConnAck { session_present: bool },
    Sent(u16),
    PubAck(u16),
    Message(rumqttc::Publish),
    Failed(ConnectionError),
}

/// Only polls; never publishes (rumqttc deadlocks when the polling task awaits a publish).
async fn poll_loop(mut eventloop: rumqttc::EventLoop, tx: mpsc::UnboundedSender<Polled>) {
    loop {
        let polled = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => Polled::ConnAck {
                session_present: ack.session_present,
            },
            Ok(Event::Incoming(Packet::PubAck(ack))) => Polled::PubAck(ack.pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => Polled::Message(p),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Polled::Sent(pkid),
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Polled::Failed(e));
                return;
            }
        };
        if tx.send(polled).is_err() {
            return;
        }
    }
}

fn max_outgoing_packet(settings: &UplinkSettings) -> usize {
    // Room for the topic and fixed header on top of the largest payload we send.
    settings.max_message_bytes + 1024
}

/// The stream fields of the status and heartbeat.
fn stream_fields(stream: &StreamInfo) -> contract::StreamFields {
    contract::StreamFields {
        stream: Some(stream.id.clone()),
        stream_continues: stream.continues.clone(),
        stream_base_seq: Some(stream.base_seq),
    }
}

fn status(
    site: &SiteId,
    stream: &StreamInfo,
    state: &str,
    stats: &outbox::OutboxStats,
    now: Timestamp,
) -> Vec<u8> {
    contract::encode(&contract::Status {
        v: contract::CONTRACT_VERSION,
        site: site.to_string(),
        state: state.into(),
        hub_version: env!("CARGO_PKG_VERSION").into(),
        last_seq: stats.last_seq,
        first_undelivered_seq: stats.first_undelivered_seq,
        at_ms: now.millis(),
        stream: stream_fields(stream),
    })
}

/// Runs the uplink until `shutdown` is cancelled. Never returns early: connection problems
/// are logged and retried with backoff.
pub async fn run(
    site: SiteId,
    settings: UplinkSettings,
    store: Store,
    shutdown: CancellationToken,
) {
    install_crypto_provider();
    let tasks = TaskTracker::new();
    let (incoming_tx, incoming_rx) = mpsc::unbounded_channel::<Incoming>();
    let (rewind_tx, mut rewind_rx) = mpsc::unbounded_channel::<i64>();
    tasks.spawn(downlink::run(
        site.clone(),
        store.clone(),
        settings.stations.clone(),
        settings.max_command_bytes,
        incoming_rx,
        rewind_tx,
    ));
    tasks.spawn(maintenance(
        site.clone(),
        settings.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    let mut backoff = Backoff::new(settings.reconnect_min, settings.reconnect_max);
    let mut epoch: u64 = 0;
    while !shutdown.is_cancelled() {
        epoch += 1;
        let started = Instant::now();
        report(
            &settings,
            UplinkState::Connecting,
            format!("connecting to {}", settings.connection.broker),
        );
        let outcome = connection(
            &site,
            &settings,
            &store,
            epoch,
            &incoming_tx,
            &mut rewind_rx,
            &shutdown,
        )
        .await;
        let held = match outcome {
            Ok(()) => break,
            Err((e, connected)) => {
                report(
                    &settings,
                    UplinkState::Offline,
                    format!("{}; events wait in the outbox", e),
                );
                match &e {
                    SyncError::Tls { .. }
                    | SyncError::TlsSetup { .. }
                    | SyncError::Refused { .. }
                    | SyncError::ReadFile { .. }
                    | SyncError::BadPem { .. } => {
                        tracing::error!(epoch, error = %e, "uplink cannot connect; a person must fix this");
                    }
                    _ => {
                        tracing::warn!(epoch, error = %e, "uplink down; events stay in the outbox")
                    }
                }
                connected && started.elapsed() > Duration::from_secs(10)
            }
        };
        if held {
            backoff.reset();
        }
        let delay = backoff.next_delay(rand::random::<f64>());
        tracing::debug!(
            delay_ms = delay.as_millis() as u64,
            "uplink reconnect backoff"
        );
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    report(&settings, UplinkState::Offline, "uplink stopped".into());
    drop(incoming_tx);
    tasks.close();
    tasks.wait().await;
    tracing::info!("uplink stopped");
}

/// State of one connection.
struct Epoch<'a> {
    site: &'a SiteId,
    /// The database's stream, named in every envelope (it only changes at start-up).
    stream: StreamInfo,
    settings: &'a UplinkSettings,
    store: &'a Store,
    client: AsyncClient,
    window: Window,
    marks: Vec<i64>,
    writes: TaskTracker,
}

type EpochResult = Result<(), (SyncError, bool)>;

async fn connection(
    site: &SiteId,
    settings: &UplinkSettings,
    store: &Store,
    epoch: u64,
    incoming_tx: &mpsc::UnboundedSender<Incoming>,
    rewind_rx: &mut mpsc::UnboundedReceiver<i64>,
    shutdown: &CancellationToken,
) -> EpochResult {
    let lost = |detail: String| SyncError::Lost {
        broker: settings.connection.broker.to_string(),
        detail,
    };
    let stats = store
        .read(outbox::stats)
        .await
        .map_err(|e| (lost(format!("cannot read the outbox: {e}")), false))?;
    let stream = store.read(stream_store::current).await.map_err(|e| {
        (
            lost(format!("cannot read the database's stream: {e}")),
            false,
        )
    })?;
    let mut options = mqtt_options(
        &settings.connection,
        super::MAX_INCOMING_PACKET_BYTES,
        max_outgoing_packet(settings),
    )
    .map_err(|e| (e, false))?;
    options
        .set_inflight((settings.in_flight + 8).min(u16::MAX as usize) as u16)
        .set_last_will(LastWill::new(
            contract::status_topic(site.as_str()),
            status(site, &stream, "offline", &stats, crate::clock::now()),
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(options, settings.in_flight + 64);
    eventloop.set_network_options(network_options(&settings.connection));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll_loop(eventloop, tx));
    let connect_wait = settings.connection.connect_timeout + Duration::from_secs(2);
    let first = tokio::select! {
        _ = shutdown.cancelled() => { poller.abort(); return Ok(()); }
        first = tokio::time::timeout(connect_wait, rx.recv()) => first,
    };
    let session_present = match first {
        Ok(Some(Polled::ConnAck { session_present })) => session_present,
        Ok(Some(Polled::Failed(e))) => {
            poller.abort();
            return Err((
                SyncError::from_connection(
                    &settings.connection.broker,
                    settings.connection.connect_timeout,
                    e,
                ),
                false,
            ));
        }
        _ => {
            poller.abort();
            return Err((
                SyncError::Timeout {
                    broker: settings.connection.broker.to_string(),
                    seconds: connect_wait.as_secs_f64(),
                },
                false,
            ));
        }
    };
    report(
        settings,
        UplinkState::Online,
        format!(
            "connected to {} as {}",
            settings.connection.broker, settings.connection.client_id
        ),
    );
    tracing::info!(
        epoch,
        broker = %settings.connection.broker,
        client_id = %settings.connection.client_id,
        session_present,
        undelivered = stats.undelivered,
        "uplink connected"
    );
    let mut e = Epoch {
        site,
        stream,
        settings,
        store,
        client,
        window: Window::new(
            settings.in_flight,
            stats.first_undelivered_seq,
            stats.last_seq,
        ),
        marks: Vec::new(),
        writes: TaskTracker::new(),
    };
    let result = e.drive(&mut rx, incoming_tx, rewind_rx, shutdown).await;
    e.flush_marks();
    e.writes.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), e.writes.wait()).await;
    if result.is_ok() {
        // Graceful stop: say so (the Last Will only covers abrupt ends), then let the poller
        // flush the status and the disconnect.
        let _ = tokio::time::timeout(Duration::from_secs(1), poller).await;
    } else {
        poller.abort();
    }
    result.map_err(|err| (err, true))
}

impl Epoch<'_> {
    async fn drive(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Polled>,
        incoming_tx: &mpsc::UnboundedSender<Incoming>,
        rewind_rx: &mut mpsc::UnboundedReceiver<i64>,
        shutdown: &CancellationToken,
    ) -> Result<(), SyncError> {
        let site = self.site.as_str();
        self.client
            .try_subscribe_many([
                rumqttc::SubscribeFilter::new(contract::commands_topic(site), QoS::AtLeastOnce),
                rumqttc::SubscribeFilter::new(contract::sync_topic(site), QoS::AtLeastOnce),
                rumqttc::SubscribeFilter::new(contract::station_filter(site), QoS::AtLeastOnce),
            ])
            .map_err(|e| self.lost(format!("cannot subscribe: {e}")))?;
        let stats = self.stats().await?;
        self.publish_control(
            contract::status_topic(site),
            QoS::AtLeastOnce,
            true,
            status(
                self.site,
                &self.stream,
                "online",
                &stats,
                crate::clock::now(),
            ),
        )?;
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat);
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut fetch = true;
        loop {
            if fetch && self.window.free() > 0 {
                self.fill().await?;
            }
            fetch = false;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    let stats = self.stats().await?;
                    let _ = self.client.try_publish(
                        contract::status_topic(site),
                        QoS::AtLeastOnce,
                        true,
                        status(self.site, &self.stream, "offline", &stats, crate::clock::now()),
                    );
                    let _ = self.client.try_disconnect();
                    return Ok(());
                }
                polled = rx.recv() => {
                    let Some(polled) = polled else {
                        return Err(self.lost("the polling task ended".into()));
                    };
                    self.handle(polled, incoming_tx)?;
                    while let Ok(more) = rx.try_recv() {
                        self.handle(more, incoming_tx)?;
                    }
                    if self.marks.len() >= 512 {
                        self.flush_marks();
                    }
                    fetch = self.window.free() * 4 >= self.settings.in_flight;
                }
                Some(from) = rewind_rx.recv() => {
                    tracing::info!(from_seq = from, "central asked for a resend");
                    self.window.rewind(from);
                    fetch = true;
                }
                _ = heartbeat.tick() => {
                    let stats = self.stats().await?;
                    let now = crate::clock::now();
                    let beat = contract::Heartbeat {
                        v: contract::CONTRACT_VERSION,
                        site: site.to_owned(),
                        at_ms: now.millis(),
                        outbox_depth: stats.undelivered,
                        oldest_undelivered_age_s: stats
                            .oldest_undelivered_at
                            .map_or(0.0, |t| (now.millis() - t).max(0) as f64 / 1000.0),
                        last_seq: stats.last_seq,
                        first_undelivered_seq: stats.first_undelivered_seq,
                        confirmed_seq: self.store.read(outbox::confirmed_seq).await.unwrap_or(0),
                        in_flight: self.window.in_flight(),
                        stream: stream_fields(&self.stream),
                    };
                    self.publish_control(contract::heartbeat_topic(site), QoS::AtMostOnce, false, contract::encode(&beat))?;
                }
                _ = tick.tick() => {
                    self.flush_marks();
                    fetch = true;
                }
            }
        }
    }

    fn lost(&self, detail: String) -> SyncError {
        SyncError::Lost {
            broker: self.settings.connection.broker.to_string(),
            detail,
        }
    }

    async fn stats(&self) -> Result<outbox::OutboxStats, SyncError> {
        self.store
            .read(outbox::stats)
            .await
            .map_err(|e| self.lost(format!("cannot read the outbox: {e}")))
    }

    fn publish_control(
        &mut self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), SyncError> {
        match self.client.try_publish(topic, qos, retain, payload) {
            Ok(()) => {
                self.window.queued(Tag::Control);
                Ok(())
            }
            // A full request queue means a slow broker; skipping one status is harmless.
            Err(rumqttc::ClientError::TryRequest(_)) => Ok(()),
            Err(e) => Err(self.lost(format!("cannot queue a status message: {e}"))),
        }
    }

    fn handle(
        &mut self,
        polled: Polled,
        incoming_tx: &mpsc::UnboundedSender<Incoming>,
    ) -> Result<(), SyncError> {
        match polled {
            Polled::Sent(pkid) => self
                .window
                .sent(pkid)
                .map_err(|e| self.lost(e.to_string()))?,
            Polled::PubAck(pkid) => match self.window.acked(pkid) {
                Some(Tag::Event { seq, .. }) => self.marks.push(seq),
                Some(Tag::Withheld { seq, reason }) => self.record_withheld(seq, reason),
                Some(Tag::Control) | None => {}
            },
            Polled::Message(publish) => {
                let _ = incoming_tx.send(Incoming {
                    client: self.client.clone(),
                    publish,
                });
            }
            Polled::Failed(e) => {
                return Err(SyncError::from_connection(
                    &self.settings.connection.broker,
                    self.settings.connection.connect_timeout,
                    e,
                ));
            }
            Polled::ConnAck { .. } => {}
        }
        Ok(())
    }

    fn flush_marks(&mut self) {
        if self.marks.is_empty() {
            return;
        }
        let seqs = std::mem::take(&mut self.marks);
        let store = self.store.clone();
        self.writes.spawn(async move {
            let n = seqs.len();
            let result = store
                .write(move |c| outbox::mark_delivered(c, &seqs, crate::clock::now()))
                .await;
            if let Err(e) = result {
                // The rows stay undelivered and are sent again on the next connection.
                tracing::warn!(rows = n, error = %e, "cannot mark rows delivered; they will be resent");
            }
        });
    }

    fn record_withheld(&mut self, seq: i64, reason: String) {
        let store = self.store.clone();
        self.writes.spawn(async move {
            let message = format!("outbox event #{seq} was not sent: {reason}; it stays in the hub's outbox");
            tracing::error!(seq, %reason, "event withheld from the uplink");
            let result = store
                .write(move |c| {
                    let now = crate::clock::now();
                    outbox::mark_withheld(c, seq, &reason, now)?;
                    outbox::append(
                        c,
                        &DomainEvent::SyncAlert {
                            code: "event_withheld".into(),
                            message,
                            seq: Some(seq),
                        },
                        now,
                    )?;
                    Ok::<_, StoreError>(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(seq, error = %e, "cannot record a withheld event; it will be retried");
            }
        });
    }

    /// Reads rows for both lanes and publishes them within the window.
    async fn fill(&mut self) -> Result<(), SyncError> {
        let free = self.window.free();
        let live_after = self.window.live_cursor();
        let live_rows = self
            .store
            .read(move |c| outbox::pending_between(c, live_after, i64::MAX, free))
            .await
            .map_err(|e| self.lost(format!("cannot read the outbox: {e}")))?;
        let (live_n, backlog_n) = self.window.budget(live_rows.len());
        for row in live_rows.iter().take(live_n) {
            self.send(row, Lane::Live)?;
            self.window.live_read(row.seq);
        }
        if backlog_n > 0 && self.window.backlog_active() {
            let (after, up_to) = self.window.backlog_range();
            let rows = self
                .store
                .read(move |c| outbox::pending_between(c, after, up_to, backlog_n))
                .await
                .map_err(|e| self.lost(format!("cannot read the outbox: {e}")))?;
            for row in &rows {
                self.send(row, Lane::Backlog)?;
            }
            self.window
                .backlog_read(rows.last().map(|r| r.seq), rows.len() < backlog_n);
        }
        Ok(())
    }

    fn send(&mut self, row: &OutboxRow, lane: Lane) -> Result<(), SyncError> {
        let site = self.site.as_str();
        let event = EventRef {
            site,
            stream: &self.stream.id,
            seq: row.seq,
            id: &row.id,
            kind: &row.kind,
            created_at_ms: row.created_at,
            payload: &row.payload,
        };
        let limit = self.settings.max_message_bytes;
        let (payload, withheld) = match contract::encode_event(event, lane, limit) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::error!(seq = row.seq, error = %e, "unreadable outbox row");
                let w = Withheld {
                    reason: "unreadable".into(),
                    bytes: row.payload.len(),
                    limit,
                };
                (contract::encode_withheld(event, lane, w.clone()), Some(w))
            }
        };
        let tag = match withheld {
            None => Tag::Event { seq: row.seq, lane },
            Some(w) => Tag::Withheld {
                seq: row.seq,
                reason: format!("{} ({} bytes, limit {})", w.reason, w.bytes, w.limit),
            },
        };
        self.client
            .try_publish(
                contract::topic_for_event(site, &row.kind),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .map_err(|e| self.lost(format!("cannot queue event #{}: {e}", row.seq)))?;
        self.window.queued(tag);
        Ok(())
    }
}

/// Prunes delivered rows, whether or not the uplink is connected. Backlog alerts are raised
/// by `workflows::alerts` (one mechanism, in the open-alert book).
async fn maintenance(
    _site: SiteId,
    settings: UplinkSettings,
    store: Store,
    shutdown: CancellationToken,
) {
    let period = settings.heartbeat.min(Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    let mut last_prune: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::clock::now();
        if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
            last_prune = Some(Instant::now());
            let cutoff = Timestamp(now.millis() - settings.retention.as_millis() as i64);
            match store.write(move |c| outbox::prune(c, cutoff)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned delivered outbox rows"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
            }
        }
    }
}
