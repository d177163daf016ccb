//! Commands from the central system, applied exactly once.
//!
//! Transport-agnostic: the MQTT adapter decodes wire messages into [`Command`] (or a
//! [`Rejection`]) and hands them here; the CLI and tests can do the same. Each command is
//! applied inside the caller's store transaction together with a row in `applied_command`, so
//! its effects and the record that it was applied commit or vanish together: a command
//! delivered twice (broker redelivery, central retry, hub restart before the acknowledgement)
//! is applied once. Every outcome is reported upstream as an outbox event in the same
//! transaction. This module must not know topics, JSON envelopes or the broker.

use crate::store::{StoreError, outbox, sku as sku_store};
use hub_core::{DomainEvent, SiteId, Sku, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

/// What a command asks for. Everything but SKU master data is stored as a versioned document
/// for the workflows that use it (receiving, pickup, replenishment, alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// SKU master data (body: the SKU).
    SkuUpsert,
    /// Stock alert thresholds of one SKU.
    SkuThresholds,
    /// A delivery manifest for goods on their way to the site.
    DeliveryManifest,
    /// A customer's pickup order.
    PickupOrder,
    /// The central system's answer to a replenishment request.
    ReplenishmentAck,
    /// The site's alert-tier configuration.
    AlertTiers,
}

impl CommandKind {
    /// Every kind, for documentation and validation messages.
    pub const ALL: [CommandKind; 6] = [
        CommandKind::SkuUpsert,
        CommandKind::SkuThresholds,
        CommandKind::DeliveryManifest,
        CommandKind::PickupOrder,
        CommandKind::ReplenishmentAck,
        CommandKind::AlertTiers,
    ];

    /// The stable name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::SkuUpsert => "sku_upsert",
            CommandKind::SkuThresholds => "sku_thresholds",
            CommandKind::DeliveryManifest => "delivery_manifest",
            CommandKind::PickupOrder => "pickup_order",
            CommandKind::ReplenishmentAck => "replenishment_ack",
            CommandKind::AlertTiers => "alert_tiers",
        }
    }

    /// Looks a kind up by its name.
    pub fn parse(name: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A well-formed command, as decoded from whatever carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Unique id chosen by the central system; the unit of exactly-once.
    pub id: String,
    /// The site the command is meant for.
    pub site: String,
    pub kind: CommandKind,
    /// What the command is about (SKU code, manifest id, order id, …).
    pub key: String,
    /// Version of that thing; older versions never replace newer ones.
    pub version: i64,
    /// The payload (a JSON object).
    pub body: serde_json::Value,
}

/// Why a command is refused, as reported upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// Not readable as a command at all (bad JSON, missing fields).
    Malformed,
    /// Larger than the configured limit.
    Oversized,
    /// Meant for another site.
    WrongSite,
    /// A kind this hub does not know.
    UnknownKind,
    /// An envelope version this hub does not speak.
    UnsupportedVersion,
    /// Older than what is stored.
    StaleVersion,
    /// The body does not fit the kind.
    InvalidBody,
}

impl RejectCode {
    /// The stable code sent upstream.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Malformed => "malformed",
            RejectCode::Oversized => "oversized",
            RejectCode::WrongSite => "wrong_site",
            RejectCode::UnknownKind => "unknown_kind",
            RejectCode::UnsupportedVersion => "unsupported_version",
            RejectCode::StaleVersion => "stale_version",
            RejectCode::InvalidBody => "invalid_body",
        }
    }
}

/// A refused command with what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub command_id: Option<String>,
    pub kind: Option<String>,
    pub code: RejectCode,
    pub reason: String,
}

/// What applying did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Effects stored; `changed` is false when the same version was already there.
    Applied { command_id: String, changed: bool },
    /// This command id was handled before; nothing was done this time.
    Duplicate { command_id: String },
    /// Refused with a reason (reported upstream).
    Rejected(Rejection),
}

fn already_applied(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM applied_command WHERE command_id = ?1")
        .and_then(|mut st| st.query_row([id], |_| Ok(())).optional())
        .map(|r| r.is_some())
        .map_err(outbox::sql(conn))
}

fn remember(
    conn: &Connection,
    id: &str,
    kind: &str,
    outcome: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO applied_command (command_id, kind, outcome, reason, applied_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut st| st.execute(params![id, kind, outcome, reason, now.millis()]))
    .map(|_| ())
    .map_err(outbox::sql(conn))
}

fn reject(conn: &Connection, rejection: Rejection, now: Timestamp) -> Result<Applied, StoreError> {
    if let Some(id) = &rejection.command_id {
        if already_applied(conn, id)? {
            return Ok(Applied::Duplicate {
                command_id: id.clone(),
            });
        }
        remember(
            conn,
            id,
            rejection.kind.as_deref().unwrap_or("unknown"),
            "rejected",
            Some(&rejection.reason),
            now,
        )?;
    }
    tracing::warn!(
        command_id = rejection.command_id.as_deref().unwrap_or("-"),
        code = rejection.code.as_str(),
        reason = %rejection.reason,
        "command rejected"
    );
    outbox::append(
        conn,
        &DomainEvent::CommandRejected {
            command_id: rejection.command_id.clone(),
            command_kind: rejection.kind.clone(),
            code: rejection.code.as_str().to_owned(),
            reason: rejection.reason.clone(),
        },
        now,
    )?;
    Ok(Applied::Rejected(rejection))
}

/// Applies a decoded command (or records the rejection of an undecodable one) inside the
/// caller's transaction. `site` is this hub's site. Store errors mean nothing was applied and
/// the caller must not acknowledge the message.
pub fn apply(
    conn: &Connection,
    site: &SiteId,
    decoded: Result<Command, Rejection>,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let command = match decoded {
        Ok(c) => c,
        Err(rejection) => return reject(conn, rejection, now),
    };
    if already_applied(conn, &command.id)? {
        return Ok(Applied::Duplicate {
            command_id: command.id,
        });
    }
    let refuse = |code: RejectCode, reason: String| Rejection {
        command_id: Some(command.id.clone()),
        kind: Some(command.kind.as_str().to_owned()),
        code,
        reason,
    };
    if command.site != site.as_str() {
        return reject(
            conn,
            refuse(
                RejectCode::WrongSite,
                format!(
                    "command is for site '{}' but this hub is '{site}'",
                    command.site
                ),
            ),
            now,
        );
    }
    let changed = match command.kind {
        CommandKind::SkuUpsert => match apply_sku(conn, &command, now)? {
            Ok(changed) => changed,
            Err((code, reason)) => return reject(conn, refuse(code, reason), now),
        },
        _ => match apply_document(conn, &command, now)? {
            Ok(changed) => changed,
            Err((code, reason)) => return reject(conn, refuse(code, reason), now),
        },
    };
    let outcome = if changed { "applied" } else { "unchanged" };
    remember(conn, &command.id, command.kind.as_str(), outcome, None, now)?;
    outbox::append(
        conn,
        &DomainEvent::CommandApplied {
            command_id: command.id.clone(),
            command_kind: command.kind.as_str().to_owned(),
            outcome: outcome.to_owned(),
            key: Some(command.key.clone()),
            version: Some(command.version),
        },
        now,
    )?;
    tracing::info!(
        command_id = %command.id,
        kind = command.kind.as_str(),
        key = %command.key,
        version = command.version,
        outcome,
        "command applied"
    );
    Ok(Applied::Applied {
        command_id: command.id,
        changed,
    })
}

type Refusal = (RejectCode, String);

fn stale(kind: CommandKind, key: &str, version: i64, stored: i64) -> Refusal {
    (
        RejectCode::StaleVersion,
        format!(
            "{} '{key}' version {version} is older than the stored version {stored}",
            kind.as_str()
        ),
    )
}

fn apply_sku(
    conn: &Connection,
    command: &Command,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    let sku: Sku = match serde_json::from_value(command.body.clone()) {
        Ok(sku) => sku,
        Err(e) => {
            return Ok(Err((
                RejectCode::InvalidBody,
                format!("body is not SKU master data: {e}"),
            )));
        }
    };
    if sku.code.as_str() != command.key || sku.version != command.version {
        return Ok(Err((
            RejectCode::InvalidBody,
            format!(
                "body describes SKU '{}' version {} but the command names '{}' version {}",
                sku.code, sku.version, command.key, command.version
            ),
        )));
    }
    Ok(match sku_store::upsert(conn, &sku, now)? {
        sku_store::SkuUpsert::Inserted | sku_store::SkuUpsert::Updated => Ok(true),
        sku_store::SkuUpsert::Stale { stored_version } if stored_version == sku.version => {
            Ok(false)
        }
        sku_store::SkuUpsert::Stale { stored_version } => Err(stale(
            command.kind,
            &command.key,
            command.version,
            stored_version,
        )),
    })
}

fn apply_document(
    conn: &Connection,
    command: &Command,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    if !command.body.is_object() {
        return Ok(Err((
            RejectCode::InvalidBody,
            "body must be a JSON object".to_owned(),
        )));
    }
    let stored: Option<i64> = conn
        .prepare_cached("SELECT version FROM downlink_document WHERE kind = ?1 AND key = ?2")
        .and_then(|mut st| {
            st.query_row(params![command.kind.as_str(), command.key], |r| r.get(0))
                .optional()
        })
        .map_err(outbox::sql(conn))?;
    match stored {
        Some(v) if v > command.version => {
            return Ok(Err(stale(command.kind, &command.key, command.version, v)));
        }
        Some(v) if v == command.version => return Ok(Ok(false)),
        _ => {}
    }
    conn.prepare_cached(
        "INSERT INTO downlink_document (kind, key, version, body, command_id, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, key) DO UPDATE SET version = ?3, body = ?4, command_id = ?5,
             updated_at = ?6",
    )
    .and_then(|mut st| {
        st.execute(params![
            command.kind.as_str(),
            command.key,
            command.version,
            command.body.to_string(),
            command.id,
            now.millis()
        ])
    })
    .map_err(outbox::sql(conn))?;
    Ok(Ok(true))
}

/// A stored document, for the workflows that read what central sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Document {
    pub kind: String,
    pub key: String,
    pub version: i64,
    pub body: serde_json::Value,
    pub command_id: String,
}

/// Reads the current version of one document.
pub fn document(
    conn: &Connection,
    kind: CommandKind,
    key: &str,
) -> Result<Option<Document>, StoreError> {
    conn.prepare_cached(
        "SELECT kind, key, version, body, command_id FROM downlink_document
         WHERE kind = ?1 AND key = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![kind.as_str(), key], |r| {
            let body: String = r.get(3)?;
            Ok(Document {
                kind: r.get(0)?,
                key: r.get(1)?,
                version: r.get(2)?,
                body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                command_id: r.get(4)?,
            })
        })
        .optional()
    })
    .map_err(outbox::sql(conn))
}

/// How many commands were handled, by outcome (`applied`, `unchanged`, `rejected`).
pub fn outcome_counts(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT outcome, COUNT(*) FROM applied_command GROUP BY outcome ORDER BY outcome",
        )
        .map_err(outbox::sql(conn))?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(outbox::sql(conn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("t.sqlite"), "s1", &StoreOptions::default()).unwrap();
        (dir, store)
    }

    fn sku_command(id: &str, version: i64) -> Command {
        Command {
            id: id.into(),
            site: "s1".into(),
            kind: CommandKind::SkuUpsert,
            key: "MILK-1L".into(),
            version,
            body: serde_json::json!({"code": "MILK-1L", "name": "Milk", "unit": "piece",
                "version": version}),
        }
    }

    fn run(store: &Store, decoded: Result<Command, Rejection>) -> Applied {
        let site = SiteId::new("s1").unwrap();
        store
            .write_blocking(move |c| apply(c, &site, decoded, Timestamp(1)))
            .unwrap()
    }

    fn kinds(store: &Store) -> Vec<String> {
        store
            .read_blocking(|c| outbox::pending(c, 0, 1000))
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .collect()
    }

    #[test]
    fn a_command_applies_once_and_reports_once() {
        let (_d, store) = store();
        assert!(matches!(
            run(&store, Ok(sku_command("c1", 2))),
            Applied::Applied { changed: true, .. }
        ));
        assert!(matches!(
            run(&store, Ok(sku_command("c1", 2))),
            Applied::Duplicate { .. }
        ));
        assert_eq!(kinds(&store), ["sku_upserted", "command_applied"]);
    }

    #[test]
    fn older_versions_are_rejected_as_stale_and_equal_ones_change_nothing() {
        let (_d, store) = store();
        run(&store, Ok(sku_command("c1", 5)));
        match run(&store, Ok(sku_command("c2", 3))) {
            Applied::Rejected(r) => {
                assert_eq!(r.code, RejectCode::StaleVersion);
                assert!(r.reason.contains("stored version 5"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run(&store, Ok(sku_command("c3", 5))),
            Applied::Applied { changed: false, .. }
        ));
        let mut doc = sku_command("d1", 4);
        doc.kind = CommandKind::PickupOrder;
        doc.key = "P1".into();
        run(&store, Ok(doc.clone()));
        doc.id = "d2".into();
        doc.version = 1;
        assert!(
            matches!(run(&store, Ok(doc)), Applied::Rejected(r) if r.code == RejectCode::StaleVersion)
        );
        let stored = store
            .read_blocking(|c| document(c, CommandKind::PickupOrder, "P1"))
            .unwrap()
            .unwrap();
        assert_eq!(stored.version, 4);
    }

    #[test]
    fn wrong_site_and_bad_bodies_are_rejected_with_a_reason_event() {
        let (_d, store) = store();
        let mut c = sku_command("c1", 1);
        c.site = "other".into();
        assert!(
            matches!(run(&store, Ok(c)), Applied::Rejected(r) if r.code == RejectCode::WrongSite)
        );
        let mut c = sku_command("c2", 1);
        c.body = serde_json::json!({"code": "MILK-1L"});
        assert!(
            matches!(run(&store, Ok(c)), Applied::Rejected(r) if r.code == RejectCode::InvalidBody)
        );
        let r = Rejection {
            command_id: None,
            kind: None,
            code: RejectCode::Malformed,
            reason: "not JSON".into(),
        };
        assert!(matches!(run(&store, Err(r)), Applied::Rejected(_)));
        assert_eq!(
            kinds(&store),
            ["command_rejected", "command_rejected", "command_rejected"]
        );
    }
}
