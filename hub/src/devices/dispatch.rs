//! The dispatcher: device events in, journal rows and workflow calls out — journal then act.
//!
//! Each scan or stable weight becomes one store write (a pickup code that checks out, or
//! anything else that changes nothing stored, rides on the next commit instead:
//! `workflows::devices::scanned_at_counter`): the raw input goes into `device_input`,
//! then the workflow for the device's role runs in a nested savepoint, then the outcome is
//! written on the journal row, all in one durable transaction. A workflow that refuses (no
//! line selected, unknown label) rolls back only its own effects: the input stays journaled
//! as `refused`, the refusal is logged with device and station and counted, and the task
//! goes on. A scan the workflow records on its line as flagged (malformed, unrecognised,
//! already bound, wrong lot…) is journaled as `flagged` with the flag's reason, never as
//! `applied`. Online/offline changes write their outbox event and raise or clear the alert.
//! The steps are `workflows::devices`; this task only routes events to them and counts.

use super::{DeviceEvent, HealthBoard};
use crate::config::devices::{DeviceConfig, DeviceRole};
use crate::store::Store;
use crate::store::device_input;
use crate::workflows::devices::{Journaled, Source};
use crate::workflows::{self, Site};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The site and its devices, as the dispatcher needs them.
#[derive(Debug, Clone)]
pub struct Devices {
    pub site: Site,
    pub configs: Vec<DeviceConfig>,
    /// The station screens' live feed: a checked code shows there.
    pub feed: crate::station_app::feed::StationFeed,
}

/// Runs until shutdown; events already queued at shutdown are still journaled.
pub async fn run(
    mut events: mpsc::Receiver<DeviceEvent>,
    store: Store,
    devices: Devices,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            _ = shutdown.cancelled() => {
                events.close();
                while let Ok(event) = events.try_recv() {
                    handle(&store, &devices, &board, event).await;
                }
                break;
            }
        };
        handle(&store, &devices, &board, event).await;
    }
    tracing::debug!("device dispatcher stopped");
}

async fn handle(store: &Store, devices: &Devices, board: &HealthBoard, event: DeviceEvent) {
    let Some(device) = devices
        .configs
        .iter()
        .find(|d| d.name == event.device())
        .cloned()
    else {
        tracing::error!(
            device = event.device(),
            "event from a device that is not configured"
        );
        return;
    };
    let now = crate::clock::now();
    if let DeviceEvent::LiveWeight { grams, .. } = event {
        // Shown on the station's screens (throttled there), never journaled or stored.
        devices.feed.show_live_weight(&device.station, grams, now);
        return;
    }
    let name = device.name.clone();
    let site = devices.site.clone();
    let result = match event {
        DeviceEvent::DeviceOnline { detail, .. } => {
            let d = name.clone();
            store
                .write(move |c| device_input::set_device_state(c, &d, true, &detail, now))
                .await
                .map(|()| None)
        }
        DeviceEvent::DeviceOffline { reason, .. } => {
            let d = name.clone();
            store
                .write(move |c| device_input::set_device_state(c, &d, false, &reason, now))
                .await
                .map(|()| None)
        }
        // A pickup counter's scale weighs for the order on screen, never a delivery line.
        DeviceEvent::StableWeight { grams, raw, .. } if device.role == DeviceRole::Pickup => {
            let order_id = devices
                .feed
                .current(&device.station)
                .and_then(|c| crate::station_app::feed::open_order(&c.shown).map(str::to_owned));
            store
                .write(move |c| {
                    workflows::devices::weighed_at_counter(
                        c,
                        source(&device),
                        grams,
                        &raw,
                        order_id.as_deref(),
                        now,
                    )
                })
                .await
                .map(Some)
        }
        DeviceEvent::LiveWeight { .. } => Ok(None),
        DeviceEvent::StableWeight { grams, raw, .. } => store
            .write(move |c| {
                workflows::devices::weighed(c, &site, source(&device), grams, &raw, now)
            })
            .await
            .map(Some),
        DeviceEvent::Scan { scan, .. } => {
            // At a pickup counter with an order on screen, a scan that is no pickup QR is an
            // item of that order (the same rule as for a keyboard-wedge scan on the tablet).
            let item_order = (device.role == DeviceRole::Pickup)
                .then(|| {
                    crate::station_app::items::item_order(
                        &devices.feed,
                        &device.station,
                        crate::codes::without_aim(&scan.text),
                    )
                })
                .flatten();
            if device.role == DeviceRole::Pickup && item_order.is_none() {
                // A pickup code: a successful check rides on the next commit.
                let at = (device.name.as_str(), device.station.as_str());
                workflows::devices::scanned_at_counter(store, &site, at, *scan, now)
                    .await
                    .map(Some)
            } else {
                store
                    .write(move |c| match item_order {
                        Some(order_id) => workflows::devices::scanned_item(
                            c,
                            &site,
                            source(&device),
                            &scan,
                            &order_id,
                            now,
                        ),
                        None => workflows::devices::scanned(c, &site, source(&device), &scan, now),
                    })
                    .await
                    .map(Some)
            }
        }
    };
    match result {
        Ok(None) => {}
        Ok(Some(outcome)) => {
            let station = devices
                .configs
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.station.as_str())
                .unwrap_or_default();
            if let workflows::devices::InputOutcome::Code(check) = &outcome {
                crate::station_app::show_device_check(&devices.feed, station, check.clone(), now);
            }
            if let workflows::devices::InputOutcome::Item {
                order_id,
                checked: Some(checked),
                quantities,
            } = &outcome
            {
                crate::station_app::items::show_item(
                    &devices.feed,
                    station,
                    order_id,
                    checked.clone(),
                    quantities,
                    now,
                )
                .await;
            }
            if let workflows::devices::InputOutcome::CounterWeight {
                order_id: Some(order_id),
                grams,
                by_weight,
                bag,
            } = &outcome
            {
                crate::station_app::items::show_weight(
                    &devices.feed,
                    station,
                    order_id,
                    *grams,
                    by_weight,
                    bag,
                    devices.site.pickup.bag_tolerance_g,
                    now,
                )
                .await;
            }
            crate::station_app::receiving::show_device_input(&devices.feed, station, &outcome, now);
            match outcome.journaled() {
                Journaled::Applied => {
                    tracing::info!(device = %name, station, detail = %outcome, "device input applied");
                    board.update(&name, |h| h.applied += 1);
                }
                Journaled::Flagged => {
                    tracing::warn!(device = %name, station, detail = %outcome, "device input flagged on its line (journaled)");
                    board.update(&name, |h| h.flagged += 1);
                }
                Journaled::Refused => {
                    tracing::warn!(device = %name, station, detail = %outcome, "device input refused (journaled)");
                    board.update(&name, |h| h.refused += 1);
                }
            }
        }
        Err(e) => {
            // The input may be lost: the store could not make it durable.
            tracing::error!(device = %name, error = %e, "cannot journal device input");
        }
    }
}

fn source(device: &DeviceConfig) -> Source<'_> {
    Source {
        device: &device.name,
        station: &device.station,
        pickup: device.role == DeviceRole::Pickup,
    }
}
