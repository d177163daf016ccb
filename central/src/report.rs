//! What central holds, per site and stream: the report `central report` prints (as a table or
//! `--json`) and the consumer's tests read.

/// A gap list: missing ranges (inclusive), first 100.
pub type Gaps = Vec<(i64, i64)>;

/// One stream of a site as central sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamReport {
    pub stream: String,
    /// The stream the hub numbers its events in now.
    pub current: bool,
    /// The stream whose events `1..=base_seq` this one shares, if the hub said so.
    pub continues: Option<String>,
    pub base_seq: i64,
    /// Set when the stream it continues had gone past `base_seq`: the hub's database went
    /// back in time (a restored backup) and events `base_seq + 1 ..= rewound_past` of the
    /// continued stream may differ from this stream's.
    pub rewound_past: Option<i64>,
    /// When central first saw the stream (ms since the epoch).
    pub first_seen_at_ms: i64,
    /// Distinct events stored under this stream.
    pub events: i64,
    pub duplicates_dropped: i64,
    /// Events with a sequence number already held under another id (kept in `conflicts`).
    pub conflicts: i64,
    /// Every event up to here is held (this stream's, or up to `base_seq` the continued one's).
    pub contiguous_seq: i64,
    pub max_seq: i64,
    /// Missing ranges (inclusive) between `contiguous_seq` and `max_seq`, first 100.
    pub gaps: Gaps,
}

/// An event that arrived with a `(site, stream, seq)` already held under another id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictReport {
    pub stream: String,
    pub seq: i64,
    /// The id stored first (the one in `events`).
    pub stored_id: String,
    /// The id that arrived later (kept here, not dropped).
    pub id: String,
    pub kind: String,
    pub received_at_ms: i64,
}

/// One site as central sees it. The sequence figures (`contiguous_seq`, `max_seq`, `gaps`)
/// are those of the site's current stream; the counts cover every stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteReport {
    pub site: String,
    /// The stream the hub numbers its events in now (from its status and heartbeat).
    pub stream: Option<String>,
    /// Distinct events stored, all streams.
    pub events: i64,
    /// Copies received and dropped because the same event was already stored.
    pub duplicates_dropped: i64,
    /// Every event up to here is stored (current stream).
    pub contiguous_seq: i64,
    pub max_seq: i64,
    /// Missing ranges (inclusive) between `contiguous_seq` and `max_seq`, first 100.
    pub gaps: Gaps,
    /// Events stored as withheld markers (too large to send).
    pub withheld: i64,
    /// Last status the hub published (`online` / `offline`).
    pub hub_state: Option<String>,
    /// Highest sequence number the hub has reported.
    pub hub_last_seq: Option<i64>,
    /// Events kept as conflicts, all streams.
    pub conflicts: i64,
    /// Every stream, the current one first, then newest first.
    pub streams: Vec<StreamReport>,
    /// The conflicting events, first 100.
    pub conflicting_events: Vec<ConflictReport>,
}

/// Everything central holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CentralReport {
    pub sites: Vec<SiteReport>,
}

fn gap_text(gaps: &Gaps) -> String {
    if gaps.is_empty() {
        return "none".to_owned();
    }
    gaps.iter()
        .map(|(a, b)| {
            if a == b {
                format!("{a}")
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The first characters of a stream id, enough to tell streams apart in a table.
fn short(stream: &str) -> &str {
    stream.get(..13).unwrap_or(stream)
}

impl std::fmt::Display for CentralReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<20} {:<13} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8} {:<8} gaps",
            "SITE",
            "STREAM",
            "EVENTS",
            "CONTIGUOUS",
            "HUB LAST",
            "DUPES",
            "CONFLICTS",
            "WITHHELD",
            "HUB"
        )?;
        for s in &self.sites {
            writeln!(
                f,
                "{:<20} {:<13} {:>9} {:>11} {:>11} {:>9} {:>9} {:>8} {:<8} {}",
                s.site,
                s.stream.as_deref().map_or("-", short),
                s.events,
                s.contiguous_seq,
                s.hub_last_seq.map_or("-".into(), |v| v.to_string()),
                s.duplicates_dropped,
                s.conflicts,
                s.withheld,
                s.hub_state.as_deref().unwrap_or("-"),
                gap_text(&s.gaps),
            )?;
            if s.streams.len() > 1 || s.conflicts > 0 {
                for t in &s.streams {
                    let lineage = match (&t.continues, t.rewound_past) {
                        (Some(c), Some(past)) => format!(
                            "; continues {c} up to #{}; REWOUND: that stream went on to #{past}, its events #{}..=#{past} may differ from these",
                            t.base_seq,
                            t.base_seq + 1
                        ),
                        (Some(c), None) => format!("; continues {c} up to #{}", t.base_seq),
                        (None, _) => String::new(),
                    };
                    writeln!(
                        f,
                        "  stream {}{}: {} events, contiguous {}, max {}, {} dupes, {} conflicts, gaps {}{lineage}",
                        t.stream,
                        if t.current { " (current)" } else { "" },
                        t.events,
                        t.contiguous_seq,
                        t.max_seq,
                        t.duplicates_dropped,
                        t.conflicts,
                        gap_text(&t.gaps),
                    )?;
                }
                for c in &s.conflicting_events {
                    writeln!(
                        f,
                        "  CONFLICT stream {} #{}: held as {}, another event {} ({}) arrived; both kept",
                        c.stream, c.seq, c.stored_id, c.id, c.kind
                    )?;
                }
            }
        }
        if self.sites.is_empty() {
            writeln!(f, "(nothing received yet)")?;
        }
        Ok(())
    }
}
