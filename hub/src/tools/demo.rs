//! `hub demo`: a whole site's day on an embedded configuration, with no external service.
//!
//! The scenario goes through the same store operations a real site uses — SKU master data
//! arriving, deliveries received, orders handed over, a loss written off, a retried request,
//! a refused over-issue — then verifies the ledger and prints what happened.

use crate::config::Config;
use crate::store::ledger::{self as ledger_store, RecordError, Recorded, SkuStock, VerifyReport};
use crate::store::{Store, outbox, sku as sku_store};
use hub_core::{BatchKey, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp};
use std::path::Path;

/// The configuration the demo runs on, shipped in the binary.
pub const DEMO_CONFIG: &str = include_str!("../../../config/demo.toml");

/// Loads the embedded demo config with its data directory replaced by `data_dir`.
pub fn demo_config(data_dir: &Path) -> anyhow::Result<Config> {
    let mut config = Config::parse(DEMO_CONFIG, data_dir).map_err(|problems| {
        anyhow::anyhow!(
            "embedded demo config is invalid: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    config.store.data_dir = data_dir.to_owned();
    Ok(config)
}

/// One line of the scenario and how it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub what: String,
    pub outcome: String,
}

/// What the demo did and what the site looks like afterwards.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub site: String,
    pub database: String,
    pub steps: Vec<Step>,
    pub stock: Vec<SkuStock>,
    pub outbox: outbox::OutboxStats,
    pub verify: VerifyReport,
    /// What the embedded central consumer received over MQTT (filled in by the caller).
    pub central: Option<central::CentralReport>,
}

fn sku(code: &str, name: &str, unit: StockUnit) -> Sku {
    Sku {
        code: SkuCode::new(code).expect("demo SKU codes are valid"),
        name: name.into(),
        unit,
        gtins: vec![],
        allow_negative: false,
        check_items_at_handover: false,
        version: 1,
    }
}

struct MoveSpec<'a> {
    id: &'a str,
    sku: &'a str,
    lot: &'a str,
    /// Days from the demo's "today" to the lot's expiry.
    expires_in_days: u64,
    kind: MovementKind,
    quantity: i64,
    reason: &'a str,
    reference: &'a str,
}

fn movement(spec: &MoveSpec<'_>, today: chrono::NaiveDate, at: Timestamp) -> Movement {
    let expiry = today + chrono::Days::new(spec.expires_in_days);
    Movement {
        id: MovementId::new(spec.id).expect("demo ids are valid"),
        sku: SkuCode::new(spec.sku).expect("demo SKU codes are valid"),
        batch: Some(BatchKey::new(spec.lot, Some(expiry)).expect("demo lots are valid")),
        kind: spec.kind,
        quantity: spec.quantity,
        reason: spec.reason.into(),
        reference: spec.reference.into(),
        at,
    }
}

/// Shelf lives of the scenario's lots, in days from the demo's "today". Every date the demo
/// shows is relative to the one `now` it is given, so it tells the same story on any day.
/// The older orange lot outlives the one delivered through the devices
/// ([`crate::tools::demo_devices::DELIVERED_LOT_EXPIRES_IN`]), so first-expiry-first-out picks the
/// new lot first.
const ORANGE_A_EXPIRES_IN: u64 = 20;
const MILK_EXPIRES_IN: u64 = 5;
const CABBAGE_EXPIRES_IN: u64 = 4;

/// Plays the scenario against an open store.
pub async fn play(
    store: &Store,
    site: &str,
    timezone: chrono_tz::Tz,
    now: Timestamp,
) -> anyhow::Result<DemoSummary> {
    let mut steps = Vec::new();
    let today = crate::clock::site_date(timezone, now);

    let master = vec![
        sku("ORANGE-5KG", "Navel oranges, 5 kg box", StockUnit::Piece),
        sku("MILK-1L", "Fresh milk 1 L", StockUnit::Piece),
        sku("CABBAGE-LOOSE", "Head cabbage, by weight", StockUnit::Gram),
    ];
    let count = master.len();
    store
        .write(move |c| {
            for s in &master {
                sku_store::upsert(c, s, now)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .await?;
    steps.push(Step {
        what: format!("SKU master data arrives ({count} SKUs)"),
        outcome: "stored".into(),
    });

    use MovementKind::*;
    let plan = [
        MoveSpec {
            id: "rcv-D1001-1",
            sku: "ORANGE-5KG",
            lot: "OR2611A",
            expires_in_days: ORANGE_A_EXPIRES_IN,
            kind: Receipt,
            quantity: 40,
            reason: "",
            reference: "delivery D1001",
        },
        MoveSpec {
            id: "rcv-D1001-2",
            sku: "MILK-1L",
            lot: "MK1124",
            expires_in_days: MILK_EXPIRES_IN,
            kind: Receipt,
            quantity: 60,
            reason: "",
            reference: "delivery D1001",
        },
        MoveSpec {
            id: "rcv-D1001-3",
            sku: "CABBAGE-LOOSE",
            lot: "CB1124",
            expires_in_days: CABBAGE_EXPIRES_IN,
            kind: Receipt,
            quantity: 25_000,
            reason: "",
            reference: "delivery D1001",
        },
        MoveSpec {
            id: "ho-P5001-1",
            sku: "ORANGE-5KG",
            lot: "OR2611A",
            expires_in_days: ORANGE_A_EXPIRES_IN,
            kind: Issue,
            quantity: 3,
            reason: "",
            reference: "pickup order P5001",
        },
        MoveSpec {
            id: "ho-P5002-1",
            sku: "MILK-1L",
            lot: "MK1124",
            expires_in_days: MILK_EXPIRES_IN,
            kind: Issue,
            quantity: 12,
            reason: "",
            reference: "pickup order P5002",
        },
        MoveSpec {
            id: "ho-P5003-1",
            sku: "CABBAGE-LOOSE",
            lot: "CB1124",
            expires_in_days: CABBAGE_EXPIRES_IN,
            kind: Issue,
            quantity: 1_850,
            reason: "",
            reference: "pickup order P5003",
        },
        MoveSpec {
            id: "loss-1124-1",
            sku: "MILK-1L",
            lot: "MK1124",
            expires_in_days: MILK_EXPIRES_IN,
            kind: Loss,
            quantity: 2,
            reason: "leaking cartons",
            reference: "daily check",
        },
        MoveSpec {
            id: "ret-P5001-1",
            sku: "ORANGE-5KG",
            lot: "OR2611A",
            expires_in_days: ORANGE_A_EXPIRES_IN,
            kind: Return,
            quantity: 1,
            reason: "customer changed mind",
            reference: "pickup order P5001",
        },
        // A station retries a handover whose answer it never saw: applied once.
        MoveSpec {
            id: "ho-P5002-1",
            sku: "MILK-1L",
            lot: "MK1124",
            expires_in_days: MILK_EXPIRES_IN,
            kind: Issue,
            quantity: 12,
            reason: "",
            reference: "pickup order P5002",
        },
        // More than is on hand: refused, nothing written.
        MoveSpec {
            id: "ho-P5004-1",
            sku: "ORANGE-5KG",
            lot: "OR2611A",
            expires_in_days: ORANGE_A_EXPIRES_IN,
            kind: Issue,
            quantity: 100,
            reason: "",
            reference: "pickup order P5004",
        },
    ];
    for (i, spec) in plan.iter().enumerate() {
        let m = movement(spec, today, now.plus_millis(i as i64 * 1000));
        let what = format!(
            "{} {} x{} ({})",
            spec.kind.as_str(),
            spec.sku,
            spec.quantity,
            spec.reference
        );
        let outcome = match store.write(move |c| ledger_store::record(c, &m)).await {
            Ok(Recorded::Applied {
                sku_balance_after,
                outbox_seq,
                ..
            }) => {
                format!("applied; on hand {sku_balance_after}; event #{outbox_seq}")
            }
            Ok(Recorded::Duplicate) => "duplicate request; already applied once".into(),
            Err(RecordError::Refused(e)) => format!("refused: {e}"),
            Err(RecordError::Store(e)) => return Err(e.into()),
        };
        steps.push(Step { what, outcome });
    }

    let (stock, outbox, verify) = store
        .read(|c| {
            Ok::<_, crate::store::StoreError>((
                ledger_store::balances(c)?,
                outbox::stats(c)?,
                ledger_store::verify(c)?,
            ))
        })
        .await?;
    Ok(DemoSummary {
        site: site.to_owned(),
        database: store.path().display().to_string(),
        steps,
        stock,
        outbox,
        verify,
        central: None,
    })
}

/// Sends everything the scenario recorded through the real uplink to a central consumer on an
/// embedded broker (rumqttd), and returns what central holds once every event arrived.
pub async fn sync_to_embedded_central(
    store: &Store,
    config: &Config,
    work_dir: &Path,
) -> anyhow::Result<central::CentralReport> {
    use crate::sync::uplink;
    use hub_mqtt::{BrokerAddress, Connection};
    let broker = hub_mqtt::brokers::EmbeddedBroker::start()?;
    let address = BrokerAddress::loopback(broker.port());
    let central = central::CentralHandle::start(central::CentralOptions::new(
        Connection::plain(address.clone(), "demo-central"),
        work_dir.join("central.sqlite"),
    ))?;
    central
        .wait_ready(
            &Connection::plain(address.clone(), "demo-probe"),
            std::time::Duration::from_secs(20),
        )
        .await?;
    let last = store.read(outbox::stats).await?.last_seq;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let settings = uplink::UplinkSettings::from_defaults(Connection::plain(
        address,
        format!("hub-{}", config.site.id),
    ));
    let task = tokio::spawn(uplink::run(
        config.site.id.clone(),
        settings,
        store.clone(),
        shutdown.clone(),
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let site = config.site.id.to_string();
    let report = loop {
        let report = central.report()?;
        if report
            .sites
            .iter()
            .any(|s| s.site == site && s.contiguous_seq >= last)
        {
            break report;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the embedded central did not receive every event within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    shutdown.cancel();
    let _ = task.await;
    central.stop().await?;
    let mut report = report;
    report.sites.retain(|s| s.site == site);
    Ok(report)
}

impl std::fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Demo site {} — database {}", self.site, self.database)?;
        writeln!(f)?;
        writeln!(f, "Scenario:")?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {:>2}. {:<55} {}", i + 1, step.what, step.outcome)?;
        }
        writeln!(f)?;
        write!(f, "{}", crate::cli_output::StockTable(&self.stock))?;
        writeln!(f)?;
        writeln!(
            f,
            "Outbox: {} events recorded for central (last sequence #{}), {} waiting for the uplink",
            self.outbox.total, self.outbox.last_seq, self.outbox.undelivered
        )?;
        if let Some(central) = &self.central {
            writeln!(
                f,
                "Central (reference consumer on an embedded MQTT broker) received:"
            )?;
            write!(f, "{central}")?;
        }
        if self.verify.ok() {
            writeln!(
                f,
                "Ledger verified: {} movements, {} SKUs, {} batches — every balance matches its journal",
                self.verify.movements, self.verify.skus_checked, self.verify.batches_checked
            )
        } else {
            writeln!(f, "LEDGER MISMATCH:")?;
            self.verify
                .problems
                .iter()
                .try_for_each(|p| writeln!(f, "  - {p}"))
        }
    }
}

/// Reorder points the demo judges its stock by (a real site gets them from central).
const DEMO_REORDER_POINTS: &[(&str, i64)] = &[
    ("ORANGE-5KG", 40),
    ("MILK-1L", 100),
    ("CABBAGE-LOOSE", 20_000),
];

/// The tier of an alert for `on_hand` against a reorder point: red when out of stock, orange
/// below half of it, yellow below it.
fn demo_tier(on_hand: i64, reorder_point: i64) -> Option<crate::status::AlertTier> {
    use crate::status::AlertTier;
    if on_hand <= 0 {
        Some(AlertTier::Red)
    } else if on_hand * 2 < reorder_point {
        Some(AlertTier::Orange)
    } else if on_hand < reorder_point {
        Some(AlertTier::Yellow)
    } else {
        None
    }
}

/// A status board for `hub demo --keep-running`: simulated devices, no uplink, and stock alerts
/// computed from the demo's real balances, so the status page has something to show.
pub fn demo_board(summary: &DemoSummary, now: Timestamp) -> crate::status::StatusBoard {
    use crate::status::{Alert, Device, StatusBoard, Uplink, UplinkState};
    let board = StatusBoard::new();
    let minutes_ago = |m: i64| Timestamp(now.millis() - m * 60_000);
    board.set_uplink(
        Uplink::new(UplinkState::NotConfigured, now).with_detail("demo: no broker configured"),
    );
    board.set_device(
        Device::online("scale-1", "scale", "25.000 kg stable", minutes_ago(0))
            .with_detail("simulated: /dev/serial/by-id/usb-demo-scale-if00-port0"),
    );
    board.set_device(
        Device::online(
            "scanner-1",
            "scanner",
            "(01)06901234567892(10)OR2611A",
            minutes_ago(1),
        )
        .with_detail("simulated: /dev/serial/by-id/usb-demo-scanner-if00"),
    );
    board.set_device(
        Device::offline("camera-1", "camera", minutes_ago(12))
            .with_detail("simulated: no camera attached to the demo"),
    );
    let mut alerts = Vec::new();
    for stock in &summary.stock {
        let Some((_, point)) = DEMO_REORDER_POINTS.iter().find(|(s, _)| *s == stock.sku) else {
            continue;
        };
        if let Some(tier) = demo_tier(stock.on_hand, *point) {
            alerts.push(
                Alert::new(
                    tier,
                    &stock.sku,
                    format!(
                        "{} {} on hand, reorder point {point}",
                        stock.on_hand, stock.unit
                    ),
                    now,
                )
                .with_kind("stock_low"),
            );
        }
    }
    board.set_alerts(alerts);
    board
}
