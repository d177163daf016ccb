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

use super::contract::{self, DownTopic, SyncControl};
use crate::commands;
use crate::config::Config;
use crate::store::{Store, StoreError, outbox};
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

/// Handles incoming messages until the sender side closes. `rewind` tells the uplink to
/// send rows again from a sequence number (central asked for a resend).
pub async fn run(
    site: SiteId,
    store: Store,
    stations: Option<Arc<Config>>,
    max_command_bytes: usize,
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    rewind: mpsc::UnboundedSender<i64>,
    replies_ready: Arc<Notify>,
) {
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
                    super::station::handle_in(
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
                    tracing::warn!(topic = %publish.topic, error = %e, "cannot store a station command; it will be redelivered");
                }
            }
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
                Ok(SyncControl::Cursor { contiguous_seq, .. }) => {
                    store
                        .write(move |c| outbox::confirm(c, contiguous_seq))
                        .await?;
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
