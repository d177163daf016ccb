//! The fleet view for central's operations team: every site with its hub's state (online or
//! offline from the retained status and Last Will), last heartbeat, hub version, outbox depth
//! and oldest undelivered age, events stored today (UTC day of arrival), the open gap and
//! how long it has been open, open red alerts and devices offline (from the heartbeat),
//! messages quarantined — sorted worst first. `central fleet [--json]` prints it; the web page
//! and `/metrics` serve it. The stores only read rows ([`FleetRow`]); what they mean is
//! decided here.

use hub_contract as contract;

/// One site's raw figures as a store reads them.
#[derive(Debug, Clone, Default)]
pub struct FleetRow {
    pub site: String,
    pub status: Option<String>,
    pub status_at_ms: Option<i64>,
    pub heartbeat: Option<String>,
    pub heartbeat_at_ms: Option<i64>,
    pub contiguous_seq: i64,
    pub max_seq: i64,
    pub hub_last_seq: Option<i64>,
    pub gap_since_ms: Option<i64>,
    pub events_today: i64,
    pub events_total: i64,
    pub quarantined: i64,
}

/// One site in the fleet view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetSite {
    pub site: String,
    /// `online`, `offline` (status or Last Will), or `unknown` (no status yet).
    pub state: String,
    pub hub_version: Option<String>,
    /// Seconds since central received the last heartbeat.
    pub heartbeat_age_s: Option<f64>,
    pub outbox_depth: Option<i64>,
    pub oldest_undelivered_age_s: Option<f64>,
    pub events_today: i64,
    pub events_total: i64,
    /// Every event of the current stream up to here is stored.
    pub contiguous_seq: i64,
    /// Events the hub counts and central does not hold yet (held after a gap or not arrived).
    pub missing: i64,
    /// Seconds the current gap has been open (none when there is none).
    pub gap_open_s: Option<f64>,
    pub red_alerts_open: Option<i64>,
    pub devices_offline: Option<i64>,
    pub quarantined: i64,
}

/// The whole fleet at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FleetView {
    pub at_ms: i64,
    pub sites: usize,
    pub sites_offline: usize,
    pub gaps_open: usize,
    pub events_today: i64,
    pub events_total: i64,
    pub red_alerts_open: i64,
    pub devices_offline: i64,
    pub quarantined: i64,
    /// Worst first.
    pub fleet: Vec<FleetSite>,
}

/// Sites that only prove a consumer is subscribed.
const PROBE_SITE: &str = "probe";

impl FleetView {
    /// Builds the view from the store's rows at `now_ms`.
    pub fn from_rows(rows: Vec<FleetRow>, now_ms: i64) -> FleetView {
        let age = |at: Option<i64>| at.map(|t| (now_ms - t).max(0) as f64 / 1000.0);
        let mut fleet: Vec<FleetSite> = rows
            .into_iter()
            .filter(|r| r.site != PROBE_SITE)
            .map(|r| {
                let status = r
                    .status
                    .as_deref()
                    .and_then(|s| contract::decode_status(s.as_bytes()).ok());
                let beat = r
                    .heartbeat
                    .as_deref()
                    .and_then(|h| contract::decode_heartbeat(h.as_bytes()).ok());
                let hub_max = r.hub_last_seq.unwrap_or(0).max(r.max_seq);
                FleetSite {
                    state: status
                        .as_ref()
                        .map_or_else(|| "unknown".to_owned(), |s| s.state.clone()),
                    hub_version: status.as_ref().map(|s| s.hub_version.clone()),
                    heartbeat_age_s: age(r.heartbeat_at_ms),
                    outbox_depth: beat.as_ref().map(|b| b.outbox_depth),
                    oldest_undelivered_age_s: beat.as_ref().map(|b| b.oldest_undelivered_age_s),
                    events_today: r.events_today,
                    events_total: r.events_total,
                    contiguous_seq: r.contiguous_seq,
                    missing: (hub_max - r.contiguous_seq).max(0),
                    gap_open_s: age(r.gap_since_ms),
                    red_alerts_open: beat.as_ref().and_then(|b| b.red_alerts_open),
                    devices_offline: beat.as_ref().and_then(|b| b.devices_offline),
                    quarantined: r.quarantined,
                    site: r.site,
                }
            })
            .collect();
        fleet.sort_by(|a, b| {
            b.badness()
                .partial_cmp(&a.badness())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.site.cmp(&b.site))
        });
        FleetView {
            at_ms: now_ms,
            sites: fleet.len(),
            sites_offline: fleet.iter().filter(|s| s.state != "online").count(),
            gaps_open: fleet.iter().filter(|s| s.gap_open_s.is_some()).count(),
            events_today: fleet.iter().map(|s| s.events_today).sum(),
            events_total: fleet.iter().map(|s| s.events_total).sum(),
            red_alerts_open: fleet.iter().filter_map(|s| s.red_alerts_open).sum(),
            devices_offline: fleet.iter().filter_map(|s| s.devices_offline).sum(),
            quarantined: fleet.iter().map(|s| s.quarantined).sum(),
            fleet,
        }
    }
}

impl FleetSite {
    /// How bad a site looks, for "worst first": offline, then a gap (longer is worse), red
    /// alerts, devices offline, then the outbox's oldest row.
    fn badness(&self) -> (u8, f64, i64, i64, f64) {
        (
            u8::from(self.state != "online"),
            self.gap_open_s.unwrap_or(-1.0),
            self.red_alerts_open.unwrap_or(0),
            self.devices_offline.unwrap_or(0),
            self.oldest_undelivered_age_s.unwrap_or(0.0),
        )
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_owned(), T::to_string)
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| format!("{s:.0}s"))
}

impl std::fmt::Display for FleetView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} sites, {} offline, {} with a gap open; {} events today, {} in all; {} red alerts, {} devices offline, {} messages quarantined",
            self.sites,
            self.sites_offline,
            self.gaps_open,
            self.events_today,
            self.events_total,
            self.red_alerts_open,
            self.devices_offline,
            self.quarantined
        )?;
        writeln!(
            f,
            "{:<20} {:<8} {:<10} {:>9} {:>7} {:>9} {:>8} {:>9} {:>8} {:>8} {:>4} {:>4} {:>5}",
            "SITE",
            "STATE",
            "VERSION",
            "HEARTBEAT",
            "OUTBOX",
            "OLDEST",
            "TODAY",
            "CONTIG",
            "MISSING",
            "GAP",
            "RED",
            "DEVS",
            "QUAR"
        )?;
        for s in &self.fleet {
            writeln!(
                f,
                "{:<20} {:<8} {:<10} {:>9} {:>7} {:>9} {:>8} {:>9} {:>8} {:>8} {:>4} {:>4} {:>5}",
                s.site,
                s.state,
                opt(&s.hub_version),
                secs(s.heartbeat_age_s),
                opt(&s.outbox_depth),
                secs(s.oldest_undelivered_age_s),
                s.events_today,
                s.contiguous_seq,
                s.missing,
                secs(s.gap_open_s),
                opt(&s.red_alerts_open),
                opt(&s.devices_offline),
                s.quarantined
            )?;
        }
        Ok(())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The read-only web page (refreshes itself).
pub fn html(view: &FleetView, refresh_s: u64) -> String {
    let mut rows = String::new();
    for s in &view.fleet {
        let class = if s.state != "online" || s.gap_open_s.is_some() || s.red_alerts_open > Some(0)
        {
            " class=\"bad\""
        } else {
            ""
        };
        rows.push_str(&format!(
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&s.site),
            escape(&s.state),
            escape(&opt(&s.hub_version)),
            secs(s.heartbeat_age_s),
            opt(&s.outbox_depth),
            secs(s.oldest_undelivered_age_s),
            s.events_today,
            s.contiguous_seq,
            s.missing,
            secs(s.gap_open_s),
            opt(&s.red_alerts_open),
            opt(&s.devices_offline),
            s.quarantined,
        ));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{refresh_s}\">\
         <title>Fleet</title><style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}\
         td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         tr.bad{{background:#fde2e2}}</style></head><body>\n<h1>Fleet</h1>\n<p>{}</p>\n<table>\n\
         <tr><th>Site</th><th>State</th><th>Version</th><th>Heartbeat</th><th>Outbox</th><th>Oldest</th><th>Today</th>\
         <th>Contiguous</th><th>Missing</th><th>Gap open</th><th>Red</th><th>Devices offline</th><th>Quarantined</th></tr>\n{rows}</table>\n</body></html>\n",
        escape(view.to_string().lines().next().unwrap_or_default())
    )
}
