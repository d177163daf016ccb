//! Commands from the central system, applied exactly once.
//!
//! Transport-agnostic: `hub_contract` decodes wire messages into a [`Command`] whose body is
//! already a typed, validated value (or into a [`Rejection`]), and the MQTT adapter hands it
//! here. Each command is applied inside the caller's store transaction together with a row in
//! `applied_command`, so its effects and the record that it was applied commit or vanish
//! together: a command delivered twice (broker redelivery, central retry, hub restart before
//! the acknowledgement) is applied once. Every outcome is reported upstream as an outbox event
//! in the same transaction. This module must not know topics, JSON or the broker; what it
//! decides is what depends on the hub's state (duplicates, reused ids, the site, stored
//! versions, collected orders, closed deliveries, open disputes).

use crate::store::Tx;
use crate::store::deliveries::{self, ManifestUpsert};
use crate::store::pickup_orders::{self, OrderUpsert};
use crate::store::{StoreError, alert_book, applied_commands, outbox, sku as sku_store};
pub use hub_contract::command::{
    AlertTiersBody, Command, CommandBody, CommandKind, DemandSignalsBody, DisputeBody, MAX_VERSION,
    PickupOrderBody, RejectCode, Rejection, ReplenishmentAckBody, SkuThresholdsBody, SkuUpsertBody,
    version_out_of_range,
};
use hub_core::alerts::TierPolicy;
use hub_core::pickup::{OrderStatus, PickupOrder};
use hub_core::receiving::Manifest;
use hub_core::{DomainEvent, SiteId, SkuCode, Timestamp};

/// What applying did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Effects stored; `changed` is false when the same version was already there.
    Applied {
        command_id: String,
        changed: bool,
        kind: &'static str,
        key: String,
        version: i64,
    },
    /// This command id was handled before; nothing was done this time.
    Duplicate { command_id: String },
    /// Refused with a reason (reported upstream).
    Rejected(Rejection),
}

impl Applied {
    /// Logs the outcome. [`apply`] runs inside a transaction and logs nothing, so call this
    /// once the transaction has committed: before that, nothing has been applied.
    pub fn log(&self) {
        match self {
            Applied::Applied {
                command_id,
                changed,
                kind,
                key,
                version,
            } => tracing::info!(
                command_id = %command_id,
                kind,
                key = %key,
                version,
                outcome = if *changed { "applied" } else { "unchanged" },
                "command applied"
            ),
            Applied::Duplicate { command_id } => {
                tracing::debug!(command_id = %command_id, "command already applied; ignored")
            }
            Applied::Rejected(rejection) => tracing::warn!(
                command_id = rejection.command_id.as_deref().unwrap_or("-"),
                code = rejection.code.as_str(),
                reason = %rejection.reason,
                "command rejected"
            ),
        }
    }
}

/// Whether a command id was handled before, and if so whether this is the same command again
/// (a duplicate: nothing to do) or another one reusing the id (answered with `id_reused`).
/// Without a fingerprint on either side (rows from before fingerprints were kept, rejections
/// not built by the decoder) it counts as the same command.
enum Seen {
    New,
    Duplicate,
    Reused(applied_commands::Handled),
}

fn seen(conn: &Tx<'_>, id: &str, fingerprint: Option<&str>) -> Result<Seen, StoreError> {
    Ok(match applied_commands::handled_before(conn, id)? {
        None => Seen::New,
        Some(h) => match (h.fingerprint.as_deref(), fingerprint) {
            (Some(stored), Some(new)) if stored != new => Seen::Reused(h),
            _ => Seen::Duplicate,
        },
    })
}

/// Answers a command that reuses the id of another one: nothing is applied or recorded under
/// the id (it stays the first command's), and central hears why.
fn answer_reused(
    conn: &Tx<'_>,
    id: &str,
    kind: Option<String>,
    before: applied_commands::Handled,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let when = before.at.to_rfc3339();
    let rejection = Rejection {
        command_id: Some(id.to_owned()),
        kind,
        code: RejectCode::IdReused,
        reason: format!(
            "command id '{id}' was already used by a {} command that was {} at {when}; this \
             command's content differs from that one, so it was not applied: send each new \
             command with a new id",
            before.kind, before.outcome
        ),
        fingerprint: None,
    };
    report_rejection(conn, &rejection, now)?;
    Ok(Applied::Rejected(rejection))
}

/// Reports a rejection upstream (logged by [`Applied::log`] once the transaction commits).
fn report_rejection(
    conn: &Tx<'_>,
    rejection: &Rejection,
    now: Timestamp,
) -> Result<(), StoreError> {
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
    Ok(())
}

fn reject(conn: &Tx<'_>, rejection: Rejection, now: Timestamp) -> Result<Applied, StoreError> {
    if let Some(id) = &rejection.command_id {
        match seen(conn, id, rejection.fingerprint.as_deref())? {
            Seen::New => {}
            Seen::Duplicate => {
                return Ok(Applied::Duplicate {
                    command_id: id.clone(),
                });
            }
            Seen::Reused(before) => {
                return answer_reused(conn, id, rejection.kind.clone(), before, now);
            }
        }
        let outcome = applied_commands::Outcome {
            id,
            kind: rejection.kind.as_deref().unwrap_or("unknown"),
            outcome: "rejected",
            reason: Some(&rejection.reason),
            fingerprint: rejection.fingerprint.as_deref(),
        };
        applied_commands::remember(conn, &outcome, now)?;
    }
    report_rejection(conn, &rejection, now)?;
    Ok(Applied::Rejected(rejection))
}

/// Applies a decoded command (or records the rejection of an undecodable one) inside the
/// caller's transaction. `site` is this hub's site. Store errors mean nothing was applied and
/// the caller must not acknowledge the message.
///
/// `zone` is the site's time zone (`site.timezone`): demand signals that ended before the
/// site's day are refused.
pub fn apply(
    conn: &Tx<'_>,
    site: &SiteId,
    zone: chrono_tz::Tz,
    decoded: Result<Command, Rejection>,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let command = match decoded {
        Ok(c) => c,
        Err(rejection) => return reject(conn, rejection, now),
    };
    let print = command.fingerprint.clone();
    match seen(conn, &command.id, Some(&print))? {
        Seen::New => {}
        Seen::Duplicate => {
            return Ok(Applied::Duplicate {
                command_id: command.id,
            });
        }
        Seen::Reused(before) => {
            let kind = Some(command.kind.as_str().to_owned());
            return answer_reused(conn, &command.id, kind, before, now);
        }
    }
    let refuse = |code: RejectCode, reason: String| Rejection {
        command_id: Some(command.id.clone()),
        kind: Some(command.kind.as_str().to_owned()),
        code,
        reason,
        fingerprint: Some(print.clone()),
    };
    if !(1..=MAX_VERSION).contains(&command.version) {
        let reason = version_out_of_range(command.version);
        return reject(conn, refuse(RejectCode::Malformed, reason), now);
    }
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
    let body = match &command.body {
        Ok(body) => body,
        Err(invalid) => {
            return reject(
                conn,
                refuse(RejectCode::InvalidBody, invalid.0.clone()),
                now,
            );
        }
    };
    let result = match body {
        CommandBody::SkuUpsert(body) => apply_sku(conn, &command, body, now)?,
        CommandBody::SkuThresholds(body) => apply_thresholds(conn, &command, body)?,
        CommandBody::AlertTiers(body) => apply_alert_tiers(conn, &command, body)?,
        CommandBody::DeliveryManifest(manifest) => apply_manifest(conn, &command, manifest, now)?,
        CommandBody::PickupOrder(body) => apply_pickup_order(conn, site, &command, body, now)?,
        CommandBody::ReplenishmentAck(body) => apply_replenishment_ack(conn, &command, body, now)?,
        CommandBody::DeliveryDispute(body) => apply_dispute(conn, &command, body, now)?,
        CommandBody::DemandSignals(body) => {
            apply_demand_signals(conn, body, crate::clock::site_date(zone, now), now)?
        }
        CommandBody::StaffUpsert(body) => apply_staff(conn, &command, body, now)?,
    };
    let changed = match result {
        Ok(changed) => changed,
        Err((code, reason)) => return reject(conn, refuse(code, reason), now),
    };
    let outcome = if changed { "applied" } else { "unchanged" };
    let record = applied_commands::Outcome {
        id: &command.id,
        kind: command.kind.as_str(),
        outcome,
        reason: None,
        fingerprint: Some(&print),
    };
    applied_commands::remember(conn, &record, now)?;
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
    Ok(Applied::Applied {
        command_id: command.id,
        changed,
        kind: command.kind.as_str(),
        key: command.key,
        version: command.version,
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

/// Central's staff member: stored by version; the PIN hash must be a readable argon2 PHC
/// string (central never sends a PIN).
fn apply_staff(
    conn: &Tx<'_>,
    command: &Command,
    body: &hub_contract::command::StaffUpsertBody,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    use crate::store::staff::{CentralStaff, CentralStaffStored, Role, upsert_from_central};
    if let Some(hash) = &body.pin_hash
        && argon2::password_hash::PasswordHash::new(hash).is_err()
    {
        return Ok(Err((
            RejectCode::InvalidBody,
            format!(
                "staff '{}': pin_hash is not a readable argon2 PHC string",
                command.key
            ),
        )));
    }
    let Some(role) = Role::parse(&body.role) else {
        return Ok(Err((
            RejectCode::InvalidBody,
            format!(
                "staff role '{}' is not clerk, supervisor or manager",
                body.role
            ),
        )));
    };
    let member = CentralStaff {
        staff_id: &command.key,
        name: &body.name,
        role,
        lang: &body.lang,
        pin_hash: body.pin_hash.as_deref(),
        disabled: body.disabled,
        version: command.version,
    };
    Ok(match upsert_from_central(conn, &member, now)? {
        CentralStaffStored::Stored => Ok(true),
        CentralStaffStored::Same => Ok(false),
        CentralStaffStored::Stale { stored_version } => Err(stale(
            command.kind,
            &command.key,
            command.version,
            stored_version,
        )),
        CentralStaffStored::NoPin => Err((
            RejectCode::InvalidBody,
            format!(
                "staff '{}' is new here and has no pin_hash: send the argon2 PHC string of their PIN",
                command.key
            ),
        )),
    })
}

fn apply_sku(
    conn: &Tx<'_>,
    command: &Command,
    body: &SkuUpsertBody,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    let sku = &body.sku;
    let sku_changed = match sku_store::upsert(conn, sku, now)? {
        sku_store::SkuUpsert::Inserted | sku_store::SkuUpsert::Updated => true,
        sku_store::SkuUpsert::Stale { stored_version } if stored_version == sku.version => false,
        sku_store::SkuUpsert::Stale { stored_version } => {
            return Ok(Err(stale(
                command.kind,
                &command.key,
                command.version,
                stored_version,
            )));
        }
    };
    if sku_changed {
        crate::store::unit_weights::set(conn, sku.code.as_str(), body.unit_weight_g)?;
        sku_store::set_category(conn, &sku.code, body.category.as_deref())?;
    }
    let policy_changed = match &body.thresholds {
        None => false,
        // Thresholds share one version sequence per SKU with `sku_thresholds`: a newer policy
        // stored from there stays.
        Some(p) => store_policy(conn, &sku.code, p, sku.version)?.unwrap_or(false),
    };
    Ok(Ok(sku_changed || policy_changed))
}

fn conflict(reason: String) -> Refusal {
    (RejectCode::Conflict, reason)
}

/// Stores one SKU's thresholds by version: `Ok(true)` stored, `Ok(false)` same version
/// already there, `Err(stored)` a newer version is stored.
fn store_policy(
    conn: &Tx<'_>,
    sku: &SkuCode,
    policy: &TierPolicy,
    version: i64,
) -> Result<Result<bool, i64>, StoreError> {
    match alert_book::policy_version(conn, sku)? {
        Some(v) if v > version => Ok(Err(v)),
        Some(v) if v == version => Ok(Ok(false)),
        _ => {
            alert_book::set_policy(conn, sku, policy, version)?;
            Ok(Ok(true))
        }
    }
}

fn apply_thresholds(
    conn: &Tx<'_>,
    command: &Command,
    body: &SkuThresholdsBody,
) -> Result<Result<bool, Refusal>, StoreError> {
    Ok(
        store_policy(conn, &body.sku, &body.policy, command.version)?
            .map_err(|stored| stale(command.kind, &command.key, command.version, stored)),
    )
}

/// `alert_tiers`: every entry was checked by the contract (all or nothing); each is stored by
/// the version sequence of its SKU.
fn apply_alert_tiers(
    conn: &Tx<'_>,
    command: &Command,
    body: &AlertTiersBody,
) -> Result<Result<bool, Refusal>, StoreError> {
    let mut changed = false;
    for (sku, policy) in &body.policies {
        // A newer per-SKU policy (from `sku_thresholds` or `sku_upsert`) wins; that SKU is
        // left as it is and the rest still apply.
        changed |= store_policy(conn, sku, policy, command.version)?.unwrap_or(false);
    }
    Ok(Ok(changed))
}

fn apply_manifest(
    conn: &Tx<'_>,
    command: &Command,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    Ok(match deliveries::upsert_manifest(conn, manifest, now)? {
        ManifestUpsert::Inserted | ManifestUpsert::Amended | ManifestUpsert::Cancelled => Ok(true),
        ManifestUpsert::Stale { stored_version } if stored_version == command.version => Ok(false),
        ManifestUpsert::Stale { stored_version } => Err(stale(
            command.kind,
            &command.key,
            command.version,
            stored_version,
        )),
        ManifestUpsert::AlreadyClosed => Err(conflict(format!(
            "delivery {} is already received and closed at this site; version {} was not applied",
            command.key, command.version
        ))),
    })
}

fn apply_pickup_order(
    conn: &Tx<'_>,
    site: &SiteId,
    command: &Command,
    body: &PickupOrderBody,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    let order = PickupOrder {
        order_id: command.key.clone(),
        site: site.clone(),
        code_salt: body.code_salt.clone(),
        code_hash: body.code_hash.clone(),
        items: body.items.clone(),
        opens_at: body.opens_at,
        closes_at: body.closes_at,
        status: body.status.clone(),
        version: command.version,
        phone_tail: body.phone_tail.clone(),
    };
    Ok(match pickup_orders::upsert_order(conn, &order, now)? {
        OrderUpsert::Inserted | OrderUpsert::Updated => Ok(true),
        OrderUpsert::Stale { stored_version } if stored_version == command.version => Ok(false),
        OrderUpsert::Stale { stored_version } => Err(stale(
            command.kind,
            &command.key,
            command.version,
            stored_version,
        )),
        OrderUpsert::AlreadyCollected => {
            let (at, station) = match pickup_orders::order(conn, &command.key)?.map(|o| o.status) {
                Some(OrderStatus::Collected { at, station }) => (at.millis(), station),
                Some(OrderStatus::PartiallyCollected) => {
                    return Ok(Err(conflict(format!(
                        "order {} was partly collected here (pickup_partly_handed_over); version {} \
                         (status {}) was not applied: settle the rest with the customer instead",
                        command.key,
                        command.version,
                        order.status.name()
                    ))));
                }
                _ => (0, String::new()),
            };
            Err(conflict(format!(
                "order {} was already collected at station '{station}' (at_ms {at}); version {} \
                 (status {}) was not applied: settle it with the customer instead",
                command.key,
                command.version,
                order.status.name()
            )))
        }
    })
}

fn apply_replenishment_ack(
    conn: &Tx<'_>,
    command: &Command,
    body: &ReplenishmentAckBody,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    let sku = match &body.sku {
        Some(sku) => Some(sku.clone()),
        None => alert_book::tiers(conn)?
            .into_iter()
            .find(|(_, state)| state.episode.as_ref().is_some_and(|e| e.id == command.key))
            .and_then(|(code, _)| SkuCode::new(code).ok()),
    };
    let changed = match &sku {
        Some(sku) => alert_book::acknowledge_replenishment(conn, sku, &command.key, now)?,
        None => false,
    };
    if !changed {
        // The episode ended (stock arrived) or was acknowledged before: nothing to stop.
        tracing::info!(episode = %command.key, "replenishment acknowledgement for no open request");
    } else {
        tracing::info!(episode = %command.key, accepted = body.accepted, eta_ms = ?body.eta_ms,
            "replenishment request acknowledged; no more requests in this episode");
    }
    Ok(Ok(changed))
}

fn apply_dispute(
    conn: &Tx<'_>,
    command: &Command,
    body: &DisputeBody,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    use deliveries::ReceivingError;
    let delivery = command.key.as_str();
    let result = crate::workflows::receiving::dispute_in(
        conn,
        delivery,
        &body.by,
        body.step,
        &body.note,
        body.line_no,
        now,
    );
    Ok(match result {
        Ok(()) => Ok(true),
        // The same complaint sent again under another command id: nothing to change.
        Err(ReceivingError::DisputeAlreadyOpen { note, .. }) if note == body.note => Ok(false),
        Err(ReceivingError::Store(e)) => return Err(e),
        Err(
            e @ (ReceivingError::UnknownDelivery(_)
            | ReceivingError::UnknownLine { .. }
            | ReceivingError::EmptyDisputeNote),
        ) => Err((RejectCode::InvalidBody, e.to_string())),
        Err(e) => Err(conflict(e.to_string())),
    })
}

/// Demand signals: SKU codes must be in the catalogue, each signal sane (multiplier in
/// `(0, 20]`, range not inverted, not wholly before `today`, reserve in `[0, 1)`), and no two
/// signals of the same kind may cover the same SKU and day — among those sent and against the
/// stored ones still running (a stored one with the same id is replaced). Every problem is
/// named in the one refusal.
fn apply_demand_signals(
    conn: &Tx<'_>,
    body: &DemandSignalsBody,
    today: chrono::NaiveDate,
    now: Timestamp,
) -> Result<Result<bool, Refusal>, StoreError> {
    use hub_forecast::{SignalError, SignalScope, validate_signals};
    let mut problems: Vec<String> = Vec::new();
    for signal in &body.signals {
        if let SignalScope::Category(category) = &signal.scope
            && sku_store::in_category(conn, category)?.is_empty()
        {
            problems.push(format!(
                "signal {}: no SKU is in category '{category}', so it would reach none (send \
                 the SKUs' category with sku_upsert first, or scope the signal by skus)",
                signal.id
            ));
        }
        if let SignalScope::Skus(codes) = &signal.scope {
            let mut unknown = Vec::new();
            for code in codes {
                if !sku_store::exists(conn, code.as_str())? {
                    unknown.push(code.as_str());
                }
            }
            if !unknown.is_empty() {
                problems.push(format!(
                    "signal {}: unknown SKU(s) {} (send their master data first)",
                    signal.id,
                    unknown.join(", ")
                ));
            }
        }
    }
    if let Err(errors) = validate_signals(&body.signals, today) {
        problems.extend(errors.iter().map(ToString::to_string));
    }
    let new_ids: std::collections::BTreeSet<&str> =
        body.signals.iter().map(|s| s.id.as_str()).collect();
    let mut combined: Vec<_> = crate::store::demand::signals(conn)?
        .into_iter()
        .filter(|s| s.end >= today && !new_ids.contains(s.id.as_str()))
        .collect();
    if !combined.is_empty() {
        combined.extend(body.signals.iter().cloned());
        if let Err(errors) = validate_signals(&combined, today) {
            problems.extend(errors.iter().filter_map(|e| match e {
                SignalError::Overlap { first, second, .. }
                    if new_ids.contains(first.as_str()) != new_ids.contains(second.as_str()) =>
                {
                    Some(format!("{e} (stored)"))
                }
                _ => None,
            }));
        }
    }
    if !problems.is_empty() {
        return Ok(Err((
            RejectCode::InvalidBody,
            format!("demand signals refused: {}", problems.join("; ")),
        )));
    }
    crate::store::demand::store_signals(conn, &body.signals, now)?;
    Ok(Ok(true))
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

    /// A command for site `s1` as central puts it on the wire (`body` is JSON text), decoded
    /// by the contract as the downlink does.
    fn command(id: &str, kind: &str, key: &str, version: i64, body: &str) -> Command {
        let bytes = format!(
            r#"{{"v":1,"id":"{id}","site":"s1","kind":"{kind}","key":"{key}","version":{version},"body":{body}}}"#
        );
        hub_contract::decode_command(bytes.as_bytes(), usize::MAX).unwrap()
    }

    fn sku_command(id: &str, version: i64) -> Command {
        command(
            id,
            "sku_upsert",
            "MILK-1L",
            version,
            &format!(
                r#"{{"code": "MILK-1L", "name": "Milk", "unit": "piece", "version": {version}}}"#
            ),
        )
    }

    fn order_command(id: &str, version: i64, status: &str) -> Command {
        let hash = "ab".repeat(32);
        command(
            id,
            "pickup_order",
            "P1",
            version,
            &format!(
                r#"{{"code_salt": "a1b2", "code_hash": "{hash}",
                "items": [{{"sku": "MILK-1L", "quantity": 2}}],
                "opens_at_ms": 0, "closes_at_ms": 10000, "status": "{status}"}}"#
            ),
        )
    }

    fn manifest_command(id: &str, version: i64, cancelled: bool) -> Command {
        command(
            id,
            "delivery_manifest",
            "D1",
            version,
            &format!(
                r#"{{"supplier": "Farm", "cancelled": {cancelled},
                "lines": [{{"line_no": 1, "sku": "MILK-1L", "lot": "L1", "expected_count": 10}}]}}"#
            ),
        )
    }

    fn run(store: &Store, decoded: Result<Command, Rejection>) -> Applied {
        let site = SiteId::new("s1").unwrap();
        store
            .write_blocking(move |c| {
                apply(c, &site, chrono_tz::Asia::Shanghai, decoded, Timestamp(1))
            })
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

    fn dispute_command(id: &str, delivery: &str, body: &str) -> Command {
        command(id, "delivery_dispute", delivery, 1, body)
    }

    /// Everything logged while `f` runs on this thread, as text.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn nothing_is_logged_as_applied_inside_the_transaction_only_after_the_commit() {
        let (dir, store) = store();
        store.close();
        drop(store);
        // `apply` on this thread, in a transaction that never commits (as when the disk is full).
        let conn = rusqlite::Connection::open(dir.path().join("t.sqlite")).unwrap();
        let site = SiteId::new("s1").unwrap();
        let mut applied = None;
        let inside = logged(|| {
            conn.execute_batch("BEGIN").unwrap();
            let tx = Tx::opened_by_test(&conn);
            let zone = chrono_tz::Asia::Shanghai;
            applied =
                Some(apply(&tx, &site, zone, Ok(sku_command("c1", 1)), Timestamp(1)).unwrap());
            let rejected = apply(&tx, &site, zone, Ok(sku_command("c0", 0)), Timestamp(1)).unwrap();
            assert!(matches!(rejected, Applied::Rejected(_)), "{rejected:?}");
            conn.execute_batch("ROLLBACK").unwrap();
        });
        assert!(
            !inside.contains("command applied") && !inside.contains("command rejected"),
            "logged before any commit: {inside}"
        );
        let applied = applied.unwrap();
        assert!(matches!(applied, Applied::Applied { changed: true, .. }));
        // The caller logs once its write has committed.
        let after = logged(|| applied.log());
        assert!(after.contains("command applied"), "{after}");
        assert!(after.contains("MILK-1L") && after.contains("c1"), "{after}");
    }

    #[test]
    fn central_opens_and_closes_a_delivery_dispute() {
        let (_d, store) = store();
        run(&store, Ok(sku_command("c1", 1)));
        run(&store, Ok(manifest_command("c2", 1, false)));
        let open = r#"{"open": true, "note": "customer: mouldy oranges", "by": "cs.zhao"}"#;
        assert!(matches!(
            run(&store, Ok(dispute_command("c3", "D1", open))),
            Applied::Applied { changed: true, .. }
        ));
        let dispute = store
            .read_blocking(|c| deliveries::open_dispute_of(c, "D1"))
            .unwrap()
            .expect("the dispute is open");
        assert_eq!(dispute.note, "customer: mouldy oranges");
        // The same complaint again under a new id changes nothing; another one conflicts.
        assert!(matches!(
            run(&store, Ok(dispute_command("c4", "D1", open))),
            Applied::Applied { changed: false, .. }
        ));
        let other = r#"{"open": true, "note": "a second complaint"}"#;
        match run(&store, Ok(dispute_command("c5", "D1", other))) {
            Applied::Rejected(r) => {
                assert_eq!(r.code, RejectCode::Conflict);
                assert!(r.reason.contains("mouldy"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        // Bad bodies and unknown deliveries are refused with their reason.
        for (id, delivery, body) in [
            ("c6", "D404", r#"{"open": true, "note": "x"}"#),
            ("c7", "D1", r#"{"open": true, "note": " "}"#),
            ("c8", "D1", r#"{"note": "no open flag"}"#),
        ] {
            match run(&store, Ok(dispute_command(id, delivery, body))) {
                Applied::Rejected(r) => {
                    assert_eq!(r.code, RejectCode::InvalidBody, "{id}: {}", r.reason)
                }
                other => panic!("{id}: {other:?}"),
            }
        }
        let close = r#"{"open": false, "note": "refunded; supplier credited"}"#;
        assert!(matches!(
            run(&store, Ok(dispute_command("c9", "D1", close))),
            Applied::Applied { changed: true, .. }
        ));
        assert!(
            store
                .read_blocking(|c| deliveries::open_dispute_of(c, "D1"))
                .unwrap()
                .is_none()
        );
        match run(&store, Ok(dispute_command("c10", "D1", close))) {
            Applied::Rejected(r) => assert_eq!(r.code, RejectCode::Conflict),
            other => panic!("{other:?}"),
        }
        let kinds = kinds(&store);
        assert!(kinds.contains(&"dispute_opened".to_owned()), "{kinds:?}");
        assert!(kinds.contains(&"dispute_closed".to_owned()), "{kinds:?}");
    }

    fn rejection(applied: Applied) -> Rejection {
        match applied {
            Applied::Rejected(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_reused_command_id_with_another_body_is_answered_not_dropped() {
        let (_d, store) = store();
        assert!(matches!(
            run(&store, Ok(sku_command("c1", 2))),
            Applied::Applied { changed: true, .. }
        ));
        // The same id again with another body: refused, named, and reported upstream.
        let other = command(
            "c1",
            "sku_upsert",
            "MILK-1L",
            2,
            r#"{"code": "MILK-1L", "name": "Milk, renamed", "unit": "piece", "version": 2}"#,
        );
        let r = rejection(run(&store, Ok(other)));
        assert_eq!(r.code.as_str(), "id_reused", "{}", r.reason);
        assert_eq!(r.command_id.as_deref(), Some("c1"));
        assert!(
            r.reason.contains("'c1'") && r.reason.contains("differs"),
            "{}",
            r.reason
        );
        // Another key or version under the same id is the same mistake.
        let r = rejection(run(&store, Ok(sku_command("c1", 3))));
        assert_eq!(r.code.as_str(), "id_reused", "{}", r.reason);
        // The applied command itself, delivered again, is still a silent duplicate.
        assert!(matches!(
            run(&store, Ok(sku_command("c1", 2))),
            Applied::Duplicate { .. }
        ));
        let stored = store
            .read_blocking(|c| sku_store::get(c, &SkuCode::new("MILK-1L").unwrap()))
            .unwrap()
            .unwrap();
        assert_eq!((stored.name.as_str(), stored.version), ("Milk", 2));
        assert_eq!(
            kinds(&store),
            [
                "sku_upserted",
                "command_applied",
                "command_rejected",
                "command_rejected"
            ]
        );
    }

    #[test]
    fn a_rejected_command_id_reused_with_another_body_is_answered_too() {
        let (_d, store) = store();
        let big = format!(
            r#"{{"v":1,"id":"c-big","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":1,"body":{{"pad":"{}"}}}}"#,
            "x".repeat(500)
        );
        let decoded = hub_contract::decode_command(big.as_bytes(), 200);
        let r = rejection(run(&store, decoded.clone()));
        assert_eq!(r.code, RejectCode::Oversized);
        // The broker delivering the same bytes again is a duplicate ...
        assert!(matches!(run(&store, decoded), Applied::Duplicate { .. }));
        // ... but a different command under the rejected id is answered.
        let r = rejection(run(&store, Ok(sku_command("c-big", 1))));
        assert_eq!(r.code.as_str(), "id_reused", "{}", r.reason);
        assert!(r.reason.contains("rejected"), "{}", r.reason);
    }

    #[test]
    fn versions_outside_the_sane_range_are_refused_with_a_reason() {
        let (_d, store) = store();
        for version in [i64::MAX, (1 << 53) + 1, 0, -1] {
            let r = rejection(run(
                &store,
                Ok(sku_command(&format!("c{version}"), version)),
            ));
            assert_eq!(r.code, RejectCode::Malformed, "{version}: {}", r.reason);
            assert!(
                r.reason.contains(&version.to_string()) && r.reason.contains("9007199254740992"),
                "{version}: {}",
                r.reason
            );
        }
        // Nothing was stored, so a normal version still applies: the key is not locked.
        assert!(matches!(
            run(&store, Ok(sku_command("c-ok", 1 << 53))),
            Applied::Applied { changed: true, .. }
        ));
        // Off the wire: a version beyond i64 or not an integer is refused with the same rule.
        for version in ["1e300", "18446744073709551615", "2.5"] {
            let bytes = format!(
                r#"{{"v":1,"id":"w{version}","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":{version},"body":{{}}}}"#
            );
            let decoded = hub_contract::decode_command(bytes.as_bytes(), 10_000);
            let r = rejection(run(&store, decoded));
            assert_eq!(
                r.command_id.as_deref(),
                Some(format!("w{version}").as_str())
            );
            assert!(
                r.reason.contains("9007199254740992"),
                "{version}: {}",
                r.reason
            );
        }
    }

    #[test]
    fn oversized_and_non_utf8_commands_are_rejected_under_their_id() {
        let (_d, store) = store();
        let big = format!(
            r#"{{"v":1,"id":"c-big","site":"s1","kind":"pickup_order","key":"P1","version":1,"body":{{"pad":"{}"}}}}"#,
            "x".repeat(5_000)
        );
        let r = rejection(run(
            &store,
            hub_contract::decode_command(big.as_bytes(), 1_000),
        ));
        assert_eq!(r.code, RejectCode::Oversized);
        assert_eq!(r.command_id.as_deref(), Some("c-big"));
        assert_eq!(r.kind.as_deref(), Some("pickup_order"));
        let mut bad = br#"{"v":1,"id":"c-utf8","site":"s1","kind":"sku_upsert","key":"MILK-1L","version":1,"body":{"name":"Milk "#.to_vec();
        bad.extend_from_slice(&[0xff, 0xfe]);
        bad.extend_from_slice(br#""}}"#);
        let r = rejection(run(&store, hub_contract::decode_command(&bad, 1_000)));
        assert_eq!(r.code, RejectCode::Malformed);
        assert_eq!(r.command_id.as_deref(), Some("c-utf8"));
        assert!(r.reason.contains("UTF-8"), "{}", r.reason);
        // Each is remembered under its id: a redelivery is not answered twice.
        assert!(matches!(
            run(&store, hub_contract::decode_command(&bad, 1_000)),
            Applied::Duplicate { .. }
        ));
        let ids: Vec<Option<String>> = store
            .read_blocking(|c| outbox::pending(c, 0, 100))
            .unwrap()
            .into_iter()
            .map(
                |row| match hub_contract::stored::decode_event(&row.payload).unwrap() {
                    DomainEvent::CommandRejected { command_id, .. } => command_id,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        assert_eq!(ids, [Some("c-big".into()), Some("c-utf8".into())]);
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
        run(&store, Ok(order_command("d1", 4, "open")));
        assert!(matches!(
            run(&store, Ok(order_command("d2", 1, "open"))),
            Applied::Rejected(r) if r.code == RejectCode::StaleVersion
        ));
        let stored = store
            .read_blocking(|c| pickup_orders::order(c, "P1"))
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
        let c = command("c2", "sku_upsert", "MILK-1L", 1, r#"{"code": "MILK-1L"}"#);
        assert!(
            matches!(run(&store, Ok(c)), Applied::Rejected(r) if r.code == RejectCode::InvalidBody)
        );
        let r = Rejection {
            command_id: None,
            kind: None,
            code: RejectCode::Malformed,
            reason: "not JSON".into(),
            fingerprint: None,
        };
        assert!(matches!(run(&store, Err(r)), Applied::Rejected(_)));
        assert_eq!(
            kinds(&store),
            ["command_rejected", "command_rejected", "command_rejected"]
        );
    }

    #[test]
    fn central_status_changes_reach_the_order_table_until_it_is_collected() {
        let (_d, store) = store();
        run(&store, Ok(order_command("o1", 1, "open")));
        run(&store, Ok(order_command("o2", 2, "on_hold")));
        let status = |store: &Store| {
            store
                .read_blocking(|c| pickup_orders::order(c, "P1"))
                .unwrap()
                .unwrap()
                .status
        };
        assert_eq!(status(&store), OrderStatus::OnHold);
        store
            .write_blocking(|c| {
                c.execute(
                    "UPDATE pickup_order SET status = 'collected', collected_at = 5, collected_by = 'st-1'",
                    [],
                )
                .map_err(outbox::sql(c))
            })
            .unwrap();
        match run(&store, Ok(order_command("o3", 3, "refunded"))) {
            Applied::Rejected(r) => {
                assert_eq!(r.code, RejectCode::Conflict);
                assert!(r.reason.contains("st-1"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(status(&store), OrderStatus::Collected { .. }));
        match run(&store, Ok(order_command("o4", 4, "collected"))) {
            Applied::Rejected(r) => assert_eq!(r.code, RejectCode::InvalidBody),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_partly_collected_order_is_not_changed_by_central() {
        let (_d, store) = store();
        run(&store, Ok(order_command("o1", 1, "open")));
        store
            .write_blocking(|c| {
                c.execute("UPDATE pickup_order SET status = 'partially_collected'", [])
                    .map_err(outbox::sql(c))
            })
            .unwrap();
        match run(&store, Ok(order_command("o2", 2, "cancelled"))) {
            Applied::Rejected(r) => {
                assert_eq!(r.code, RejectCode::Conflict);
                assert!(r.reason.contains("partly collected"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        let status = store
            .read_blocking(|c| pickup_orders::order(c, "P1"))
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(status, OrderStatus::PartiallyCollected);
    }

    #[test]
    fn manifests_amend_and_cancel_by_version_and_thresholds_reach_the_policy_table() {
        let (_d, store) = store();
        assert!(matches!(
            run(&store, Ok(manifest_command("m1", 1, false))),
            Applied::Applied { changed: true, .. }
        ));
        assert!(matches!(
            run(&store, Ok(manifest_command("m2", 1, false))),
            Applied::Applied { changed: false, .. }
        ));
        run(&store, Ok(manifest_command("m3", 3, true)));
        assert!(matches!(
            run(&store, Ok(manifest_command("m4", 2, false))),
            Applied::Rejected(r) if r.code == RejectCode::StaleVersion
        ));
        let cancelled: bool = store
            .read_blocking(|c| {
                c.query_row(
                    "SELECT cancelled FROM delivery_manifest WHERE delivery_id = 'D1'",
                    [],
                    |r| r.get(0),
                )
                .map_err(outbox::sql(c))
            })
            .unwrap();
        assert!(cancelled);

        let sku = command(
            "s1",
            "sku_upsert",
            "MILK-1L",
            1,
            r#"{"code": "MILK-1L", "name": "Milk", "unit": "piece", "version": 1,
                "thresholds": {"measure": "absolute", "yellow": 20, "orange": 10, "red": 5, "target": 40}}"#,
        );
        assert!(matches!(
            run(&store, Ok(sku)),
            Applied::Applied { changed: true, .. }
        ));
        let tiers = command(
            "t1",
            "alert_tiers",
            "site",
            2,
            r#"{"policies": {
                "MILK-1L": {"yellow": 3, "orange": 2, "red": 1, "target": 6},
                "EGGS-10": {"yellow": 4, "orange": 2, "red": 1, "target": 8}}}"#,
        );
        assert!(matches!(
            run(&store, Ok(tiers)),
            Applied::Applied { changed: true, .. }
        ));
        let bad = command(
            "t2",
            "sku_thresholds",
            "MILK-1L",
            3,
            r#"{"yellow": 1, "orange": 2, "red": 3, "target": 6}"#,
        );
        assert!(matches!(
            run(&store, Ok(bad)),
            Applied::Rejected(r) if r.code == RejectCode::InvalidBody
        ));
        let versions: Vec<(String, i64)> = store
            .read_blocking(|c| {
                let mut st = c
                    .prepare("SELECT sku, version FROM sku_tier_policy ORDER BY sku")
                    .map_err(outbox::sql(c))?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect())
                    .map_err(outbox::sql(c))
            })
            .unwrap();
        assert_eq!(versions, [("EGGS-10".into(), 2), ("MILK-1L".into(), 2)]);
    }
    /// 2026-04-01 10:00 in Shanghai.
    const APRIL_1: Timestamp = Timestamp(1_775_008_800_000);

    fn signals_command(id: &str, signals: &str) -> Command {
        command(
            id,
            "demand_signals",
            "week-14",
            1,
            &format!(r#"{{"signals":[{signals}]}}"#),
        )
    }

    fn run_at(store: &Store, decoded: Command, now: Timestamp) -> Applied {
        let site = SiteId::new("s1").unwrap();
        store
            .write_blocking(move |c| apply(c, &site, chrono_tz::Asia::Shanghai, Ok(decoded), now))
            .unwrap()
    }

    #[test]
    fn demand_signals_are_validated_stored_and_refused_with_every_reason() {
        let (_d, store) = store();
        let dairy = command(
            "c1",
            "sku_upsert",
            "MILK-1L",
            1,
            r#"{"code": "MILK-1L", "name": "Milk", "unit": "piece", "version": 1, "category": "dairy"}"#,
        );
        assert!(matches!(run(&store, Ok(dairy)), Applied::Applied { .. }));
        // A signal for a category no SKU is in would reach none: refused with the reason.
        let nowhere = signals_command(
            "s-nowhere",
            r#"{"id":"f1","kind":"promotion","start":"2026-04-02","end":"2026-04-04","multiplier":1.5,"category":"frozen"}"#,
        );
        match run_at(&store, nowhere, APRIL_1) {
            Applied::Rejected(r) => assert!(
                r.reason.contains("no SKU is in category 'frozen'"),
                "{}",
                r.reason
            ),
            other => panic!("{other:?}"),
        }
        // Every problem at once: an unknown SKU, an absurd multiplier, a signal that ended
        // before the site's day, two holidays on the same SKU and day.
        let bad = signals_command(
            "s-bad",
            r#"{"id":"h1","kind":"holiday","start":"2026-04-03","end":"2026-04-05","multiplier":2.5,"skus":["MILK-1L","GHOST"]},
               {"id":"h2","kind":"holiday","start":"2026-04-05","end":"2026-04-06","multiplier":1.5,"skus":["MILK-1L"]},
               {"id":"p1","kind":"promotion","start":"2026-04-02","end":"2026-04-04","multiplier":60,"reserve_fraction":0.2},
               {"id":"w1","kind":"weather","start":"2026-03-20","end":"2026-03-31","multiplier":0.8}"#,
        );
        let reason = match run_at(&store, bad, APRIL_1) {
            Applied::Rejected(r) => {
                assert_eq!(r.code, RejectCode::InvalidBody);
                r.reason
            }
            other => panic!("{other:?}"),
        };
        for expected in [
            "signal h1: unknown SKU(s) GHOST",
            "signal p1: multiplier 60 is absurd",
            "signal w1: ends 2026-03-31, before the as-of date 2026-04-01",
            "signals h1 and h2 are both holiday signals for SKU MILK-1L on 2026-04-05",
        ] {
            assert!(
                reason.contains(expected),
                "{expected:?} missing in {reason}"
            );
        }
        assert!(
            store
                .read_blocking(crate::store::demand::signals)
                .unwrap()
                .is_empty()
        );

        // A running signal (started yesterday) and a future one are accepted and stored.
        let good = signals_command(
            "s-good",
            r#"{"id":"h1","kind":"holiday","start":"2026-03-31","end":"2026-04-05","multiplier":2.5,"skus":["MILK-1L"]},
               {"id":"p1","kind":"promotion","start":"2026-04-02","end":"2026-04-04","multiplier":1.6,"reserve_fraction":0.2,"category":"dairy"}"#,
        );
        assert!(matches!(
            run_at(&store, good, APRIL_1),
            Applied::Applied { changed: true, .. }
        ));
        let stored = store.read_blocking(crate::store::demand::signals).unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].id, "h1");
        assert_eq!(stored[1].reserve_fraction(), 0.2);

        // Overlapping a stored, running holiday is refused; resending h1 itself replaces it.
        let overlap = signals_command(
            "s-overlap",
            r#"{"id":"h3","kind":"holiday","start":"2026-04-04","end":"2026-04-04","multiplier":1.2}"#,
        );
        match run_at(&store, overlap, APRIL_1) {
            Applied::Rejected(r) => assert!(
                r.reason.contains("h1") && r.reason.contains("h3") && r.reason.contains("(stored)"),
                "{}",
                r.reason
            ),
            other => panic!("{other:?}"),
        }
        let replace = signals_command(
            "s-replace",
            r#"{"id":"h1","kind":"holiday","start":"2026-04-03","end":"2026-04-05","multiplier":3.0,"skus":["MILK-1L"]}"#,
        );
        assert!(matches!(
            run_at(&store, replace, APRIL_1),
            Applied::Applied { .. }
        ));
        let stored = store.read_blocking(crate::store::demand::signals).unwrap();
        assert_eq!(stored.len(), 2);
        assert!(stored.iter().any(|s| s.id == "h1" && s.multiplier == 3.0));
    }

    #[test]
    fn a_demand_signals_body_of_the_wrong_shape_is_refused_with_its_reason() {
        let (_d, store) = store();
        for (i, (body, expected)) in [
            (r#"{"signals":[]}"#, "is empty"),
            (
                r#"{"signals":[{"id":"x","kind":"festival","start":"2026-04-03","end":"2026-04-05","multiplier":2}]}"#,
                "kind 'festival' must be holiday, promotion or weather",
            ),
            (
                r#"{"signals":[{"id":"x","kind":"holiday","start":"2026-04-03","end":"2026-04-05","multiplier":2,"skus":["A"],"category":"c"}]}"#,
                "skus or category, not both",
            ),
            (
                r#"{"signals":[{"id":"x","kind":"weather","start":"2026-04-03","end":"2026-04-05","multiplier":2,"reserve_fraction":0.1}]}"#,
                "only a promotion has a reserve_fraction",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let c = command(&format!("s-{i}"), "demand_signals", "k", 1, body);
            match run_at(&store, c, APRIL_1) {
                Applied::Rejected(r) => {
                    assert_eq!(r.code, RejectCode::InvalidBody);
                    assert!(r.reason.contains(expected), "{expected:?} in {}", r.reason);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
