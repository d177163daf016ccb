//! Messages from central to this hub: commands and sync control.
//!
//! Messages are handled one at a time in arrival order. A command is decoded by the contract
//! and applied by [`crate::commands`] in one store transaction; only after that commit is the
//! message acknowledged to the broker (manual acknowledgements), so a crash in between makes
//! the broker deliver it again and the applied-commands table turns the repeat into a no-op.
//! Nothing here can stop the hub: every bad message becomes a rejection event. Station
//! commands (`down/station/{station}`) go to [`super::station`] and are answered on their reply
//! topic.

use super::contract::{self, DownTopic, SyncControl};
use crate::commands;
use crate::config::Config;
use crate::store::{Store, StoreError, outbox, stream};
use hub_core::SiteId;
use rumqttc::{AsyncClient, Publish};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A message received on one connection, with that connection's client for the ack.
#[derive(Debug)]
pub struct Incoming {
    pub client: AsyncClient,
    pub publish: Publish,
}

/// Handles incoming messages until the sender side closes. `rewind` tells the uplink to
/// send rows again from a sequence number (central asked for a resend).
pub async fn run(
    site: SiteId,
    store: Store,
    stations: Option<Arc<Config>>,
    max_command_bytes: usize,
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    rewind: mpsc::UnboundedSender<i64>,
) {
    while let Some(Incoming { client, publish }) = incoming.recv().await {
        if let Some((s, station)) = contract::parse_station_topic(&publish.topic)
            && s == site.as_str()
        {
            // Staff actions: answered on the reply topic, acknowledged whatever the answer (the
            // workflow's own writes are durable before the reply is built).
            let reply =
                super::station::handle(&store, stations.as_deref(), station, &publish.payload)
                    .await;
            let topic = contract::station_reply_topic(site.as_str(), station);
            if let Err(e) = client.try_publish(
                topic,
                rumqttc::QoS::AtLeastOnce,
                false,
                contract::encode(&reply),
            ) {
                tracing::warn!(station, error = %e, "cannot publish a station reply");
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), client.ack(&publish)).await;
            continue;
        }
        let handled = handle(&site, &store, max_command_bytes, &publish, &rewind).await;
        match handled {
            Ok(()) => {
                // Only now is it safe for the broker to forget the message.
                let _ = tokio::time::timeout(Duration::from_secs(1), client.ack(&publish)).await;
            }
            Err(e) => {
                // Not acknowledged: the broker delivers it again on the next connection.
                tracing::warn!(topic = %publish.topic, error = %e, "cannot store a downlink message; it will be redelivered");
            }
        }
    }
}

async fn handle(
    site: &SiteId,
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
            store
                .write(move |c| commands::apply(c, &site, decoded, crate::clock::now()))
                .await?;
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
