//! What the receiving panel shows of the open delivery's dispute episodes (opened, first
//! response, every response, settled) and the selected line's stored photos, in the reader's
//! language and the site's time zone. The panel (`receiving`) renders it; the supervisor's
//! actions on disputes are in `disputes`.

use crate::catalogue::{Lang, local_date_time, text};
use crate::store::deliveries::{BenchDelivery, DisputeEpisode};
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct EpisodeView {
    pub(super) id: i64,
    pub(super) open: bool,
    pub(super) note: String,
    pub(super) opened: String,
    pub(super) line_no: Option<u32>,
    pub(super) photos: Vec<String>,
    pub(super) first_response: Option<String>,
    pub(super) photos_inspected: Option<String>,
    pub(super) responses: Vec<String>,
    pub(super) settled: Option<String>,
}

/// What the receiving panel shows of the open delivery's disputes.
#[derive(Serialize)]
pub(super) struct DisputeView {
    pub(super) episodes: Vec<EpisodeView>,
    /// An episode is open (respond, inspect, settle) rather than none (open one).
    pub(super) open: bool,
    /// The selected line (a new dispute is about it) and its stored photos.
    pub(super) line_no: Option<u32>,
    pub(super) line_photos: Vec<String>,
}

fn short(sha256: &str) -> String {
    sha256.chars().take(12).collect()
}

fn episode_view(e: &DisputeEpisode, lang: Lang, zone: chrono_tz::Tz) -> EpisodeView {
    let by = |who: Option<&str>| who.map(|w| format!(" · {w}")).unwrap_or_default();
    let kind = |k: &str| text(&format!("dispute.kind.{k}"), lang).to_owned();
    EpisodeView {
        id: e.id,
        open: e.closed_at.is_none(),
        note: e.note.clone(),
        opened: format!(
            "{}{}",
            local_date_time(e.opened_at, zone),
            by(e.opened_by.as_deref())
        ),
        line_no: e.line_no,
        photos: e.photos.iter().map(|p| short(p)).collect(),
        first_response: e.first_response.as_ref().map(|r| {
            format!(
                "{} · {} · {}",
                local_date_time(r.at, zone),
                kind(&r.kind),
                r.by
            )
        }),
        photos_inspected: e
            .first_response
            .as_ref()
            .and_then(|r| r.photos_inspected_at)
            .map(|at| local_date_time(at, zone)),
        responses: e
            .responses
            .iter()
            .map(|r| {
                format!(
                    "{} · {} · {}: {}",
                    local_date_time(r.at, zone),
                    kind(&r.kind),
                    r.by,
                    r.note
                )
            })
            .collect(),
        settled: e.closed_at.map(|at| {
            format!(
                "{}{}: {}",
                local_date_time(at, zone),
                by(e.closed_by.as_deref()),
                e.settle_note.as_deref().unwrap_or("—")
            )
        }),
    }
}

/// The dispute part of the receiving panel for the open delivery (none without one).
pub(super) fn view(
    current: Option<&BenchDelivery>,
    selection: Option<&(String, u32)>,
    lang: Lang,
    zone: chrono_tz::Tz,
) -> Option<DisputeView> {
    let d = current?;
    let line_no = selection
        .filter(|(id, _)| *id == d.delivery_id)
        .map(|(_, n)| *n);
    let line_photos = line_no
        .and_then(|n| d.lines.iter().find(|l| l.line.line_no == n))
        .map(|l| {
            l.observed
                .photos
                .iter()
                .filter(|p| p.photo_path.is_some())
                .map(|p| short(&p.photo_sha256))
                .collect()
        })
        .unwrap_or_default();
    Some(DisputeView {
        episodes: d
            .disputes
            .iter()
            .map(|e| episode_view(e, lang, zone))
            .collect(),
        open: d.disputes.last().is_some_and(|e| e.closed_at.is_none()),
        line_no,
        line_photos,
    })
}
