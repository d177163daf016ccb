//! The consumer's counters, rendered for Prometheus with the fleet's gauges: ingest (events
//! stored, duplicates, conflicts, quarantined by reason), batch commit time, consumer lag
//! (messages received and not yet acknowledged), gaps open and sites offline.

use crate::fleet::FleetView;
use crate::store::{BatchCounts, QuarantineReason};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters one consumer keeps (shared with its web endpoint).
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub conflicts: AtomicU64,
    pub quarantined: [AtomicU64; QuarantineReason::ALL.len()],
    pub batches: AtomicU64,
    pub batch_failures: AtomicU64,
    /// Sum of batch commit times, microseconds.
    pub batch_commit_us: AtomicU64,
    pub batch_commit_max_us: AtomicU64,
    /// Messages received from the broker and not yet acknowledged.
    pub lag_messages: AtomicI64,
}

impl Metrics {
    /// Counts one committed batch.
    pub fn batch(&self, counts: &BatchCounts, micros: u64) {
        self.events_stored
            .fetch_add(counts.stored as u64, Ordering::Relaxed);
        self.duplicates
            .fetch_add(counts.duplicates as u64, Ordering::Relaxed);
        self.conflicts
            .fetch_add(counts.conflicts as u64, Ordering::Relaxed);
        for (slot, n) in self.quarantined.iter().zip(counts.quarantined_by_reason) {
            slot.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_commit_us.fetch_add(micros, Ordering::Relaxed);
        self.batch_commit_max_us
            .fetch_max(micros, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self, fleet: Option<&FleetView>) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "central_events_stored_total",
            "Events stored by this consumer (ingest rate: rate() of this).",
            get(&self.events_stored),
        );
        counter(
            "central_duplicates_total",
            "Copies of events already stored, dropped.",
            get(&self.duplicates),
        );
        counter(
            "central_conflicts_total",
            "Events under a sequence number already held by another event, kept apart.",
            get(&self.conflicts),
        );
        counter(
            "central_batches_total",
            "Batches committed.",
            get(&self.batches),
        );
        counter(
            "central_batch_failures_total",
            "Batches the database refused (redelivered by the broker).",
            get(&self.batch_failures),
        );
        let _ = writeln!(
            out,
            "# HELP central_quarantined_total Messages kept in quarantine, by reason.\n# TYPE central_quarantined_total counter"
        );
        for (i, reason) in QuarantineReason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "central_quarantined_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.quarantined[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP central_batch_commit_seconds Time to store and commit a batch.\n# TYPE central_batch_commit_seconds summary\ncentral_batch_commit_seconds_sum {}\ncentral_batch_commit_seconds_count {}",
            get(&self.batch_commit_us) as f64 / 1e6,
            get(&self.batches)
        );
        let mut gauge = |name: &str, help: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "central_batch_commit_seconds_max",
            "Longest batch commit since start.",
            format!("{}", get(&self.batch_commit_max_us) as f64 / 1e6),
        );
        gauge(
            "central_consumer_lag_messages",
            "Messages received from the broker and not yet acknowledged.",
            self.lag_messages.load(Ordering::Relaxed).to_string(),
        );
        if let Some(f) = fleet {
            gauge("central_sites", "Sites known.", f.sites.to_string());
            gauge(
                "central_sites_offline",
                "Sites whose hub is offline (status or Last Will) or never said.",
                f.sites_offline.to_string(),
            );
            gauge(
                "central_gaps_open",
                "Sites with a gap open in their current stream.",
                f.gaps_open.to_string(),
            );
            gauge(
                "central_red_alerts_open",
                "Red alerts open across the fleet (from heartbeats).",
                f.red_alerts_open.to_string(),
            );
            gauge(
                "central_devices_offline",
                "Devices offline across the fleet (from heartbeats).",
                f.devices_offline.to_string(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantined_messages_are_counted_by_reason() {
        let metrics = Metrics::default();
        let mut counts = BatchCounts {
            stored: 3,
            ..BatchCounts::default()
        };
        counts.quarantined(QuarantineReason::SiteMismatch);
        counts.quarantined(QuarantineReason::SiteMismatch);
        counts.quarantined(QuarantineReason::NotUtf8);
        metrics.batch(&counts, 1500);
        let text = metrics.render(None);
        assert!(text.contains("central_events_stored_total 3"), "{text}");
        assert!(
            text.contains("central_quarantined_total{reason=\"site_mismatch\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("central_quarantined_total{reason=\"not_utf8\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("central_batch_commit_seconds_sum 0.0015"),
            "{text}"
        );
    }
}
