//! Replenishment from the demand forecast against a real SQLite file: the site's own journal
//! (handovers as demand, a stock-out day censored) drives the tier and the requested quantity,
//! the request carries the forecast and its reasoning upstream, still once per episode; a SKU
//! with a short history states its fallback rule; central's demand signals raise the forecast.

use chrono::{Datelike, NaiveDate, TimeZone};
use hub::store::alert_book::StockRules;
use hub::store::{Store, StoreError, StoreOptions, ledger, outbox, sku as sku_store};
use hub_core::alerts::{Measure, StockAction, Tier, TierPolicy};
use hub_core::replenishment::{DemandBasis, ReplenishmentReasoning, ReplenishmentSettings};
use hub_core::{
    BatchKey, DomainEvent, Movement, MovementId, MovementKind, Sku, SkuCode, StockUnit, Timestamp,
};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn at(day: NaiveDate, hour: u32) -> Timestamp {
    Timestamp(
        ZONE.from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
            .unwrap()
            .timestamp_millis(),
    )
}

fn policy() -> TierPolicy {
    TierPolicy {
        measure: Measure::DaysOfCover,
        yellow: 3.0,
        orange: 2.0,
        red: 1.0,
        hysteresis: 0.15,
        replenish_at: Tier::Red,
        target: 5.0,
        re_request_after_ms: 4 * 3_600_000,
    }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("hub.sqlite"),
        "s1",
        &StoreOptions::default(),
    )
    .unwrap();
    (dir, store)
}

struct Journal {
    sku: SkuCode,
    n: usize,
    on_hand: i64,
    moves: Vec<Movement>,
}

impl Journal {
    fn new(code: &str) -> Journal {
        Journal {
            sku: SkuCode::new(code).unwrap(),
            n: 0,
            on_hand: 0,
            moves: vec![],
        }
    }

    fn push(
        &mut self,
        kind: MovementKind,
        quantity: i64,
        when: Timestamp,
        expiry: Option<NaiveDate>,
    ) {
        self.n += 1;
        self.on_hand += match kind {
            MovementKind::Receipt => quantity,
            _ => -quantity,
        };
        self.moves.push(Movement {
            id: MovementId::new(format!("{}-{}", self.sku, self.n)).unwrap(),
            sku: self.sku.clone(),
            // Receipts bring a lot; handovers here name none (the SKU's balance is what counts).
            batch: expiry.map(|e| BatchKey::new(format!("L{}", self.n), Some(e)).unwrap()),
            kind,
            quantity,
            reason: "test".into(),
            reference: "test".into(),
            at: when,
        });
    }
}

/// Weekdays sell 10, weekends 30; each morning's delivery brings the stock back to 40 (lots
/// keep 3 days); on `stock_out_day` everything left is handed over by noon.
fn weekly_journal(code: &str, first: NaiveDate, days: u64, stock_out_day: Option<u64>) -> Journal {
    let mut j = Journal::new(code);
    for d in 0..days {
        let day = first + chrono::Days::new(d);
        let top_up = 40 - j.on_hand;
        if top_up > 0 {
            j.push(
                MovementKind::Receipt,
                top_up,
                at(day, 7),
                Some(day + chrono::Days::new(3)),
            );
        }
        let sold = if Some(d) == stock_out_day {
            j.on_hand
        } else if day.weekday().number_from_monday() >= 6 {
            30
        } else {
            10
        };
        j.push(MovementKind::Issue, sold, at(day, 12), None);
    }
    j
}

fn seed(store: &Store, journal: &Journal) {
    let moves = journal.moves.clone();
    let sku = Sku::new(
        journal.sku.clone(),
        journal.sku.to_string(),
        StockUnit::Piece,
    );
    store
        .write_blocking(move |c| {
            sku_store::upsert(c, &sku, Timestamp(0))?;
            for m in &moves {
                ledger::record(c, m).map_err(|e| match e {
                    ledger::RecordError::Store(e) => e,
                    other => panic!("{other}"),
                })?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn evaluate(store: &Store, code: &str, now: Timestamp) -> Vec<StockAction> {
    let sku = SkuCode::new(code).unwrap();
    store
        .write_blocking(move |c| {
            let policy = policy();
            let rules = StockRules {
                default_policy: &policy,
                timezone: ZONE,
                replenishment: ReplenishmentSettings::default(),
            };
            hub::store::alert_book::evaluate_sku(c, &sku, &rules, now)
        })
        .unwrap()
}

/// The `replenishment_requested` events in the outbox, as central reads them.
fn requests(store: &Store) -> Vec<(i64, Option<ReplenishmentReasoning>)> {
    let rows = store
        .read_blocking(|c| outbox::pending(c, 0, 10_000))
        .unwrap();
    rows.into_iter()
        .filter(|r| r.kind == "replenishment_requested")
        .map(
            |r| match hub_contract::stored::decode_event(&r.payload).unwrap() {
                DomainEvent::ReplenishmentRequested {
                    suggested_quantity,
                    reasoning,
                    ..
                } => (suggested_quantity, reasoning.map(|r| *r)),
                other => panic!("{other:?}"),
            },
        )
        .collect()
}

#[test]
fn the_request_is_the_forecasts_order_up_to_level_with_its_reasoning_once_per_episode() {
    let (_dir, store) = store();
    // 39 days from Monday 2026-03-02, a stock-out on day 20; today is Friday 2026-04-10 and
    // 5 are left this morning.
    let first = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let mut journal = weekly_journal("SPINACH", first, 39, Some(20));
    let today = first + chrono::Days::new(39);
    assert_eq!(today.weekday(), chrono::Weekday::Fri);
    journal.push(MovementKind::Issue, journal.on_hand - 5, at(today, 8), None);
    seed(&store, &journal);

    let actions = evaluate(&store, "SPINACH", at(today, 9));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, StockAction::TierChanged { to: Tier::Red, .. })),
        "{actions:?}"
    );
    let sent = requests(&store);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (quantity, reasoning) = &sent[0];
    let r = reasoning
        .as_ref()
        .expect("the request carries its reasoning");
    assert_eq!(r.basis, DemandBasis::Forecast);
    assert_eq!(r.fallback, None, "{r:?}");
    assert_eq!(r.forecast_start, today);
    assert_eq!(r.daily_forecast.len(), 14);
    // Friday sells about 10, Saturday and Sunday about 30: the forecast knows the week.
    assert!((7.0..14.0).contains(&r.daily_forecast[0]), "{r:?}");
    assert!((22.0..40.0).contains(&r.daily_forecast[1]), "{r:?}");
    assert_eq!(r.position, 5.0);
    assert!(r.safety_stock > 0.0);
    assert_eq!(*quantity, (r.order_up_to - r.position - 1e-9).ceil() as i64);
    // Lead time 0 + one review day: today's demand and a safety stock, not five days of the
    // trailing average (about 74 units).
    assert!((4..20).contains(quantity), "{quantity}");
    assert_eq!(r.shelf_life_days, Some(3));
    assert_eq!(
        r.history_days, 39,
        "every day since the first movement: {r:?}"
    );
    assert!(r.censored_days >= 1, "the stock-out day is censored: {r:?}");

    // Still red an hour later after another handover: no second request in the episode.
    seed_more(&store, "SPINACH", 1, at(today, 10));
    evaluate(&store, "SPINACH", at(today, 10));
    assert_eq!(requests(&store).len(), 1);
}

fn seed_more(store: &Store, code: &str, quantity: i64, when: Timestamp) {
    let m = Movement {
        id: MovementId::new(format!("{code}-extra-{}", when.millis())).unwrap(),
        sku: SkuCode::new(code).unwrap(),
        batch: None,
        kind: MovementKind::Issue,
        quantity,
        reason: "test".into(),
        reference: "test".into(),
        at: when,
    };
    store
        .write_blocking(move |c| {
            ledger::record(c, &m).map_err(|e| match e {
                ledger::RecordError::Store(e) => e,
                other => panic!("{other}"),
            })
        })
        .unwrap();
}

#[test]
fn a_short_history_states_its_fallback_rule_in_the_request() {
    let (_dir, store) = store();
    let first = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let mut journal = weekly_journal("NEW-SKU", first, 5, None);
    let today = first + chrono::Days::new(5);
    journal.push(MovementKind::Issue, journal.on_hand, at(today, 8), None);
    seed(&store, &journal);
    evaluate(&store, "NEW-SKU", at(today, 9));
    let sent = requests(&store);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let r = sent[0].1.as_ref().unwrap();
    assert_eq!(r.basis, DemandBasis::Forecast);
    assert_eq!(r.method, "history_mean");
    let rule = r.fallback.as_deref().expect("the fallback is stated");
    assert!(
        rule.contains("5 usable days of history, 14 needed"),
        "{rule}"
    );
    assert!(
        r.daily_forecast.iter().all(|d| *d > 0.0),
        "never silently zero: {r:?}"
    );
    assert!(sent[0].0 >= 10, "{sent:?}");
}

/// Applies a command as central sends it, through the downlink's decoder and `commands::apply`.
fn central(store: &Store, json: serde_json::Value, now: Timestamp) -> hub::commands::Applied {
    let bytes = serde_json::to_vec(&json).unwrap();
    let decoded = hub_contract::decode_command(&bytes, usize::MAX);
    store
        .write_blocking(move |c| {
            hub::commands::apply(c, &hub_core::SiteId::new("s1").unwrap(), ZONE, decoded, now)
        })
        .unwrap()
}

#[test]
fn a_demand_signal_scoped_to_a_category_reaches_the_skus_of_that_category() {
    let (_dir, store) = store();
    let first = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let today = first + chrono::Days::new(39);
    let now = at(today, 9);
    // Two SKUs with the same history, both down to 5 this morning: YOGURT is dairy, CRESS
    // fresh (the categories come with their master data, version 2).
    for (code, category) in [("YOGURT", "dairy"), ("CRESS", "fresh")] {
        let mut journal = weekly_journal(code, first, 39, None);
        journal.push(MovementKind::Issue, journal.on_hand - 5, at(today, 8), None);
        seed(&store, &journal);
        let applied = central(
            &store,
            serde_json::json!({"v": 1, "id": format!("sku-{code}"), "site": "s1",
                "kind": "sku_upsert", "key": code, "version": 2,
                "body": {"code": code, "name": code, "unit": "piece", "version": 2,
                         "category": category}}),
            now,
        );
        assert!(
            matches!(
                applied,
                hub::commands::Applied::Applied { changed: true, .. }
            ),
            "{applied:?}"
        );
    }
    // A signal for a category no SKU is in is refused with the reason; nothing is stored.
    let frozen = central(
        &store,
        serde_json::json!({"v": 1, "id": "sig-frozen", "site": "s1", "kind": "demand_signals",
            "key": "w15", "version": 1, "body": {"signals": [{"id": "f1", "kind": "promotion",
            "start": today.to_string(), "end": (today + chrono::Days::new(6)).to_string(),
            "multiplier": 2.0, "category": "frozen"}]}}),
        now,
    );
    match frozen {
        hub::commands::Applied::Rejected(r) => assert!(
            r.reason.contains("no SKU is in category 'frozen'"),
            "{}",
            r.reason
        ),
        other => panic!("{other:?}"),
    }
    // A dairy promotion doubling demand for the week.
    let dairy = central(
        &store,
        serde_json::json!({"v": 1, "id": "sig-dairy", "site": "s1", "kind": "demand_signals",
            "key": "w15", "version": 1, "body": {"signals": [{"id": "p1", "kind": "promotion",
            "start": today.to_string(), "end": (today + chrono::Days::new(6)).to_string(),
            "multiplier": 2.0, "category": "dairy"}]}}),
        now,
    );
    assert!(
        matches!(dairy, hub::commands::Applied::Applied { .. }),
        "{dairy:?}"
    );
    let listed = store
        .read_blocking(|c| sku_store::in_category(c, "dairy"))
        .unwrap();
    assert_eq!(listed, ["YOGURT"]);

    evaluate(&store, "YOGURT", now);
    evaluate(&store, "CRESS", now);
    let sent = requests(&store);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let forecast = |i: usize| sent[i].1.as_ref().unwrap().daily_forecast[0];
    let (yogurt, cress) = (forecast(0), forecast(1));
    assert!(cress > 0.0, "{sent:?}");
    assert!(
        (yogurt / cress - 2.0).abs() < 0.05,
        "the dairy promotion doubles YOGURT's forecast only: {yogurt} vs {cress}"
    );
    assert!(sent[0].0 > sent[1].0, "{sent:?}");
}
