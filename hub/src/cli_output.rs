//! Tables and summaries for people, shared by several commands.

use crate::store::ledger::SkuStock;
use std::fmt;

/// Stock balances per SKU with their batches.
pub struct StockTable<'a>(pub &'a [SkuStock]);

impl fmt::Display for StockTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:<32} {:>10} {:<5}",
            "SKU", "NAME", "ON HAND", "UNIT"
        )?;
        for s in self.0 {
            writeln!(
                f,
                "{:<16} {:<32} {:>10} {:<5}",
                s.sku,
                truncate(&s.name, 32),
                s.on_hand,
                s.unit
            )?;
            for b in &s.batches {
                let expiry = b.expiry.as_deref().unwrap_or("-");
                writeln!(
                    f,
                    "  lot {:<12} expires {:<18} {:>10}",
                    b.lot, expiry, b.on_hand
                )?;
            }
        }
        if self.0.is_empty() {
            writeln!(
                f,
                "(no SKUs yet: master data arrives from the central system)"
            )?;
        }
        Ok(())
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    }
}

/// One receiving decision with its reasons and evidence.
pub struct DecisionView<'a>(pub &'a hub_core::event::ReceivingDecision);

impl fmt::Display for DecisionView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        writeln!(
            f,
            "delivery {} line {} {} lot {}: {} (accepted {}, rejected {}, held {}) by {}",
            d.delivery_id,
            d.line_no,
            d.sku,
            d.lot,
            d.decision.outcome.as_str().to_uppercase(),
            d.decision.accepted,
            d.decision.rejected,
            d.decision.held,
            if d.staff.is_empty() { "-" } else { &d.staff }
        )?;
        for r in &d.decision.reasons {
            writeln!(
                f,
                "    reason: {}",
                serde_json::to_string(r).unwrap_or_default()
            )?;
        }
        if let Some(w) = d.weight_readings_g.last() {
            writeln!(
                f,
                "    weight: {w} g ({} reading(s))",
                d.weight_readings_g.len()
            )?;
        }
        for p in &d.photos {
            let top = p
                .top_k
                .first()
                .map(|t| format!("{} {:.2}", t.label, t.probability))
                .unwrap_or_default();
            writeln!(
                f,
                "    photo {}…: {:?} ({top}; {} on {})",
                &p.photo_sha256[..12.min(p.photo_sha256.len())],
                p.verdict,
                p.model_name,
                p.backend
            )?;
        }
        if !d.bound_codes.is_empty() {
            writeln!(f, "    {} trace code(s) bound", d.bound_codes.len())?;
        }
        if !d.product_scans.is_empty() {
            writeln!(
                f,
                "    {} product scan(s) counted (no serial: not bound)",
                d.product_scans.len()
            )?;
        }
        for (code, flag) in &d.flagged_codes {
            writeln!(
                f,
                "    FLAGGED {code}: {} ({})",
                flag.describe(),
                flag.code()
            )?;
        }
        Ok(())
    }
}

/// A sentence for staff about a scan at a receiving station.
pub fn describe_scan(outcome: &crate::workflows::receiving::ScanOutcome) -> String {
    use crate::store::deliveries::BindOutcome;
    use crate::workflows::receiving::ScanOutcome;
    match outcome {
        ScanOutcome::LineSelected(s) => format!(
            "delivery {} line {} selected: {} lot {}",
            s.delivery_id, s.line_no, s.sku, s.lot
        ),
        ScanOutcome::Item(BindOutcome::Bound {
            delivery_id,
            line_no,
            count,
        }) => {
            format!("bound to delivery {delivery_id} line {line_no} ({count} item(s) so far)")
        }
        ScanOutcome::Item(BindOutcome::Counted {
            delivery_id,
            line_no,
            count,
        }) => format!(
            "product scan counted on delivery {delivery_id} line {line_no} ({count} item(s) so far; no serial, so no trace code bound)"
        ),
        ScanOutcome::Item(BindOutcome::Flagged {
            delivery_id,
            line_no,
            flag,
        }) => format!(
            "FLAGGED on delivery {delivery_id} line {line_no}: {} ({}) — set the item aside",
            flag.describe(),
            flag.code()
        ),
    }
}

/// One item's trace for people: where it came from, how it was accepted, where it went, in
/// the catalogue's words and the site's time zone.
pub struct ItemTraceView<'a> {
    pub trace: &'a crate::store::trace::ItemTrace,
    pub lang: crate::catalogue::Lang,
    pub zone: chrono_tz::Tz,
}

/// A trace's RFC 3339 time as the site's local date and time (the text itself if unreadable).
fn local_at(at: &str, zone: chrono_tz::Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| crate::catalogue::local_date_time(hub_core::Timestamp(t.timestamp_millis()), zone))
        .unwrap_or_else(|_| at.to_owned())
}

/// An item's or movement's stored word in `lang` (the stored word when the catalogue has none).
fn stored_word(prefix: &str, word: &str, lang: crate::catalogue::Lang) -> String {
    let key = format!("{prefix}.{word}");
    if crate::catalogue::has(&key) {
        crate::catalogue::text(&key, lang).to_owned()
    } else {
        word.to_owned()
    }
}

/// A movement's stored reference (`delivery D line N`, `pickup order P`, written by the
/// workflows in English) in `lang`; any other reference as stored.
fn reference_words(reference: &str, lang: crate::catalogue::Lang) -> String {
    if lang == crate::catalogue::Lang::En {
        return reference.to_owned();
    }
    if let Some(rest) = reference.strip_prefix("delivery ") {
        return match rest.split_once(" line ") {
            Some((delivery, line)) => format!("到货单 {delivery} 第 {line} 行"),
            None => format!("到货单 {rest}"),
        };
    }
    if let Some(order) = reference.strip_prefix("pickup order ") {
        return format!("取货单 {order}");
    }
    reference.to_owned()
}

/// How a line was decided, in words (reasons from the receiving catalogue, not JSON).
fn decision_lines(
    f: &mut fmt::Formatter<'_>,
    d: &hub_core::event::ReceivingDecision,
    lang: crate::catalogue::Lang,
    zone: chrono_tz::Tz,
) -> fmt::Result {
    use crate::catalogue::{Lang, local_date_time, receiving};
    let staff = if d.staff.is_empty() { "-" } else { &d.staff };
    let outcome = receiving::outcome(d.decision.outcome, lang);
    let at = local_date_time(d.decided_at, zone);
    match lang {
        Lang::ZhCn => writeln!(
            f,
            "到货单 {} 第 {} 行 {} 批次 {}：{outcome}（接收 {}，拒收 {}，扣留 {}），{staff}，{at}",
            d.delivery_id,
            d.line_no,
            d.sku,
            d.lot,
            d.decision.accepted,
            d.decision.rejected,
            d.decision.held
        )?,
        Lang::En => writeln!(
            f,
            "delivery {} line {} {} lot {}: {outcome} (accepted {}, rejected {}, held {}) by {staff}, {at}",
            d.delivery_id,
            d.line_no,
            d.sku,
            d.lot,
            d.decision.accepted,
            d.decision.rejected,
            d.decision.held
        )?,
    }
    for r in &d.decision.reasons {
        let label = match lang {
            Lang::ZhCn => "原因",
            Lang::En => "reason",
        };
        writeln!(f, "           {label}: {}", receiving::reason(r, lang))?;
    }
    Ok(())
}

impl fmt::Display for ItemTraceView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::catalogue::Lang;
        let (t, lang, zone) = (self.trace, self.lang, self.zone);
        let status = stored_word("trace.status", &t.status, lang);
        let zh = lang == Lang::ZhCn;
        let unknown = if zh { "未知" } else { "?" };
        let supplier = t.supplier.as_deref().unwrap_or(unknown);
        let delivery = t.delivery_id.as_deref().unwrap_or(unknown);
        let bound = local_at(&t.bound_at, zone);
        if zh {
            writeln!(
                f,
                "单品 {}（{} 批次 {}，现状：{status}）",
                t.code, t.sku, t.lot
            )?;
            writeln!(
                f,
                "  来源     供应商 {supplier}，到货单 {delivery}，绑定于 {bound}"
            )?;
        } else {
            writeln!(
                f,
                "item {}  ({} lot {}, now {status})",
                t.code, t.sku, t.lot
            )?;
            writeln!(
                f,
                "  from     supplier {supplier} in delivery {delivery}, bound {bound}"
            )?;
        }
        if !t.elements.is_empty() {
            let elements: Vec<String> = t
                .elements
                .iter()
                .map(|e| format!("({}){}", e.ai, e.value))
                .collect();
            let label = if zh { "印码    " } else { "printed " };
            writeln!(f, "  {label} {}", elements.join(" "))?;
        }
        if let Some(d) = &t.decision {
            write!(f, "  {} ", if zh { "验收    " } else { "accepted" })?;
            decision_lines(f, d, lang, zone)?;
        }
        for m in &t.batch_movements {
            writeln!(
                f,
                "  {} {} {:<8} {:>8}  {}",
                if zh { "批次    " } else { "batch   " },
                local_at(&m.at, zone),
                stored_word("trace.movement", &m.kind, lang),
                m.quantity,
                reference_words(&m.reference, lang)
            )?;
        }
        for e in &t.disputes {
            write_dispute_episode(f, e, lang, zone)?;
        }
        match (&t.handed_over, zh) {
            (Some(h), true) => writeln!(
                f,
                "  去向     取货单 {}，取货台 {}{}，{}",
                h.order_id,
                h.station,
                h.staff
                    .as_deref()
                    .map(|s| format!("，操作人 {s}"))
                    .unwrap_or_default(),
                local_at(&h.at, zone)
            ),
            (Some(h), false) => writeln!(
                f,
                "  to       pickup order {} at station {}{}, {}",
                h.order_id,
                h.station,
                h.staff
                    .as_deref()
                    .map(|s| format!(" by {s}"))
                    .unwrap_or_default(),
                local_at(&h.at, zone)
            ),
            (None, true) => writeln!(f, "  去向     （尚未交付）"),
            (None, false) => writeln!(f, "  to       (not handed over)"),
        }
    }
}

/// Every item of a batch, upstream and downstream, in the catalogue's words and local time.
pub struct BatchTraces<'a> {
    pub traces: &'a [crate::store::trace::BatchTrace],
    pub lang: crate::catalogue::Lang,
    pub zone: chrono_tz::Tz,
}

impl fmt::Display for BatchTraces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::catalogue::Lang;
        let (lang, zone) = (self.lang, self.zone);
        let zh = lang == Lang::ZhCn;
        if self.traces.is_empty() {
            return writeln!(
                f,
                "{}",
                if zh {
                    "没有这个批号的批次"
                } else {
                    "no batch with that lot code"
                }
            );
        }
        for b in self.traces {
            if zh {
                writeln!(f, "批次 {}（{}）— 在库 {}", b.lot, b.sku, b.on_hand)?;
            } else {
                writeln!(f, "batch {} of {} — {} on hand", b.lot, b.sku, b.on_hand)?;
            }
            for d in &b.upstream {
                if zh {
                    write!(f, "  来源：供应商 {}，", d.supplier)?;
                } else {
                    write!(f, "  upstream: supplier {} ", d.supplier)?;
                }
                decision_lines(f, d, lang, zone)?;
            }
            for m in &b.movements {
                writeln!(
                    f,
                    "  {} {} {:<8} {:>8}  {}",
                    if zh { "库存变动：" } else { "movement:" },
                    local_at(&m.at, zone),
                    stored_word("trace.movement", &m.kind, lang),
                    m.quantity,
                    reference_words(&m.reference, lang)
                )?;
            }
            for i in &b.items {
                let status = stored_word("trace.status", &i.status, lang);
                match (&i.order_id, &i.handed_over_at, zh) {
                    (Some(o), Some(at), true) => writeln!(
                        f,
                        "  单品 {:<40} {status} → 取货单 {o}，{}",
                        i.code,
                        local_at(at, zone)
                    )?,
                    (Some(o), Some(at), false) => writeln!(
                        f,
                        "  item {:<40} {status} → order {o} at {}",
                        i.code,
                        local_at(at, zone)
                    )?,
                    (_, _, true) => writeln!(f, "  单品 {:<40} {status}", i.code)?,
                    (_, _, false) => writeln!(f, "  item {:<40} {status}", i.code)?,
                }
            }
        }
        Ok(())
    }
}

/// The operations report for people (the same figures as `hub report --json`).
pub struct ReportView<'a>(pub &'a crate::store::report::OpsReport);

impl std::fmt::Display for ReportView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        let pct = |v: Option<f64>| {
            v.map(|v| format!("{:.1}%", v * 100.0))
                .unwrap_or_else(|| "n/a".into())
        };
        let days = |v: Option<f64>| {
            v.map(|d| format!("{d:.1} d"))
                .unwrap_or_else(|| "n/a".into())
        };
        writeln!(
            f,
            "Operations report {} .. {} ({} day(s) of {}, {} SKUs)",
            r.from, r.to, r.days, r.timezone, r.skus
        )?;
        writeln!(f, "  {:<30} {:>10}   target", "figure", "value")?;
        writeln!(
            f,
            "  {:<30} {:>10}   < 5%",
            "stock-out rate (listed days)",
            pct(Some(r.stock_out_rate))
        )?;
        for u in &r.by_unit {
            let label = |what: &str| format!("{what} ({}, {} SKUs)", u.unit, u.skus);
            writeln!(
                f,
                "  {:<30} {:>10}   < 7 d",
                label("turnover"),
                days(u.turnover_days)
            )?;
            writeln!(
                f,
                "  {:<30} {:>10}   ~ 1.2%",
                label("loss rate"),
                pct(u.loss_rate)
            )?;
            writeln!(
                f,
                "  {:<30} {:>10}",
                label("forecast WAPE"),
                format!(
                    "{} over {} SKU-days ({} without a stored forecast: left out)",
                    pct(u.forecast_wape),
                    u.forecast_sku_days,
                    u.forecast_sku_days_missing
                )
            )?;
            writeln!(
                f,
                "  {:<30} {:>10}",
                format!("received / handed over / lost ({})", u.unit),
                format!(
                    "{} / {} / {}",
                    u.received_quantity, u.handed_over_quantity, u.lost_quantity
                )
            )?;
        }
        writeln!(
            f,
            "  {:<30} {:>10}",
            "acceptance pass rate",
            pct(r.acceptance_pass_rate)
        )?;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "sell-through rate",
            pct(r.sell_through_rate)
        )?;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "order fill rate",
            pct(r.order_fill_rate)
        )?;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "near-expiry share (lots)",
            pct(r.near_expiry_share)
        )?;
        let p = &r.pickups;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "pickups due",
            format!(
                "{} ({} on time, {} late, {} never, {} open)",
                p.due, p.collected_on_time, p.collected_late, p.never_collected, p.still_open
            )
        )?;
        let d = &r.disputes;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "disputes",
            format!(
                "{} opened, {} settled ({} <= 30 min, {} <= 2 h, {} <= 24 h)",
                d.opened,
                d.settled,
                d.settled_within_30_min,
                d.settled_within_2_h,
                d.settled_within_24_h
            )
        )?;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "dispute first response",
            format!(
                "{} responded, {} <= 30 min, median {}",
                d.responded,
                d.responded_within_30_min,
                d.median_first_response_minutes
                    .map(|m| format!("{m:.0} min"))
                    .unwrap_or_else(|| "-".into())
            )
        )?;
        writeln!(
            f,
            "  {:<30} {:>10}",
            "dispute photos inspected",
            format!(
                "{} inspected, {} <= 2 h",
                d.photos_inspected, d.photos_inspected_within_2_h
            )
        )?;
        let dl = &r.deliveries;
        writeln!(
            f,
            "  {:<30} {:>10}",
            format!(
                "deliveries on time (±{} min)",
                r.delivery_on_time_tolerance_minutes
            ),
            format!(
                "{} ({} of {} due: {} early, {} late, {} not received that day, {} still expected)",
                pct(dl.on_time_rate),
                dl.on_time,
                dl.due,
                dl.early,
                dl.late,
                dl.never_received,
                dl.still_expected
            )
        )?;
        writeln!(f, "  {:<30} {:>10}", "receipts", r.receipts)?;
        writeln!(f, "  {:<30} {:>10}", "handovers", r.handovers)?;
        if r.open_alerts.is_empty() {
            writeln!(f, "  no open alerts")
        } else {
            writeln!(f, "  open alerts:")?;
            r.open_alerts.iter().try_for_each(|a| {
                writeln!(f, "    [{}] {}", a.tier.as_str().to_uppercase(), a.message)
            })
        }
    }
}

/// `hub receive progress`: each manifest line, decided or not, with what was observed on it.
pub struct DeliveryProgress<'a>(
    pub &'a str,
    pub bool,
    pub &'a [crate::store::deliveries::LineProgress],
);

impl std::fmt::Display for DeliveryProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DeliveryProgress(delivery, closed, lines) = self;
        let state = if *closed { "closed" } else { "open" };
        writeln!(f, "delivery {delivery} ({state})")?;
        for line in lines.iter() {
            let o = &line.observed;
            writeln!(
                f,
                "  line {} {} lot {}: {}; {} bound, {} product scans, {} flagged, {} weight(s){}, {} photo(s){}",
                line.line_no,
                line.sku,
                line.lot,
                if line.decided {
                    "decided"
                } else {
                    "not decided"
                },
                o.bound_codes.len(),
                o.product_scans.len(),
                o.flagged.len(),
                o.weights_g.len(),
                o.weights_g
                    .last()
                    .map(|g| format!(" (last {g} g)"))
                    .unwrap_or_default(),
                o.photos.len(),
                o.counted_by_staff
                    .map(|n| format!(", counted {n}"))
                    .unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}

/// A delivery as `hub receive show` prints it: every expected line with
/// what was observed, its state and reasons, in the station app's words (the catalogue) and
/// times in the site's time zone.
pub struct BenchDeliveryView<'a> {
    pub delivery: &'a crate::store::deliveries::BenchDelivery,
    pub lang: crate::catalogue::Lang,
    pub zone: chrono_tz::Tz,
}

impl fmt::Display for BenchDeliveryView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::catalogue::{Lang, local_date_time, receiving as words, text};
        let (d, lang) = (self.delivery, self.lang);
        let zh = lang == Lang::ZhCn;
        let t = |key: &str| text(key, lang).to_owned();
        let g = if zh { " 克" } else { " g" };
        let dash = |v: Option<i64>, unit: &str| {
            v.map(|v| format!("{v}{unit}"))
                .unwrap_or_else(|| "—".into())
        };
        let (done, held, waiting) = d.progress();
        writeln!(
            f,
            "{} {} · {}: {} · {}: {} · {}: {done} {} / {held} {} / {waiting} {}",
            if zh { "到货单" } else { "delivery" },
            d.delivery_id,
            t("receiving.supplier"),
            d.supplier,
            t("receiving.expected_at"),
            d.expected_at.as_deref().unwrap_or("—"),
            t("receiving.progress"),
            t("receiving.done"),
            t("receiving.held"),
            t("receiving.waiting"),
        )?;
        if d.closed {
            writeln!(f, "  {}", t("receiving.closed"))?;
        }
        for l in &d.lines {
            let name = if l.sku_name.is_empty() {
                l.line.sku.to_string()
            } else {
                format!("{} {}", l.line.sku, l.sku_name)
            };
            writeln!(
                f,
                "  {} {}: {name} · {} {} · {} {}: {}",
                t("receiving.line"),
                l.line.line_no,
                t("receiving.lot"),
                l.line.lot,
                t("receiving.expiry"),
                l.line.expiry.map(|e| e.to_string()).unwrap_or("—".into()),
                words::state(l.state, lang),
            )?;
            let scanned = match l.observed.counted_by_staff {
                Some(n) => format!("{n} ✎"),
                None => l.observed.scanned().to_string(),
            };
            let photo = l
                .observed
                .photos
                .last()
                .map(|p| words::verdict(p.verdict, lang).to_owned())
                .unwrap_or_else(|| t("receiving.no_photo"));
            writeln!(
                f,
                "      {}: {} / {scanned} · {}: {} / {} ({} ± {}{g}) · {}: {photo}",
                t("receiving.count"),
                dash(l.line.expected_count, ""),
                t("receiving.weight"),
                dash(l.line.expected_weight_g, g),
                dash(l.observed.weights_g.last().copied(), g),
                t("receiving.tolerance"),
                l.line.weight_tolerance_g,
                t("receiving.photo"),
            )?;
            for (code, flag) in &l.observed.flagged {
                writeln!(f, "      ✖ {code}: {}", words::flag(flag, lang))?;
            }
            let (decision, by) = match (&l.decision, &l.proposal) {
                (Some(x), _) => (
                    &x.decision,
                    format!(
                        " · {} {} · {}",
                        t("receiving.by"),
                        if x.staff.is_empty() { "-" } else { &x.staff },
                        local_date_time(x.decided_at, self.zone)
                    ),
                ),
                (None, Some(p)) => (p, format!(" ({})", t("receiving.proposal"))),
                (None, None) => continue,
            };
            writeln!(
                f,
                "      {}{by}: {} {} / {} {} / {} {}",
                words::outcome(decision.outcome, lang),
                if zh { "接收" } else { "accepted" },
                decision.accepted,
                if zh { "暂扣" } else { "held" },
                decision.held,
                if zh { "拒收" } else { "rejected" },
                decision.rejected,
            )?;
            for r in &decision.reasons {
                writeln!(f, "      • {}", words::reason(r, lang))?;
            }
            if let Some(h) = l.hold.as_ref().filter(|h| h.status != "held") {
                let reason = h
                    .reason
                    .as_deref()
                    .map(|r| {
                        let key = format!("receiving.resolve.{r}");
                        if crate::catalogue::has(&key) {
                            text(&key, lang).to_owned()
                        } else {
                            r.to_owned()
                        }
                    })
                    .unwrap_or_default();
                writeln!(
                    f,
                    "      {}: {} {} · {} {} · {}{reason}",
                    words::state(l.state, lang),
                    h.quantity,
                    if zh { "件" } else { "unit(s)" },
                    t("receiving.by"),
                    h.resolved_by.as_deref().unwrap_or("-"),
                    h.resolved_at
                        .map(|at| format!("{} · ", local_date_time(at, self.zone)))
                        .unwrap_or_default(),
                )?;
            }
        }
        for e in &d.disputes {
            write_dispute_episode(f, e, lang, self.zone)?;
        }
        Ok(())
    }
}

/// `hub alerts`: the open alerts worst first, in the catalogue's words and the site's time.
pub struct AlertsView<'a> {
    pub alerts: &'a [crate::store::alert_book::ListedAlert],
    pub lang: crate::catalogue::Lang,
    pub zone: chrono_tz::Tz,
}

impl fmt::Display for AlertsView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::catalogue::{Lang, local_date_time, text};
        let lang = self.lang;
        if self.alerts.is_empty() {
            return writeln!(f, "{}", text("cli.alerts.none", lang));
        }
        match lang {
            Lang::ZhCn => writeln!(
                f,
                "未处理告警 {} 个（最严重的在前；时间为 {}）",
                self.alerts.len(),
                self.zone
            )?,
            Lang::En => writeln!(
                f,
                "{} open alert(s), worst first (times in {})",
                self.alerts.len(),
                self.zone
            )?,
        }
        for listed in self.alerts {
            let a = &listed.alert;
            let kind = a.kind.as_str();
            let subject = match &listed.sku_name {
                Some(name) if name != &a.subject => format!("{} {name}", a.subject),
                _ => a.subject.clone(),
            };
            writeln!(
                f,
                "[{}] {} · {} · {} {}",
                text(&format!("status.tier.{}", a.tier.as_str()), lang),
                text(&format!("stock.alert.{kind}"), lang),
                subject,
                text("cli.alerts.since", lang),
                local_date_time(listed.raised_at, self.zone)
            )?;
            // The alert book keeps its detail in English (for logs and central): English
            // readers get it; zh-CN readers get the catalogue's title and what to do.
            if lang == Lang::En {
                writeln!(f, "      {}", a.message)?;
            }
            writeln!(
                f,
                "      {}{}",
                text("cli.alerts.todo", lang),
                text(&format!("stock.todo.{kind}"), lang)
            )?;
            if let Some((by, at)) = &listed.acked {
                writeln!(
                    f,
                    "      {} {by} · {}",
                    text("stock.ack.by", lang),
                    local_date_time(*at, self.zone)
                )?;
            }
        }
        Ok(())
    }
}

/// One dispute episode of a delivery, with its times and every response (`hub receive show`).
fn write_dispute_episode(
    f: &mut fmt::Formatter<'_>,
    e: &crate::store::deliveries::DisputeEpisode,
    lang: crate::catalogue::Lang,
    zone: chrono_tz::Tz,
) -> fmt::Result {
    use crate::catalogue::{local_date_time, text};
    let t = |key: &str| text(key, lang).to_owned();
    let by = |who: Option<&str>| who.map(|w| format!(" ({w})")).unwrap_or_default();
    writeln!(
        f,
        "  {} #{} · {}: {} · {}{}: {}",
        t("dispute.title"),
        e.id,
        if e.closed_at.is_some() {
            t("dispute.settled")
        } else {
            t("dispute.open")
        },
        e.note,
        t("dispute.opened"),
        by(e.opened_by.as_deref()),
        local_date_time(e.opened_at, zone),
    )?;
    if let Some(n) = e.line_no {
        let photos: Vec<String> = e
            .photos
            .iter()
            .map(|p| p.chars().take(12).collect())
            .collect();
        writeln!(
            f,
            "      {} {n} · {}: {}",
            t("receiving.line"),
            t("dispute.photos"),
            if photos.is_empty() {
                t("dispute.no_photos")
            } else {
                photos.join(" ")
            }
        )?;
    }
    if let Some(r) = &e.first_response {
        writeln!(
            f,
            "      {} ({}, {}): {}",
            t("dispute.first_response"),
            t(&format!("dispute.kind.{}", r.kind)),
            r.by,
            local_date_time(r.at, zone),
        )?;
        if let Some(at) = r.photos_inspected_at {
            writeln!(
                f,
                "      {}: {}",
                t("dispute.photos_inspected"),
                local_date_time(at, zone)
            )?;
        }
    }
    for r in &e.responses {
        writeln!(
            f,
            "      {} ({}, {}) {}: {}",
            t("dispute.response"),
            t(&format!("dispute.kind.{}", r.kind)),
            r.by,
            local_date_time(r.at, zone),
            r.note,
        )?;
    }
    if let Some(at) = e.closed_at {
        writeln!(
            f,
            "      {}{}: {} · {}",
            t("dispute.settled"),
            by(e.closed_by.as_deref()),
            local_date_time(at, zone),
            e.settle_note.as_deref().unwrap_or("—"),
        )?;
    }
    Ok(())
}
