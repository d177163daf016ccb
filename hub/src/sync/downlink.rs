//! Messages from central to this hub: commands and sync control.
//!
//! Messages are handled one at a time in arrival order. A command is decoded by the contract
//! and applied by [`crate::commands`] in one store transaction; only after that commit is the
//! message acknowledged to the broker (manual acknowledgements), so a crash in between makes
//! the broker deliver it again and the applied-commands table turns the repeat into a no-op.
//! Nothing here can stop the hub: every bad message becomes a rejection event. Station
//! commands (`down/station/{station}`) go to [`super::station`]: each is applied once, its
//! reply stored with its effects, and the uplink is woken to publish the reply (the uplink's
//! connection task is the only one that publishes, so its window sees every publish).
//!
//! A message that cannot be stored (full disk, failing storage) is left unacknowledged, and the
//! uplink is asked to reconnect ([`Reconnect::StoreFailed`]): the broker only redelivers
//! unacknowledged messages of a persistent session on a new connection, and stops sending new
//! ones once its in-flight window to this client is full. After an oversized command has been
//! read (the uplink raised its read limit for one connection to get past it), rejected and
//! acknowledged, the uplink is asked to reconnect too ([`Reconnect::OversizedHandled`]), back to
//! its normal limit.

use crate::commands;
use crate::store::{Store, StoreError, outbox, stream};
use hub_contract::{self as contract, DownTopic, SyncControl};
use hub_core::SiteId;
use rumqttc::{AsyncClient, Publish};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// A message received on one connection, with that connection's client for the ack.
#[derive(Debug)]
pub struct Incoming {
    pub client: AsyncClient,
    pub publish: Publish,
}

/// How the downlink and the uplink's connection task talk.
#[derive(Debug)]
pub struct Channels {
    /// Messages as they arrive, with the connection's client for the acknowledgement.
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    /// Central asked for a resend from this sequence number.
    pub rewind: mpsc::UnboundedSender<i64>,
    /// A station reply was stored and waits to be published.
    pub replies_ready: Arc<Notify>,
    /// The uplink should drop its connection and open a new one.
    pub reconnect: mpsc::UnboundedSender<Reconnect>,
}

/// Why the downlink asks the uplink to drop its connection and open a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconnect {
    /// A message could not be stored (the error's text); the broker redelivers it, and every
    /// other unacknowledged one, on the next connection.
    StoreFailed(String),
    /// An oversized command was rejected and acknowledged; the connection that read it may go.
    OversizedHandled,
}

/// Handles incoming messages until the sender side closes. `rewind` tells the uplink to
/// send rows again from a sequence number (central asked for a resend); `reconnect` asks it
/// for a new connection.
pub async fn run(
    site: SiteId,
    store: Store,
    stations: Option<Arc<crate::workflows::Site>>,
    max_command_bytes: usize,
    channels: Channels,
) {
    let Channels {
        mut incoming,
        rewind,
        replies_ready,
        reconnect,
    } = channels;
    while let Some(Incoming { client, publish }) = incoming.recv().await {
        if let Some((s, station)) = contract::parse_station_topic(&publish.topic)
            && s == site.as_str()
        {
            // Staff actions: applied once, the reply stored with the effects; acknowledged to
            // the broker only once both are durable, whatever the answer.
            let (config, station, payload) = (
                stations.clone(),
                station.to_owned(),
                publish.payload.clone(),
            );
            let handled = store
                .write(move |c| {
                    crate::workflows::station::handle_in(
                        c,
                        config.as_deref(),
                        &station,
                        &payload,
                        crate::clock::now(),
                    )
                })
                .await;
            match handled {
                Ok(_) => {
                    replies_ready.notify_one();
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), client.ack(&publish)).await;
                }
                Err(e) => {
                    // As for any message that could not be stored: a new connection gets it
                    // (and everything queued behind it) delivered again.
                    tracing::warn!(topic = %publish.topic, error = %e, "cannot store a station command; reconnecting so that the broker delivers it again");
                    let _ = reconnect.send(Reconnect::StoreFailed(e.to_string()));
                    while incoming.try_recv().is_ok() {}
                }
            }
            continue;
        }
        // Demand signals are dated on the site's calendar; without the site's description
        // (tests and tools that run the uplink alone) the configuration's default zone.
        let zone = stations
            .as_ref()
            .map_or(chrono_tz::Asia::Shanghai, |s| s.timezone);
        let handled = handle(&site, zone, &store, max_command_bytes, &publish, &rewind).await;
        match handled {
            Ok(()) => {
                // Only now is it safe for the broker to forget the message.
                let _ = tokio::time::timeout(Duration::from_secs(1), client.ack(&publish)).await;
                if publish.payload.len() > max_command_bytes {
                    let _ = reconnect.send(Reconnect::OversizedHandled);
                }
            }
            Err(e) => {
                // Not acknowledged: the broker delivers it again, but only on a new connection.
                tracing::warn!(topic = %publish.topic, error = %e, "cannot store a downlink message; reconnecting so that the broker delivers it again");
                let _ = reconnect.send(Reconnect::StoreFailed(e.to_string()));
                // What is already queued came on the same connection and is not acknowledged
                // either: the broker sends it again too.
                while incoming.try_recv().is_ok() {}
            }
        }
    }
}

async fn handle(
    site: &SiteId,
    zone: chrono_tz::Tz,
    store: &Store,
    max_command_bytes: usize,
    publish: &Publish,
    rewind: &mpsc::UnboundedSender<i64>,
) -> Result<(), StoreError> {
    let topic = contract::parse_down_topic(&publish.topic);
    match topic {
        Some((s, DownTopic::Commands)) if s == site.as_str() => {
            let decoded = contract::decode_command(&publish.payload, max_command_bytes);
            let site = site.clone();
            let applied = store
                .write(move |c| commands::apply(c, &site, zone, decoded, crate::clock::now()))
                .await?;
            // Logged once committed: a command is "applied" only when it is durable.
            applied.log();
            Ok(())
        }
        Some((s, DownTopic::Sync)) if s == site.as_str() => {
            match contract::decode_sync(&publish.payload) {
                Ok(SyncControl::Cursor {
                    contiguous_seq,
                    stream,
                    ..
                }) => {
                    // Only a cursor for this database's stream says what central holds of it.
                    let named = stream.clone();
                    let confirmed = store
                        .write(move |c| stream::confirm_cursor(c, named.as_deref(), contiguous_seq))
                        .await?;
                    if confirmed.is_none() {
                        tracing::info!(stream = ?stream, contiguous_seq, "ignoring central's cursor for another stream; nothing is pruned by it");
                    }
                }
                Ok(SyncControl::Resend {
                    stream: Some(s), ..
                }) if s != store.read(stream::current).await?.id => {
                    tracing::info!(stream = %s, "ignoring a resend request for another stream");
                }
                Ok(SyncControl::Resend {
                    from_seq, to_seq, ..
                }) if from_seq <= to_seq => {
                    let n = store
                        .write(move |c| outbox::mark_undelivered(c, from_seq, to_seq))
                        .await?;
                    tracing::info!(from_seq, to_seq, rows = n, "resend requested by central");
                    let _ = rewind.send(from_seq);
                }
                Ok(other) => tracing::warn!(?other, "ignoring an empty resend request"),
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable sync message"),
            }
            Ok(())
        }
        _ => {
            tracing::warn!(topic = %publish.topic, "ignoring a message on a topic this hub does not handle");
            Ok(())
        }
    }
}
