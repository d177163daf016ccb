//! Dispute episodes as stored: a delivery's disputes, each opened, responded to and settled on
//! its own row, with every response. Read by receiving (the bench, `receive show`) and by the
//! trace of an item; written by receiving's dispute steps (`deliveries`).

use super::{StoreError, sql_error as sql};
use hub_core::Timestamp;
use rusqlite::Connection;
use serde::Serialize;

/// When, by whom and how an open or settled dispute was first responded to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputeFirstResponse {
    pub at: Timestamp,
    pub by: String,
    /// `note`, `photo_inspection` or `settled` (settled before any other response).
    pub kind: String,
    /// When the photos were first inspected, if they were.
    pub photos_inspected_at: Option<Timestamp>,
}

/// One response to a dispute episode, as it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputeResponseRecord {
    pub at: Timestamp,
    pub by: String,
    /// `note` or `photo_inspection`.
    pub kind: String,
    pub note: String,
}

/// One dispute episode of a delivery: opened, responded to, settled. A delivery's dispute can
/// be settled and opened again; each episode keeps its own times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputeEpisode {
    pub id: i64,
    pub delivery_id: String,
    pub opened_at: Timestamp,
    /// Who opened it (unknown for disputes opened before episodes were kept).
    pub opened_by: Option<String>,
    /// What is contested.
    pub note: String,
    pub closed_at: Option<Timestamp>,
    pub closed_by: Option<String>,
    /// How it was settled.
    pub settle_note: Option<String>,
    pub first_response: Option<DisputeFirstResponse>,
    /// The manifest line it is about, if one.
    pub line_no: Option<u32>,
    /// The SHA-256 of that line's photos stored when it was opened.
    pub photos: Vec<String>,
    /// Every response, oldest first.
    pub responses: Vec<DisputeResponseRecord>,
}

/// Every dispute episode of a delivery, oldest first, each with its responses.
pub fn dispute_episodes(
    conn: &Connection,
    delivery_id: &str,
) -> Result<Vec<DisputeEpisode>, StoreError> {
    let mut episodes: Vec<DisputeEpisode> = conn
        .prepare_cached(
            "SELECT id, opened_at, opened_by, note, closed_at, closed_by, settle_note,
                    first_response_at, first_response_by, first_response_kind, photos_inspected_at,
                    line_no, photos
             FROM dispute WHERE delivery_id = ?1 ORDER BY opened_at, id",
        )
        .and_then(|mut st| {
            st.query_map([delivery_id], |r| {
                let first_at: Option<i64> = r.get(7)?;
                let first_response = match first_at {
                    Some(at) => Some(DisputeFirstResponse {
                        at: Timestamp(at),
                        by: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        kind: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                        photos_inspected_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
                    }),
                    None => None,
                };
                Ok(DisputeEpisode {
                    id: r.get(0)?,
                    delivery_id: delivery_id.to_owned(),
                    opened_at: Timestamp(r.get(1)?),
                    opened_by: r.get(2)?,
                    note: r.get(3)?,
                    closed_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                    closed_by: r.get(5)?,
                    settle_note: r.get(6)?,
                    first_response,
                    line_no: r.get(11)?,
                    photos: r
                        .get::<_, Option<String>>(12)?
                        .and_then(|p| serde_json::from_str(&p).ok())
                        .unwrap_or_default(),
                    responses: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(sql(conn))?;
    for e in &mut episodes {
        e.responses = conn
            .prepare_cached(
                "SELECT at, staff, kind, note FROM dispute_response WHERE dispute_id = ?1
                 ORDER BY at, rowid",
            )
            .and_then(|mut st| {
                st.query_map([e.id], |r| {
                    Ok(DisputeResponseRecord {
                        at: Timestamp(r.get(0)?),
                        by: r.get(1)?,
                        kind: r.get(2)?,
                        note: r.get(3)?,
                    })
                })
                .and_then(|rows| rows.collect())
            })
            .map_err(sql(conn))?;
    }
    Ok(episodes)
}
