//! Turns a [`StatusSnapshot`] into the HTML page, JSON and Prometheus text.
//!
//! Pure functions of the snapshot (and the refresh interval): no I/O, no clock. Every text that
//! came from outside (device readings, alert messages, names) is escaped here.

use super::{AlertTier, StatusSnapshot, UplinkState};
use crate::storage::human_bytes;
use hub_core::Timestamp;
use std::fmt::Write;
use std::time::Duration;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS` in the box's local time.
fn clock_time(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.millis())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "?".into())
}

/// `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(then: Timestamp, now: Timestamp) -> String {
    let seconds = (now.millis() - then.millis()).max(0) / 1000;
    match seconds {
        0..=4 => "just now".into(),
        5..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        7200..=172_799 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

fn uplink_class(state: UplinkState) -> &'static str {
    match state {
        UplinkState::Online => "ok",
        UplinkState::Connecting => "warn",
        UplinkState::Offline => "bad",
        UplinkState::NotConfigured => "idle",
    }
}

const STYLE: &str = r#"
:root { --ok:#1b873f; --bad:#c62828; --warn:#e07b00; --idle:#6b7280; --yellow:#f2c200;
        --orange:#f07c00; --red:#d32f2f; --ink:#1f2328; --muted:#57606a; --card:#ffffff;
        --bg:#eef1f4; }
* { box-sizing: border-box; }
body { margin:0; font-family: "Noto Sans", "Noto Sans CJK SC", "DejaVu Sans", sans-serif;
       font-size: 20px; color: var(--ink); background: var(--bg); }
header { display:flex; justify-content:space-between; align-items:baseline; flex-wrap:wrap;
         gap: 4px 16px; padding: 14px 20px; background:#24292f; color:#fff; }
header h1 { margin:0; font-size: 28px; font-weight: 700; }
header .meta { font-size: 16px; color:#d0d7de; }
main { display:grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px;
       padding: 14px 20px 20px; }
section { background: var(--card); border-radius: 10px; padding: 14px 16px;
          box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section.wide { grid-column: 1 / -1; }
section.tall { grid-row: span 2; }
h2 { margin: 0 0 10px; font-size: 16px; letter-spacing: .06em; text-transform: uppercase;
     color: var(--muted); }
.big { font-size: 40px; font-weight: 700; line-height: 1.1; }
.sub { color: var(--muted); font-size: 17px; margin-top: 4px; overflow-wrap: anywhere; }
.pill { display:inline-block; padding: 4px 14px; border-radius: 999px; color:#fff;
        font-weight:700; font-size: 24px; }
.pill.ok { background: var(--ok); } .pill.bad { background: var(--bad); }
.pill.warn { background: var(--warn); } .pill.idle { background: var(--idle); }
.figures { display:flex; gap: 28px; flex-wrap: wrap; }
.figures div { min-width: 120px; }
.tiers { display:flex; gap: 10px; }
.tier { flex:1; border-radius: 8px; padding: 8px 10px; text-align:center; color:#1f2328; }
.tier .n { font-size: 40px; font-weight: 800; display:block; }
.tier.yellow { background: var(--yellow); } .tier.orange { background: var(--orange); color:#fff; }
.tier.red { background: var(--red); color:#fff; } .tier.zero { opacity: .35; }
table { width:100%; border-collapse: collapse; }
td, th { text-align:left; padding: 6px 6px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { font-size: 15px; color: var(--muted); font-weight: 600; }
td.state { white-space: nowrap; font-weight: 700; }
td.when { white-space: nowrap; }
.dot { display:inline-block; width: 14px; height: 14px; border-radius: 50%; margin-right: 8px; }
.dot.ok { background: var(--ok); } .dot.bad { background: var(--bad); }
.alert-tier { display:inline-block; width: 76px; text-align:center; border-radius: 6px;
              padding: 2px 0; font-weight: 700; font-size: 16px; }
.alert-tier.yellow { background: var(--yellow); } .alert-tier.orange { background: var(--orange); color:#fff; }
.alert-tier.red { background: var(--red); color:#fff; }
.empty { color: var(--muted); }
.error { background:#fdecea; color: var(--bad); padding: 10px 20px; font-weight: 700; }
footer { padding: 0 20px 16px; color: var(--muted); font-size: 15px; }
"#;

/// The page for people: large type, colours for state, reloads itself every `refresh`.
pub fn html(s: &StatusSnapshot, refresh: Duration) -> String {
    let now = s.generated_at;
    let mut p = String::with_capacity(8 * 1024);
    let _ = write!(
        p,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{}\">\
         <title>{} · hub status</title><style>{STYLE}</style></head><body>",
        refresh.as_secs().max(1),
        escape_html(&s.site_name)
    );
    let _ = write!(
        p,
        "<header><h1 id=\"site-name\">{}</h1><div class=\"meta\">site {} · updated <span id=\"updated\">{}</span> · up since {}</div></header>",
        escape_html(&s.site_name),
        escape_html(&s.site_id),
        clock_time(now),
        clock_time(s.started_at),
    );
    if let Some(error) = &s.store_error {
        let _ = write!(
            p,
            "<div class=\"error\">Database cannot be read: {}</div>",
            escape_html(error)
        );
    }
    if !s.store_durability.as_promised() {
        let _ = write!(
            p,
            "<div class=\"error\" id=\"store-not-durable\">Database commits are not durable: journal_mode={}, synchronous={} (a test build's switch).</div>",
            escape_html(&s.store_durability.journal_mode),
            escape_html(&s.store_durability.synchronous)
        );
    }
    if let Some(w) = &s.store_write_error {
        let _ = write!(
            p,
            "<div class=\"error\" id=\"store-write-error\">Database writes are failing since {} ({}, {} failure(s)): {}. What to do: {}.</div>",
            clock_time(w.since),
            ago(w.since, now),
            w.failures,
            escape_html(&w.error),
            escape_html(&w.advice)
        );
    }
    p.push_str("<main>");

    // Uplink and outbox.
    let since = s
        .uplink
        .since
        .map(|t| format!("since {}", ago(t, now)))
        .unwrap_or_default();
    let _ = write!(
        p,
        "<section id=\"uplink\"><h2>Uplink</h2><span class=\"pill {}\" id=\"uplink-state\">{}</span><div class=\"sub\">{}</div>",
        uplink_class(s.uplink.state),
        s.uplink.state.label(),
        escape_html(&since)
    );
    if let Some(detail) = &s.uplink.detail {
        let _ = write!(p, "<div class=\"sub\">{}</div>", escape_html(detail));
    }
    if s.oversized_messages > 0 {
        let _ = write!(
            p,
            "<div class=\"sub\" id=\"oversized\">{} oversized message(s) from central rejected</div>",
            s.oversized_messages
        );
    }
    let waiting = match s.outbox.oldest_undelivered_at {
        Some(t) if s.outbox.undelivered > 0 => format!("oldest waiting {}", ago(Timestamp(t), now)),
        _ => "all delivered".into(),
    };
    let _ = write!(
        p,
        "<div class=\"figures\" style=\"margin-top:12px\"><div><div class=\"big\" id=\"outbox-depth\">{}</div><div class=\"sub\">events waiting to send · {}</div></div></div></section>",
        s.outbox.undelivered,
        escape_html(&waiting)
    );

    // Today.
    let _ = write!(
        p,
        "<section id=\"today\"><h2>Today</h2><div class=\"figures\">\
         <div><div class=\"big\" id=\"receipts-today\">{}</div><div class=\"sub\">receipts ({} lines)</div></div>\
         <div><div class=\"big\" id=\"handovers-today\">{}</div><div class=\"sub\">handovers ({} lines)</div></div>\
         </div><div class=\"sub\">{} SKUs in stock</div></section>",
        s.today.deliveries,
        s.today.receipt_lines,
        s.today.handovers,
        s.today.handover_lines,
        s.skus_in_stock
    );

    // Alerts by tier.
    p.push_str("<section id=\"alerts\" class=\"tall\"><h2>Open alerts</h2><div class=\"tiers\">");
    for tier in AlertTier::URGENT_FIRST {
        let n = s.alert_counts.get(tier);
        let _ = write!(
            p,
            "<div class=\"tier {}{}\" id=\"alerts-{}\"><span class=\"n\">{n}</span>{}</div>",
            tier.as_str(),
            if n == 0 { " zero" } else { "" },
            tier.as_str(),
            tier.as_str()
        );
    }
    p.push_str("</div>");
    if s.alerts.is_empty() {
        p.push_str("<div class=\"sub\" style=\"margin-top:10px\">no open alerts</div>");
    } else {
        p.push_str("<table id=\"alert-list\" style=\"margin-top:8px\">");
        for a in &s.alerts {
            let _ = write!(
                p,
                "<tr><td><span class=\"alert-tier {t}\">{t}</span></td><td><b>{}</b> <span class=\"sub\">{}</span><div class=\"sub\">{} · {}</div></td></tr>",
                escape_html(&a.subject),
                escape_html(&a.kind.replace('_', " ")),
                escape_html(&a.message),
                ago(a.since, now),
                t = a.tier.as_str()
            );
        }
        p.push_str("</table>");
    }
    p.push_str("</section>");

    // Receiving work waiting for a person.
    let r = &s.receiving;
    let _ = write!(
        p,
        "<section id=\"receiving\"><h2>Receiving</h2><div class=\"figures\">\
         <div><div class=\"big\" id=\"open-deliveries\">{}</div><div class=\"sub\">deliveries open</div></div>\
         <div><div class=\"big\" id=\"held-lines\">{}</div><div class=\"sub\">{} held ({} {})</div></div>\
         </div>",
        r.open_deliveries,
        r.held_lines,
        if r.held_lines == 1 { "line" } else { "lines" },
        r.held_units,
        if r.held_units == 1 { "unit" } else { "units" }
    );
    if r.disputes.is_empty() {
        p.push_str("<div class=\"sub\" id=\"disputes\">no open disputes</div>");
    } else {
        p.push_str("<table id=\"disputes\">");
        for d in &r.disputes {
            let _ = write!(
                p,
                "<tr><td>dispute {}</td><td>{}</td><td class=\"sub\">opened {}</td></tr>",
                escape_html(&d.delivery_id),
                escape_html(&d.note),
                ago(d.opened_at, s.generated_at)
            );
        }
        p.push_str("</table>");
    }
    p.push_str("</section>");

    // Model.
    p.push_str("<section id=\"vision\"><h2>Acceptance model</h2>");
    match &s.vision {
        Some(v) => {
            let _ = write!(
                p,
                "<div class=\"big\" style=\"font-size:28px\" id=\"model\">{}</div><div class=\"sub\" id=\"backend\">backend: {}</div>",
                escape_html(&v.model),
                escape_html(&v.backend)
            );
            if let Some(detail) = &v.detail {
                let _ = write!(p, "<div class=\"sub\">{}</div>", escape_html(detail));
            }
        }
        None => p.push_str("<div class=\"empty\" id=\"model\">no model loaded</div>"),
    }
    p.push_str("</section>");

    // Storage.
    p.push_str("<section id=\"storage\"><h2>Storage</h2>");
    match &s.storage {
        Some(space) => {
            let percent = space.available_ratio() * 100.0;
            let class = if space.is_low() { "bad" } else { "ok" };
            let _ = write!(
                p,
                "<span class=\"pill {class}\" id=\"storage-free\">{} free</span><div class=\"sub\">{percent:.0}% of {} · {}</div>",
                human_bytes(space.available_bytes),
                human_bytes(space.total_bytes),
                escape_html(&s.data_dir)
            );
        }
        None => {
            let _ = write!(
                p,
                "<div class=\"empty\">free space unknown</div><div class=\"sub\">{}</div>",
                escape_html(&s.data_dir)
            );
        }
    }
    p.push_str("</section>");

    // Devices.
    let _ = write!(
        p,
        "<section class=\"wide\" id=\"devices\"><h2>Devices · {} of {} online</h2>",
        s.devices_online,
        s.devices.len()
    );
    if s.devices.is_empty() {
        p.push_str("<div class=\"empty\">no devices reported</div>");
    } else {
        p.push_str(
            "<table><tr><th>device</th><th>state</th><th>last reading</th><th>last seen</th></tr>",
        );
        for d in &s.devices {
            let (class, word) = if d.online {
                ("ok", "online")
            } else {
                ("bad", "offline")
            };
            let detail = d
                .detail
                .as_deref()
                .map(|x| format!("<div class=\"sub\">{}</div>", escape_html(x)))
                .unwrap_or_default();
            let _ = write!(
                p,
                "<tr><td>{} <span class=\"sub\">{}</span>{detail}</td><td class=\"state\"><span class=\"dot {class}\"></span>{word}</td><td>{}</td><td class=\"when\">{}</td></tr>",
                escape_html(&d.name),
                escape_html(&d.kind),
                escape_html(d.last_reading.as_deref().unwrap_or("—")),
                d.last_seen
                    .map(|t| ago(t, now))
                    .unwrap_or_else(|| "never".into()),
            );
        }
        p.push_str("</table>");
    }
    p.push_str("</section>");

    p.push_str("</main>");

    let _ = writeln!(
        p,
        "<footer>hub {} · outbox seq {} · this page reloads every {} s</footer></body></html>",
        escape_html(&s.hub_version),
        s.outbox.last_seq,
        refresh.as_secs()
    );
    p
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
        let page = html(&snapshot(), Duration::from_secs(10));
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
        assert!(page.contains("line held (30 units)"));
        assert!(page.contains("dispute D7</td><td>crates &lt;crushed&gt;</td>"));
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
        assert!(!html(&s, Duration::from_secs(10)).contains("store-write-error"));
        s.store_write_error = Some(crate::status::StoreWriteError {
            kind: crate::store::WriteFaultKind::DiskFull,
            error: "database or disk is full".into(),
            since: Timestamp(s.generated_at.0 - 120_000),
            failures: 3,
            advice: "free space <now>".into(),
        });
        let page = html(&s, Duration::from_secs(10));
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
