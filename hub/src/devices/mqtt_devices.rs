//! Networked scanners and scales on the site's local MQTT broker, read into the same
//! [`DeviceEvent`]s as serial devices.
//!
//! One task owns the rumqttc event loop and only polls it (publishing from the polling task
//! can deadlock rumqttc). Each configured device has one topic. A scanner publishes the raw
//! scan text (framing, prefix/suffix and AIM id handled as for serial scanners); a scale
//! publishes JSON (its shape is `hub_contract::devices`'s), either `{"grams": 1250, "stable": true}` or
//! `{"weight": "1.250", "unit": "kg", "stable": true}`, and goes through the same stability
//! check and placement tracker as a serial scale. Losing the broker reports every device on it
//! offline; reconnects back off with jitter. Payloads are parsed with the shim's decimal and
//! unit parsers; nothing here decides what an input means for stock.

use super::scale::{PlacementTracker, ScaleReading, StabilityGate, escape, weight_to_grams};
use super::{DeviceEvent, HealthBoard};
use crate::config::devices::{BrokerConfig, DeviceConfig, DeviceKind, DeviceTransport};
use firmware_shim::wire::{Unit, Weight};
use hub_contract::devices::ScaleWeight;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::time::Duration;
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
    let mut scales: HashMap<String, ScaleState> = devices
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
    let mut options = MqttOptions::new(broker.client_id.clone(), broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_PAYLOAD * 2, MAX_PAYLOAD * 2);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut backoff = super::reconnect_backoff(Duration::from_millis(500), Duration::from_secs(30));
    let mut online: Option<bool> = None;
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                // Clean session: subscriptions are renewed on every connection. try_subscribe
                // never waits, so the polling task cannot deadlock on its own queue.
                for topic in by_topic.keys() {
                    if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        tracing::warn!(%topic, error = %e, "cannot subscribe device topic");
                    }
                }
                if online != Some(true) {
                    online = Some(true);
                    for d in &devices {
                        set_state(&events, &board, d, true, "local broker connected").await;
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(device) = by_topic.get(p.topic.as_str()) else {
                    continue;
                };
                if p.payload.len() > MAX_PAYLOAD {
                    tracing::warn!(device = %device.name, bytes = p.payload.len(), "device payload too large; dropped");
                    board.update(&device.name, |h| h.overlong += 1);
                    continue;
                }
                let event = match device.kind {
                    DeviceKind::Scanner => {
                        match super::scanner::from_frame(
                            &device.framing.shim_config(),
                            &p.payload,
                            &device.site_patterns,
                        ) {
                            Some(scan) => {
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
                            None => None,
                        }
                    }
                    DeviceKind::Scale => match parse_weight_payload(&p.payload) {
                        Ok(reading) => {
                            let seen = crate::clock::now().millis();
                            board.update(&device.name, |h| {
                                h.frames += 1;
                                h.last_grams = reading.grams;
                                h.last_seen_ms = Some(seen);
                            });
                            let state = scales.get_mut(&device.name);
                            state
                                .and_then(|s| {
                                    s.gate.feed(&reading).and_then(|g| s.placement.feed(g))
                                })
                                .map(|grams| DeviceEvent::StableWeight {
                                    device: device.name.clone(),
                                    grams,
                                    raw: reading.raw.clone(),
                                })
                        }
                        Err(reason) => {
                            tracing::warn!(device = %device.name, %reason, "bad weight payload");
                            board.update(&device.name, |h| h.malformed += 1);
                            None
                        }
                    },
                };
                if let Some(event) = event {
                    board.update(&device.name, |h| h.events += 1);
                    if events.send(event).await.is_err() {
                        break;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let reason = format!(
                    "local broker {}:{} unreachable: {e}",
                    broker.host, broker.port
                );
                if online != Some(false) {
                    online = Some(false);
                    tracing::warn!(%reason, "networked devices offline");
                    for d in &devices {
                        set_state(&events, &board, d, false, &reason).await;
                    }
                }
                let delay = backoff.next_delay(rand::random());
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
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
