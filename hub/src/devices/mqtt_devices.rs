//! Networked scanners and scales on the site's local MQTT broker, read into the same
//! [`DeviceEvent`]s as serial devices.
//!
//! One subscriber on the local broker (`local_broker`, shared with the camera's photo topics).
//! Each configured device has one topic. A scanner publishes the raw
//! scan text (framing, prefix/suffix and AIM id handled as for serial scanners); a scale
//! publishes JSON (its shape is `hub_contract::devices`'s), either `{"grams": 1250, "stable": true}` or
//! `{"weight": "1.250", "unit": "kg", "stable": true}`, and goes through the same stability
//! check and placement tracker as a serial scale. Losing the broker reports every device on it
//! offline; reconnects back off with jitter. Payloads are parsed with the shim's decimal and
//! unit parsers; nothing here decides what an input means for stock.

use super::local_broker::{self, LocalHandler};
use super::scale::{PlacementTracker, ScaleReading, StabilityGate, escape, weight_to_grams};
use super::{DeviceEvent, HealthBoard};
use crate::config::devices::{BrokerConfig, DeviceConfig, DeviceKind, DeviceTransport};
use firmware_shim::wire::{Unit, Weight};
use hub_contract::devices::ScaleWeight;
use std::collections::HashMap;
use std::ops::ControlFlow;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Largest payload accepted from a device.
pub const MAX_PAYLOAD: usize = hub_contract::devices::MAX_DEVICE_PAYLOAD;

struct ScaleState {
    gate: StabilityGate,
    placement: PlacementTracker,
}

/// What is wrong with a networked scale's payload (counted as malformed, shown on the status
/// page).
#[derive(Debug, thiserror::Error)]
pub enum WeightPayloadError {
    #[error(transparent)]
    Shape(#[from] hub_contract::devices::ScalePayloadError),
    #[error("\"weight\" {text}: {reason}")]
    BadDecimal { text: String, reason: String },
    #[error("\"unit\" {0} is not a unit")]
    UnknownUnit(String),
    #[error("unit {0} cannot be converted to grams")]
    NotConvertible(String),
}

/// Reads a scale payload (its JSON shape is `hub_contract::devices`'s) into a reading; the
/// error says what is wrong with it.
pub fn parse_weight_payload(payload: &[u8]) -> Result<ScaleReading, WeightPayloadError> {
    let p = hub_contract::devices::decode_scale_payload(payload)?;
    let grams = match p.weight {
        ScaleWeight::Grams(g) => g,
        ScaleWeight::Decimal { text, unit } => {
            let (value, decimals) = Weight::parse_decimal(text.trim().as_bytes()).map_err(|e| {
                WeightPayloadError::BadDecimal {
                    text: text.clone(),
                    reason: e.to_string(),
                }
            })?;
            let unit_text = unit.as_deref().unwrap_or("kg");
            let unit = Unit::parse(unit_text.as_bytes())
                .ok_or_else(|| WeightPayloadError::UnknownUnit(unit_text.to_owned()))?;
            weight_to_grams(&Weight::new(value, decimals, unit))
                .ok_or_else(|| WeightPayloadError::NotConvertible(unit_text.to_owned()))?
        }
    };
    Ok(ScaleReading {
        grams: Some(grams),
        device_stable: p.stable,
        raw: escape(payload),
    })
}

/// Runs the broker connection for `devices` until shutdown.
pub async fn run(
    broker: BrokerConfig,
    devices: Vec<DeviceConfig>,
    events: mpsc::Sender<DeviceEvent>,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("device_broker", host = %broker.host, port = broker.port);
    run_inner(broker, devices, events, board, shutdown)
        .instrument(span)
        .await
}

async fn run_inner(
    broker: BrokerConfig,
    devices: Vec<DeviceConfig>,
    events: mpsc::Sender<DeviceEvent>,
    board: HealthBoard,
    shutdown: CancellationToken,
) {
    let by_topic: HashMap<String, DeviceConfig> = devices
        .iter()
        .filter_map(|d| match &d.transport {
            DeviceTransport::Mqtt { topic } => Some((topic.clone(), d.clone())),
            DeviceTransport::Serial { .. } => None,
        })
        .collect();
    let scales: HashMap<String, ScaleState> = devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Scale)
        .map(|d| {
            (
                d.name.clone(),
                ScaleState {
                    gate: StabilityGate::new(d.stable_readings),
                    placement: PlacementTracker::new(d.zero_band_g, d.placement_change_g),
                },
            )
        })
        .collect();
    let subscription = local_broker::Subscription {
        client_id: broker.client_id.clone(),
        topics: by_topic.keys().cloned().collect(),
        max_incoming_bytes: MAX_PAYLOAD * 2,
        queue: 64,
    };
    let mut traffic = DeviceTraffic {
        devices,
        by_topic,
        scales,
        events,
        board,
        online: None,
    };
    local_broker::run(&broker, subscription, &mut traffic, &shutdown).await;
}

/// The networked devices' side of the local broker: payloads in, device events out.
struct DeviceTraffic {
    devices: Vec<DeviceConfig>,
    by_topic: HashMap<String, DeviceConfig>,
    scales: HashMap<String, ScaleState>,
    events: mpsc::Sender<DeviceEvent>,
    board: HealthBoard,
    /// Whether the devices were last reported online (`None`: not reported yet).
    online: Option<bool>,
}

impl DeviceTraffic {
    /// Every networked device goes online or offline with the broker.
    async fn report_all(&mut self, online: bool, detail: &str) -> ControlFlow<()> {
        if self.online != Some(online) {
            self.online = Some(online);
            if !online {
                tracing::warn!(reason = %detail, "networked devices offline");
            }
            for d in &self.devices {
                set_state(&self.events, &self.board, d, online, detail).await;
            }
        }
        ControlFlow::Continue(())
    }

    /// What one payload on a device's topic is: a scan, a stable weight, or nothing yet.
    fn read(&mut self, device: &DeviceConfig, payload: &[u8]) -> Option<DeviceEvent> {
        let board = &self.board;
        match device.kind {
            DeviceKind::Scanner => {
                let scan = super::scanner::from_frame(
                    &device.framing.shim_config(),
                    payload,
                    &device.site_patterns,
                )?;
                let seen = crate::clock::now().millis();
                let malformed = scan.code.is_malformed();
                board.update(&device.name, |h| {
                    h.frames += 1;
                    h.malformed += u64::from(malformed);
                    h.last_code = Some(scan.text.clone());
                    h.last_seen_ms = Some(seen);
                });
                Some(DeviceEvent::Scan {
                    device: device.name.clone(),
                    scan: Box::new(scan),
                })
            }
            DeviceKind::Scale => {
                match parse_weight_payload(payload) {
                    Ok(reading) => {
                        let seen = crate::clock::now().millis();
                        board.update(&device.name, |h| {
                            h.frames += 1;
                            h.last_grams = reading.grams;
                            h.last_seen_ms = Some(seen);
                        });
                        let state = self.scales.get_mut(&device.name)?;
                        match state.gate.feed(&reading) {
                            Some(stable) => state.placement.feed(stable).map(|grams| {
                                DeviceEvent::StableWeight {
                                    device: device.name.clone(),
                                    grams,
                                    raw: reading.raw.clone(),
                                }
                            }),
                            None => reading.grams.map(|grams| DeviceEvent::LiveWeight {
                                device: device.name.clone(),
                                grams,
                            }),
                        }
                    }
                    Err(reason) => {
                        tracing::warn!(device = %device.name, %reason, "bad weight payload");
                        board.update(&device.name, |h| h.malformed += 1);
                        None
                    }
                }
            }
        }
    }
}

impl LocalHandler for DeviceTraffic {
    async fn connected(&mut self) -> ControlFlow<()> {
        self.report_all(true, "local broker connected").await
    }

    async fn message(&mut self, topic: &str, payload: &[u8]) -> ControlFlow<()> {
        let Some(device) = self.by_topic.get(topic).cloned() else {
            return ControlFlow::Continue(());
        };
        if payload.len() > MAX_PAYLOAD {
            tracing::warn!(device = %device.name, bytes = payload.len(), "device payload too large; dropped");
            self.board.update(&device.name, |h| h.overlong += 1);
            return ControlFlow::Continue(());
        }
        let Some(event) = self.read(&device, payload) else {
            return ControlFlow::Continue(());
        };
        if let DeviceEvent::LiveWeight { .. } = event {
            // Only for the screen: when the dispatcher is busy it is dropped, never waited for.
            let _ = self.events.try_send(event);
            return ControlFlow::Continue(());
        }
        self.board.update(&device.name, |h| h.events += 1);
        if self.events.send(event).await.is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    async fn lost(&mut self, reason: &str) -> ControlFlow<()> {
        self.report_all(false, reason).await
    }
}

async fn set_state(
    events: &mpsc::Sender<DeviceEvent>,
    board: &HealthBoard,
    device: &DeviceConfig,
    online: bool,
    detail: &str,
) {
    let now = crate::clock::now().millis();
    board.update(&device.name, |h| {
        h.online = online;
        h.detail = detail.to_owned();
        h.since_ms = now;
    });
    let event = if online {
        DeviceEvent::DeviceOnline {
            device: device.name.clone(),
            detail: detail.to_owned(),
        }
    } else {
        DeviceEvent::DeviceOffline {
            device: device.name.clone(),
            reason: detail.to_owned(),
        }
    };
    let _ = events.send(event).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_payloads_in_both_shapes() {
        let a = parse_weight_payload(br#"{"grams": 1250, "stable": true}"#).unwrap();
        assert_eq!(a.grams, Some(1250));
        assert!(a.device_stable);
        let b = parse_weight_payload(br#"{"weight": "1.250", "unit": "kg"}"#).unwrap();
        assert_eq!(b.grams, Some(1250));
        assert!(!b.device_stable);
        assert!(parse_weight_payload(b"1.250 kg").is_err());
        assert!(parse_weight_payload(br#"{"grams": 1, "weight": "1"}"#).is_err());
    }
}
