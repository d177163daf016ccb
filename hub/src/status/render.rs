//! Turns a [`StatusSnapshot`] into the HTML page, JSON and Prometheus text.
//!
//! Pure functions of the snapshot (and the refresh interval, language and time zone): no I/O, no
//! clock. The HTML comes from the `status.html` template, whose engine escapes every text that
//! came from outside (device readings, alert messages, names).

use super::{AlertTier, StatusSnapshot, UplinkState};
use crate::catalogue::{self, Lang};
use crate::station_app::templates;
use crate::storage::human_bytes;
use hub_core::Timestamp;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

/// `HH:MM:SS` in the site's time zone.
fn clock_time(at: Timestamp, zone: chrono_tz::Tz) -> String {
    catalogue::local_time(at, zone)
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago` (English; the page uses
/// [`catalogue::ago`] in its language).
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    catalogue::ago(then, now, Lang::En)
}

fn uplink_class(state: UplinkState) -> &'static str {
    match state {
        UplinkState::Online => "ok",
        UplinkState::Connecting => "warn",
        UplinkState::Offline => "bad",
        UplinkState::NotConfigured => "idle",
    }
}

/// What the template shows beside the snapshot itself: times in the site's zone and ages in
/// the page's language, worked out here so the template only places them.
#[derive(Serialize)]
struct View {
    /// The writer does not run with WAL + FULL (only a test build's switch can do that).
    store_not_durable: bool,
    updated: String,
    started: String,
    write_since: String,
    write_ago: String,
    uplink_class: &'static str,
    uplink_since: String,
    waiting: String,
    tiers: Vec<TierView>,
    alerts: Vec<AlertView>,
    disputes: Vec<DisputeView>,
    storage: Option<StorageView>,
    devices: Vec<DeviceView>,
}

#[derive(Serialize)]
struct TierView {
    name: &'static str,
    count: u64,
}

#[derive(Serialize)]
struct AlertView {
    tier: &'static str,
    subject: String,
    kind: String,
    message: String,
    ago: String,
}

#[derive(Serialize)]
struct DisputeView {
    delivery_id: String,
    note: String,
    ago: String,
}

#[derive(Serialize)]
struct StorageView {
    class: &'static str,
    free: String,
    total: String,
    percent: String,
}

#[derive(Serialize)]
struct DeviceView {
    name: String,
    kind: String,
    detail: Option<String>,
    online: bool,
    reading: String,
    seen: String,
}

/// The page for people: large type, colours for state, reloads itself every `refresh`; texts
/// in `lang`, times in the site's `zone`. Every outside text is escaped by the template engine.
pub fn html(s: &StatusSnapshot, refresh: Duration, lang: Lang, zone: chrono_tz::Tz) -> String {
    let now = s.generated_at;
    let ago = |t: Timestamp| catalogue::ago(t, now, lang);
    let since_word = match lang {
        Lang::ZhCn => "自",
        Lang::En => "since",
    };
    let view = View {
        store_not_durable: !s.store_durability.as_promised(),
        updated: clock_time(now, zone),
        started: clock_time(s.started_at, zone),
        write_since: s
            .store_write_error
            .as_ref()
            .map(|w| clock_time(w.since, zone))
            .unwrap_or_default(),
        write_ago: s
            .store_write_error
            .as_ref()
            .map(|w| ago(w.since))
            .unwrap_or_default(),
        uplink_class: uplink_class(s.uplink.state),
        uplink_since: s
            .uplink
            .since
            .map(|t| format!("{since_word} {}", ago(t)))
            .unwrap_or_default(),
        waiting: match s.outbox.oldest_undelivered_at {
            Some(t) if s.outbox.undelivered > 0 => format!(
                "{} {}",
                catalogue::text("status.oldest_waiting", lang),
                ago(Timestamp(t))
            ),
            _ => catalogue::text("status.all_delivered", lang).to_owned(),
        },
        tiers: AlertTier::URGENT_FIRST
            .iter()
            .map(|t| TierView {
                name: t.as_str(),
                count: s.alert_counts.get(*t),
            })
            .collect(),
        alerts: s
            .alerts
            .iter()
            .map(|a| AlertView {
                tier: a.tier.as_str(),
                subject: a.subject.clone(),
                kind: a.kind.replace('_', " "),
                message: a.message.clone(),
                ago: ago(a.since),
            })
            .collect(),
        disputes: s
            .receiving
            .disputes
            .iter()
            .map(|d| DisputeView {
                delivery_id: d.delivery_id.clone(),
                note: d.note.clone(),
                ago: ago(d.opened_at),
            })
            .collect(),
        storage: s.storage.as_ref().map(|space| StorageView {
            class: if space.is_low() { "bad" } else { "ok" },
            free: human_bytes(space.available_bytes),
            total: human_bytes(space.total_bytes),
            percent: format!("{:.0}", space.available_ratio() * 100.0),
        }),
        devices: s
            .devices
            .iter()
            .map(|d| DeviceView {
                name: d.name.clone(),
                kind: d.kind.clone(),
                detail: d.detail.clone(),
                online: d.online,
                reading: d.last_reading.clone().unwrap_or_else(|| "—".into()),
                seen: d
                    .last_seen
                    .map(ago)
                    .unwrap_or_else(|| catalogue::text("status.never", lang).to_owned()),
            })
            .collect(),
    };
    templates::render(
        "status.html",
        serde_json::json!({
            "lang": lang.tag(),
            "refresh_s": refresh.as_secs().max(1),
            "s": s,
            "v": view,
        }),
    )
}

/// The same snapshot as pretty JSON.
pub fn json(s: &StatusSnapshot) -> String {
    serde_json::to_string_pretty(s).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text exposition format (version 0.0.4).
pub fn metrics(s: &StatusSnapshot) -> String {
    let mut m = String::with_capacity(4 * 1024);
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(m, "# HELP {name} {help}");
        let _ = writeln!(m, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(m, "{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let (model, backend) = s
        .vision
        .as_ref()
        .map(|v| (v.model.as_str(), v.backend.as_str()))
        .unwrap_or(("", ""));
    gauge(
        "hub_info",
        "Constant 1, labelled with the hub's version, site, model and backend.",
        &[(
            format!(
                "{{version=\"{}\",site=\"{}\",model=\"{}\",backend=\"{}\"}}",
                label(&s.hub_version),
                label(&s.site_id),
                label(model),
                label(backend)
            ),
            1.0,
        )],
    );
    gauge(
        "hub_start_time_seconds",
        "When the hub started, seconds since the Unix epoch.",
        &one(s.started_at.millis() as f64 / 1000.0),
    );
    gauge(
        "hub_store_readable",
        "1 when the status page could read the database.",
        &one(if s.store_error.is_none() { 1.0 } else { 0.0 }),
    );
    gauge(
        "hub_store_durable",
        "1 when the database's writer runs with journal_mode=WAL and synchronous=FULL (or EXTRA).",
        &one(if s.store_durability.as_promised() {
            1.0
        } else {
            0.0
        }),
    );
    let write = s.store_write_error.as_ref();
    gauge(
        "hub_store_write_failing",
        "1 while the database's writes fail (damaged file, full disk, failing storage).",
        &one(if write.is_some() { 1.0 } else { 0.0 }),
    );
    gauge(
        "hub_store_write_failures",
        "Failed writes since the database's writes started failing (0 while they work).",
        &one(write.map_or(0.0, |w| w.failures as f64)),
    );
    if let Some(w) = write {
        gauge(
            "hub_store_write_failing_since_seconds",
            "When the database's writes started failing, seconds since the Unix epoch.",
            &one(w.since.millis() as f64 / 1000.0),
        );
    }
    gauge(
        "hub_uplink_up",
        "1 when connected to the central broker.",
        &one(if s.uplink.state == UplinkState::Online {
            1.0
        } else {
            0.0
        }),
    );
    gauge(
        "hub_uplink_oversized_messages",
        "Messages from the central broker over uplink.max_command_bytes since the hub started.",
        &one(s.oversized_messages as f64),
    );
    gauge(
        "hub_outbox_undelivered",
        "Events recorded but not yet acknowledged by the central broker.",
        &one(s.outbox.undelivered as f64),
    );
    gauge(
        "hub_outbox_last_seq",
        "Highest outbox sequence number assigned.",
        &one(s.outbox.last_seq as f64),
    );
    let oldest_age = match s.outbox.oldest_undelivered_at {
        Some(t) if s.outbox.undelivered > 0 => (s.generated_at.millis() - t).max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    gauge(
        "hub_outbox_oldest_undelivered_age_seconds",
        "Age of the oldest event still waiting to be sent (0 when none).",
        &one(oldest_age),
    );
    let devices: Vec<(String, f64)> = s
        .devices
        .iter()
        .map(|d| {
            (
                format!(
                    "{{device=\"{}\",kind=\"{}\"}}",
                    label(&d.name),
                    label(&d.kind)
                ),
                if d.online { 1.0 } else { 0.0 },
            )
        })
        .collect();
    gauge("hub_device_up", "1 when the device is online.", &devices);
    let last_seen: Vec<(String, f64)> = s
        .devices
        .iter()
        .filter_map(|d| {
            d.last_seen.map(|t| {
                (
                    format!("{{device=\"{}\"}}", label(&d.name)),
                    t.millis() as f64 / 1000.0,
                )
            })
        })
        .collect();
    gauge(
        "hub_device_last_seen_seconds",
        "When the device last said anything, seconds since the Unix epoch.",
        &last_seen,
    );
    let tiers: Vec<(String, f64)> = AlertTier::URGENT_FIRST
        .iter()
        .map(|t| {
            (
                format!("{{tier=\"{}\"}}", t.as_str()),
                s.alert_counts.get(*t) as f64,
            )
        })
        .collect();
    gauge("hub_alerts_open", "Open stock alerts by tier.", &tiers);
    gauge(
        "hub_receipts_today",
        "Deliveries received since local midnight.",
        &one(s.today.deliveries as f64),
    );
    gauge(
        "hub_receipt_lines_today",
        "Receipt movements since local midnight.",
        &one(s.today.receipt_lines as f64),
    );
    gauge(
        "hub_handovers_today",
        "Pickup orders handed over since local midnight.",
        &one(s.today.handovers as f64),
    );
    gauge(
        "hub_deliveries_open",
        "Deliveries neither closed nor cancelled.",
        &one(s.receiving.open_deliveries as f64),
    );
    gauge(
        "hub_quarantine_lines",
        "Receiving lines held in quarantine until someone releases or rejects them.",
        &one(s.receiving.held_lines as f64),
    );
    gauge(
        "hub_disputes_open",
        "Open disputes with suppliers.",
        &one(s.receiving.disputes.len() as f64),
    );
    if let Some(space) = &s.storage {
        gauge(
            "hub_data_dir_available_bytes",
            "Bytes still available on the filesystem holding the data directory.",
            &one(space.available_bytes as f64),
        );
        gauge(
            "hub_data_dir_size_bytes",
            "Size of the filesystem holding the data directory.",
            &one(space.total_bytes as f64),
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Alert, AlertCounts, Device, Today, Uplink, Vision};
    use crate::store::outbox::OutboxStats;

    fn snapshot() -> StatusSnapshot {
        let now = Timestamp(1_764_000_000_000);
        let devices = vec![
            Device::online("scale-1", "scale", "12.340 kg", now),
            Device::offline("scan<2>", "scanner", Timestamp(now.0 - 600_000)),
        ];
        let alerts = vec![Alert::new(AlertTier::Red, "MILK-1L", "out of stock", now)];
        StatusSnapshot {
            site_id: "s1".into(),
            site_name: "Site \"One\"".into(),
            hub_version: "0.1.0".into(),
            generated_at: now,
            started_at: now,
            uplink: Uplink::new(UplinkState::Offline, Timestamp(now.0 - 90_000)),
            oversized_messages: 0,
            outbox: OutboxStats {
                total: 10,
                undelivered: 7,
                oldest_undelivered_at: Some(now.0 - 30_000),
                last_seq: 10,
                first_undelivered_seq: Some(4),
            },
            devices_online: 1,
            devices,
            alert_counts: AlertCounts::of(&alerts),
            alerts,
            today: Today {
                since: now,
                receipt_lines: 3,
                deliveries: 1,
                handovers: 2,
                handover_lines: 4,
            },
            skus_in_stock: 3,
            receiving: super::super::Receiving {
                open_deliveries: 2,
                held_lines: 1,
                held_units: 30,
                disputes: vec![super::super::Dispute {
                    delivery_id: "D7".into(),
                    opened_at: Timestamp(now.0 - 3_600_000),
                    note: "crates <crushed>".into(),
                }],
            },
            vision: Some(Vision::new("efficientnet-lite0", "tract")),
            data_dir: "/var/lib/hub".into(),
            storage: None,
            store_error: None,
            store_write_error: None,
            store_durability: crate::store::Durability {
                journal_mode: "wal".into(),
                synchronous: "full".into(),
            },
        }
    }

    #[test]
    fn the_page_shows_the_figures_and_escapes_outside_text() {
        let page = html(
            &snapshot(),
            Duration::from_secs(10),
            Lang::En,
            chrono_tz::UTC,
        );
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(page.contains("id=\"outbox-depth\">7<"));
        assert!(page.contains("id=\"handovers-today\">2<"));
        assert!(page.contains("scan&lt;2&gt;"));
        assert!(!page.contains("scan<2>"));
        assert!(page.contains("Site &quot;One&quot;"));
        assert!(page.contains("id=\"alerts-red\"><span class=\"n\">1<"));
        assert!(page.contains("10 min ago"));
        assert!(page.contains("id=\"open-deliveries\">2<"));
        assert!(page.contains("id=\"held-lines\">1<"));
        assert!(page.contains("lines held (30 units)"));
        assert!(page.contains("dispute D7</td><td>crates &lt;crushed&gt;</td>"));
    }

    #[test]
    fn the_page_is_chinese_by_default_with_the_sites_local_times() {
        let s = snapshot();
        let page = html(
            &s,
            Duration::from_secs(10),
            Lang::default(),
            chrono_tz::Asia::Shanghai,
        );
        assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
        assert!(page.contains("未关闭预警"));
        assert!(page.contains("10 分钟前"));
        assert!(page.contains("crates &lt;crushed&gt;"));
        // 2025-11-24 16:00 UTC is midnight in Shanghai.
        assert!(page.contains("id=\"updated\">00:00:00<"), "{page}");
        let utc = html(&s, Duration::from_secs(10), Lang::En, chrono_tz::UTC);
        assert!(utc.contains("id=\"updated\">16:00:00<"));
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let text = metrics(&snapshot());
        assert!(text.contains("# TYPE hub_outbox_undelivered gauge\nhub_outbox_undelivered 7\n"));
        assert!(text.contains("hub_alerts_open{tier=\"red\"} 1\n"));
        assert!(text.contains("hub_device_up{device=\"scan<2>\",kind=\"scanner\"} 0\n"));
        assert!(text.contains("hub_outbox_oldest_undelivered_age_seconds 30\n"));
        assert!(text.contains("backend=\"tract\""));
        assert!(text.contains("hub_deliveries_open 2\n"));
        assert!(text.contains("hub_quarantine_lines 1\n"));
        assert!(text.contains("hub_disputes_open 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn a_failing_store_shows_in_the_page_the_json_and_the_metrics() {
        let mut s = snapshot();
        let text = metrics(&s);
        assert!(text.contains("hub_store_write_failing 0\n"), "{text}");
        assert!(!text.contains("hub_store_write_failing_since_seconds"));
        assert!(
            !html(&s, Duration::from_secs(10), Lang::En, chrono_tz::UTC)
                .contains("store-write-error")
        );
        s.store_write_error = Some(crate::status::StoreWriteError {
            kind: crate::store::WriteFaultKind::DiskFull,
            error: "database or disk is full".into(),
            since: Timestamp(s.generated_at.0 - 120_000),
            failures: 3,
            advice: "free space <now>".into(),
        });
        let page = html(&s, Duration::from_secs(10), Lang::En, chrono_tz::UTC);
        assert!(page.contains("id=\"store-write-error\""), "{page}");
        assert!(page.contains("database or disk is full"));
        assert!(page.contains("2 min ago, 3 failure(s)"));
        assert!(page.contains("free space &lt;now&gt;"));
        let text = metrics(&s);
        assert!(text.contains("hub_store_write_failing 1\n"), "{text}");
        assert!(text.contains("hub_store_write_failures 3\n"), "{text}");
        assert!(
            text.contains("hub_store_write_failing_since_seconds 1763999880\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(json["store_write_error"]["kind"], "disk_full");
        assert_eq!(json["store_write_error"]["failures"], 3);
        assert_eq!(json["store_write_error"]["since"], 1_763_999_880_000_i64);
    }

    #[test]
    fn ages_read_naturally() {
        let now = Timestamp(10_000_000);
        assert_eq!(ago(Timestamp(now.0 - 1_000), now), "just now");
        assert_eq!(ago(Timestamp(now.0 - 45_000), now), "45 s ago");
        assert_eq!(ago(Timestamp(now.0 - 600_000), now), "10 min ago");
        assert_eq!(ago(Timestamp(now.0 + 5_000), now), "just now");
    }
}
