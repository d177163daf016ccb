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
//!
//! The downlink may ask for a new connection ([`Reconnect`]): when a command could not be
//! stored, so that the broker redelivers what was not acknowledged. The client reads packets up
//! to `max_command_bytes` (plus room for the topic). A bigger one breaks the connection, and on
//! a persistent session the broker sends it again on every connection; so the next connection
//! reads up to that size once, the downlink rejects the command as `oversized` and acknowledges
//! it, and the uplink reconnects with its normal limit. The same size failing again and again
//! is reported as needing a person.

use super::downlink::{self, Incoming, Reconnect};
use super::window::{Tag, Window};
use crate::config::{UplinkConfig, UplinkTuning};
use crate::status::{StatusBoard, Uplink, UplinkState};
use crate::store::outbox::{self, OutboxRow};
use crate::store::stream::{self as stream_store, StreamInfo};
use crate::store::{Store, StoreError};
use hub_contract::{self as contract, EventRef, Lane, Withheld};
use hub_core::Backoff;
use hub_core::{DomainEvent, SiteId, Timestamp};
use hub_mqtt::{Connection, MqttError, install_crypto_provider, mqtt_options, network_options};
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, Outgoing, Packet, QoS};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything the uplink needs besides the store.
#[derive(Debug, Clone)]
pub struct UplinkSettings {
    pub connection: Connection,
    pub tuning: UplinkTuning,
    /// The site, for station commands (`None`: they are answered `unavailable`).
    pub stations: Option<Arc<crate::workflows::Site>>,
    /// Where the uplink reports its state for the status page.
    pub board: Option<StatusBoard>,
}

impl UplinkSettings {
    /// A connection with the configuration's default tuning (what `[uplink]` gives when only
    /// the broker is set).
    pub fn from_defaults(connection: Connection) -> UplinkSettings {
        UplinkSettings {
            connection,
            tuning: UplinkTuning::default(),
            stations: None,
            board: None,
        }
    }

    /// The settings `[uplink]` gives.
    pub fn from_config(c: &UplinkConfig) -> UplinkSettings {
        UplinkSettings {
            connection: c.connection.clone(),
            tuning: c.tuning.clone(),
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
    settings.tuning.max_message_bytes + 1024
}

/// Room for an incoming PUBLISH's topic (at most 65,535 bytes), its length and packet id on
/// top of its payload.
const TOPIC_ROOM: usize = 65_535 + 4;

/// The largest packet the client reads on a normal connection: the largest command and a
/// topic. (A packet's size here is MQTT's "remaining length", what rumqttc compares.)
pub fn max_incoming_packet(settings: &UplinkSettings) -> usize {
    settings.tuning.max_command_bytes + TOPIC_ROOM
}

/// How many times the same oversized packet may break a connection before the uplink says a
/// person must act.
const OVERSIZED_REPEATS_BEFORE_ALARM: u32 = 3;

/// Oversized packets the broker sent: the size last seen and how often in a row.
#[derive(Debug, Default)]
struct Oversized {
    last: Option<(usize, u32)>,
}

impl Oversized {
    /// Notes a connection broken by a `bytes`-sized packet; returns how often in a row.
    fn seen(&mut self, bytes: usize) -> u32 {
        let repeats = match self.last {
            Some((b, n)) if b == bytes => n + 1,
            _ => 1,
        };
        self.last = Some((bytes, repeats));
        repeats
    }
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
    let replies_ready = Arc::new(Notify::new());
    let (reconnect_tx, mut reconnect_rx) = mpsc::unbounded_channel::<Reconnect>();
    tasks.spawn(downlink::run(
        site.clone(),
        store.clone(),
        settings.stations.clone(),
        settings.tuning.max_command_bytes,
        downlink::Channels {
            incoming: incoming_rx,
            rewind: rewind_tx,
            replies_ready: replies_ready.clone(),
            reconnect: reconnect_tx,
        },
    ));
    tasks.spawn(maintenance(
        site.clone(),
        settings.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    let mut backoff = Backoff::new(settings.tuning.reconnect_min, settings.tuning.reconnect_max);
    let mut epoch: u64 = 0;
    let normal_limit = max_incoming_packet(&settings);
    let mut read_limit = normal_limit;
    let mut oversized = Oversized::default();
    while !shutdown.is_cancelled() {
        epoch += 1;
        let started = Instant::now();
        report(
            &settings,
            UplinkState::Connecting,
            format!("connecting to {}", settings.connection.broker),
        );
        // Requests from the previous connection's messages are answered by this new one.
        while reconnect_rx.try_recv().is_ok() {}
        let limit = std::mem::replace(&mut read_limit, normal_limit);
        let outcome = connection(
            &site,
            &settings,
            &store,
            epoch,
            Channels {
                incoming_tx: &incoming_tx,
                rewind_rx: &mut rewind_rx,
                replies_ready: &replies_ready,
                reconnect_rx: &mut reconnect_rx,
            },
            limit,
            &shutdown,
        )
        .await;
        let held = match outcome {
            Ok(()) => break,
            Err((MqttError::TooLarge { broker, bytes }, _)) => {
                let repeats = oversized.seen(bytes);
                if repeats == 1
                    && let Some(board) = &settings.board
                {
                    board.count_oversized_message();
                }
                let detail = if repeats < OVERSIZED_REPEATS_BEFORE_ALARM {
                    tracing::warn!(
                        epoch,
                        %broker,
                        bytes,
                        limit = normal_limit,
                        "the broker sent a message larger than uplink.max_command_bytes allows; \
                         the next connection reads it once to reject it. Set message_size_limit \
                         on the broker (deploy/mosquitto/mosquitto.conf) so it refuses such messages"
                    );
                    read_limit = bytes.max(normal_limit);
                    format!(
                        "broker {broker} sent a {bytes}-byte message (limit {normal_limit}); reading it once to reject it"
                    )
                } else {
                    let advice = format!(
                        "broker {broker} sends the same {bytes}-byte message on every connection \
                         ({repeats} times) and the hub cannot get past it; events wait in the \
                         outbox. A person must act: set message_size_limit on the broker (see \
                         deploy/mosquitto/mosquitto.conf), then discard this hub's queued \
                         messages by connecting once with a clean session as client id '{}' \
                         (central must resend the commands it had queued)",
                        settings.connection.client_id
                    );
                    tracing::error!(epoch, %broker, bytes, repeats, "{advice}");
                    read_limit = bytes.max(normal_limit);
                    advice
                };
                report(&settings, UplinkState::Offline, detail);
                false
            }
            Err((e, connected)) => {
                report(
                    &settings,
                    UplinkState::Offline,
                    format!("{}; events wait in the outbox", e),
                );
                match &e {
                    MqttError::Tls { .. }
                    | MqttError::TlsSetup { .. }
                    | MqttError::Refused { .. }
                    | MqttError::ReadFile { .. }
                    | MqttError::BadPem { .. } => {
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
    /// Station replies published on this connection and not yet acknowledged.
    replies_in_flight: HashSet<i64>,
    /// Station replies acknowledged, to be marked delivered.
    reply_marks: Vec<i64>,
    writes: TaskTracker,
    /// This connection reads past the normal limit, to get an oversized message out of the way.
    raised_limit: bool,
}

/// Station replies older than this are not published any more: the tablet gave up on them.
const REPLY_MAX_AGE_MS: i64 = 10 * 60_000;
/// How long a station command id is remembered (a redelivery within it gets the stored reply).
const STATION_REQUEST_MEMORY_MS: i64 = 24 * 3_600_000;
/// Station replies in flight at once, at most.
const REPLIES_IN_FLIGHT: usize = 32;
/// How often the broker's acknowledgements are written to the outbox (and station replies
/// marked delivered): each write is a commit on the SD card, so they are gathered rather than
/// written every tick (also when 512 are waiting, and when the connection ends). A power cut
/// loses at most this much of them: those events are published again after the restart and
/// central drops them as duplicates by `(site, stream, seq)` (docs/mqtt.md); a reply goes
/// again and the tablet knows it by its command id.
pub const MARKS_EVERY: Duration = Duration::from_secs(5);

/// The channels between the connection task and the downlink task.
struct Channels<'a> {
    incoming_tx: &'a mpsc::UnboundedSender<Incoming>,
    rewind_rx: &'a mut mpsc::UnboundedReceiver<i64>,
    replies_ready: &'a Notify,
    reconnect_rx: &'a mut mpsc::UnboundedReceiver<Reconnect>,
}

type EpochResult = Result<(), (MqttError, bool)>;

#[allow(clippy::too_many_arguments)] // one connection's inputs, passed through once
async fn connection(
    site: &SiteId,
    settings: &UplinkSettings,
    store: &Store,
    epoch: u64,
    channels: Channels<'_>,
    read_limit: usize,
    shutdown: &CancellationToken,
) -> EpochResult {
    let lost = |detail: String| MqttError::Lost {
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
        read_limit,
        max_outgoing_packet(settings),
    )
    .map_err(|e| (e, false))?;
    options
        .set_inflight((settings.tuning.in_flight + 8).min(u16::MAX as usize) as u16)
        .set_last_will(LastWill::new(
            contract::status_topic(site.as_str()),
            status(site, &stream, "offline", &stats, crate::clock::now()),
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(options, settings.tuning.in_flight + 64);
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
                MqttError::from_connection(
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
                MqttError::Timeout {
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
            settings.tuning.in_flight,
            stats.first_undelivered_seq,
            stats.last_seq,
        ),
        marks: Vec::new(),
        replies_in_flight: HashSet::new(),
        reply_marks: Vec::new(),
        writes: TaskTracker::new(),
        raised_limit: read_limit > max_incoming_packet(settings),
    };
    let result = e.drive(&mut rx, channels, shutdown).await;
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
        channels: Channels<'_>,
        shutdown: &CancellationToken,
    ) -> Result<(), MqttError> {
        let Channels {
            incoming_tx,
            rewind_rx,
            replies_ready,
            reconnect_rx,
        } = channels;
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
        let mut heartbeat = tokio::time::interval(self.settings.tuning.heartbeat);
        let mut tick = tokio::time::interval(Duration::from_millis(25));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut marked_at = tokio::time::Instant::now();
        let mut fetch = true;
        // Replies stored while no connection was up (or not acknowledged on the last one).
        let mut replies = true;
        loop {
            if fetch && self.window.free() > 0 {
                self.fill().await?;
            }
            fetch = false;
            if replies {
                self.send_replies().await?;
            }
            replies = false;
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
                    fetch = self.window.free() * 4 >= self.settings.tuning.in_flight;
                }
                Some(from) = rewind_rx.recv() => {
                    tracing::info!(from_seq = from, "central asked for a resend");
                    self.window.rewind(from);
                    fetch = true;
                }
                _ = replies_ready.notified() => {
                    replies = true;
                }
                Some(request) = reconnect_rx.recv() => {
                    let reason = match request {
                        Reconnect::StoreFailed(error) => format!(
                            "reconnecting so that the broker delivers again a message that could not be stored ({error})"
                        ),
                        Reconnect::OversizedHandled if self.raised_limit => {
                            "reconnecting with the normal size limit after rejecting an oversized message".to_owned()
                        }
                        Reconnect::OversizedHandled => continue,
                    };
                    // A clean disconnect, after the acknowledgements already queued.
                    let _ = self.client.try_disconnect();
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(polled) = rx.recv().await {
                            if matches!(polled, Polled::Failed(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    return Err(self.lost(reason));
                }
                _ = heartbeat.tick() => {
                    let stats = self.stats().await?;
                    // For central's fleet view; a heartbeat goes out even if this read fails.
                    let open_alerts = self.store.read(crate::store::alert_book::open_alerts).await.ok();
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
                        red_alerts_open: open_alerts.as_ref().map(|a| {
                            a.iter().filter(|a| a.tier == hub_core::alerts::Tier::Red).count() as i64
                        }),
                        devices_offline: open_alerts.as_ref().map(|a| {
                            a.iter().filter(|a| a.kind == hub_core::alerts::AlertKind::DeviceOffline).count() as i64
                        }),
                        stream: stream_fields(&self.stream),
                    };
                    self.publish_control(contract::heartbeat_topic(site), QoS::AtMostOnce, false, contract::encode(&beat))?;
                }
                _ = tick.tick() => {
                    if marked_at.elapsed() >= MARKS_EVERY {
                        self.flush_marks();
                        marked_at = tokio::time::Instant::now();
                    }
                    fetch = true;
                    replies = self.replies_in_flight.is_empty();
                }
            }
        }
    }

    fn lost(&self, detail: String) -> MqttError {
        MqttError::Lost {
            broker: self.settings.connection.broker.to_string(),
            detail,
        }
    }

    async fn stats(&self) -> Result<outbox::OutboxStats, MqttError> {
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
    ) -> Result<(), MqttError> {
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
    ) -> Result<(), MqttError> {
        match polled {
            Polled::Sent(pkid) => self
                .window
                .sent(pkid)
                .map_err(|e| self.lost(e.to_string()))?,
            Polled::PubAck(pkid) => match self.window.acked(pkid) {
                Some(Tag::Event { seq, .. }) => self.marks.push(seq),
                Some(Tag::Withheld { seq, reason }) => self.record_withheld(seq, reason),
                Some(Tag::Reply { reply_id }) => {
                    self.replies_in_flight.remove(&reply_id);
                    self.reply_marks.push(reply_id);
                }
                Some(Tag::Control) | None => {}
            },
            Polled::Message(publish) => {
                let _ = incoming_tx.send(Incoming {
                    client: self.client.clone(),
                    publish,
                });
            }
            Polled::Failed(e) => {
                return Err(MqttError::from_connection(
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
        if !self.reply_marks.is_empty() {
            let ids = std::mem::take(&mut self.reply_marks);
            let store = self.store.clone();
            self.writes.spawn(async move {
                let result = store
                    .write(move |c| crate::store::station::mark_delivered(c, &ids))
                    .await;
                if let Err(e) = result {
                    // They stay pending and are published again: a tablet may see a reply twice
                    // (replies carry the command id), never miss one.
                    tracing::warn!(error = %e, "cannot mark station replies delivered; they will be sent again");
                }
            });
        }
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

    /// Publishes stored station replies that wait for the broker, a few at a time, on this
    /// connection (so the window knows every publish). A reply is marked delivered when the
    /// broker acknowledges it; on a new connection the unacknowledged ones go again.
    async fn send_replies(&mut self) -> Result<(), MqttError> {
        let room = REPLIES_IN_FLIGHT.saturating_sub(self.replies_in_flight.len());
        if room == 0 {
            return Ok(());
        }
        let not_before = Timestamp(crate::clock::now().millis() - REPLY_MAX_AGE_MS);
        let want = room + self.replies_in_flight.len();
        let pending = self
            .store
            .read(move |c| crate::store::station::pending(c, not_before, want))
            .await
            .map_err(|e| self.lost(format!("cannot read station replies: {e}")))?;
        let site = self.site.as_str();
        let fresh: Vec<_> = pending
            .into_iter()
            // Acknowledged ones wait in `reply_marks` to be marked: not again.
            .filter(|r| {
                !self.replies_in_flight.contains(&r.reply_id)
                    && !self.reply_marks.contains(&r.reply_id)
            })
            .take(room)
            .collect();
        for reply in fresh {
            match self.client.try_publish(
                contract::station_reply_topic(site, &reply.station),
                QoS::AtLeastOnce,
                false,
                reply.reply.into_bytes(),
            ) {
                Ok(()) => {
                    self.window.queued(Tag::Reply {
                        reply_id: reply.reply_id,
                    });
                    self.replies_in_flight.insert(reply.reply_id);
                }
                // A full request queue: the rest go on the next tick.
                Err(rumqttc::ClientError::TryRequest(_)) => break,
                Err(e) => return Err(self.lost(format!("cannot queue a station reply: {e}"))),
            }
        }
        Ok(())
    }

    /// Reads rows for both lanes and publishes them within the window.
    async fn fill(&mut self) -> Result<(), MqttError> {
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

    fn send(&mut self, row: &OutboxRow, lane: Lane) -> Result<(), MqttError> {
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
        let limit = self.settings.tuning.max_message_bytes;
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
    let period = settings.tuning.heartbeat.min(Duration::from_secs(60));
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
            let cutoff = Timestamp(now.millis() - settings.tuning.retention.as_millis() as i64);
            match store.write(move |c| outbox::prune(c, cutoff)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned delivered outbox rows"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
            }
            let forget = Timestamp(now.millis() - STATION_REQUEST_MEMORY_MS);
            if let Err(e) = store
                .write(move |c| crate::store::station::prune(c, forget))
                .await
            {
                tracing::warn!(error = %e, "cannot prune old station requests");
            }
        }
    }
}
