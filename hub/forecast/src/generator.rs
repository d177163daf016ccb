//! A seeded generator of realistic site histories for tests, the simulator and the benchmark:
//! fresh produce (2–5 day shelf life), dairy (7–14), frozen and dry goods (180+), weekday
//! cycles, a slowly drifting level, festival windows (清明 青团, 冬至 饺子, 元宵 汤圆, 春节 run-up,
//! eve and holiday, year-end), promotions, rain/cold/heat, negative-binomial noise, slow
//! (intermittent) sellers, SKUs launched mid-history, and stock-out days with censored sales.
//!
//! The generator knows the true multipliers and emits the matching [`DemandSignal`]s (each SKU
//! reacts to a signal with its own elasticity, so the signal is right on average, not exactly).
//! Deterministic for a given seed: one `StdRng` drives everything, no global randomness.
//! Every SKU is counted in pieces (packs), so quantities of different SKUs can be summed by value.

use crate::model::DailyObservation;
use crate::signals::{DemandSignal, SignalKind, SignalScope};
use crate::stats::{sample_neg_binomial, sample_normal};
use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub seed: u64,
    /// Number of SKUs (at least the 12 base kinds are cycled through).
    pub skus: usize,
    /// First day of the history.
    pub start: NaiveDate,
    /// Length of the history in days.
    pub days: usize,
    /// Chance that a SKU runs out on an ordinary day (festivals and promotions raise it).
    pub stockout_rate: f64,
    /// Shape of the gamma mixing of the negative-binomial noise: variance = mean + mean²/shape,
    /// so the day-to-day coefficient of variation never drops below `1/√shape`.
    pub noise_shape: f64,
}

impl Default for GeneratorConfig {
    /// 60 SKUs, 180 days from 2025-10-15 (through 冬至, the year end, 春节 2026 and 清明 2026).
    fn default() -> Self {
        GeneratorConfig {
            seed: 2026,
            skus: 60,
            start: NaiveDate::from_ymd_opt(2025, 10, 15).unwrap_or_default(),
            days: 180,
            stockout_rate: 0.03,
            noise_shape: 12.0,
        }
    }
}

/// Master data of a generated SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuProfile {
    /// ASCII code, e.g. `FRESH-QINGCAI-03`.
    pub code: String,
    /// Display name, e.g. `上海青 500g`.
    pub name: String,
    /// `fresh`, `dairy`, `bakery`, `frozen`, `dry`, `drinks` or `snacks`.
    pub category: String,
    /// Days a delivered unit can be sold.
    pub shelf_life_days: u32,
    /// Price per piece (yuan), to weigh losses and stock by value.
    pub price: f64,
    /// Index of the first day the SKU is listed (0 for SKUs listed from the start).
    pub first_day: usize,
    /// Index of the day after the last listed day (`days` when it stays listed).
    pub last_day: usize,
    /// Central's launch estimate of daily demand (noisy: the truth is not known in advance).
    pub prior_daily: f64,
    /// True average daily demand at launch (before weekday and signal effects).
    pub base_daily: f64,
}

/// One SKU's generated days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuHistory {
    pub profile: SkuProfile,
    /// True demand per day (0 when not listed); what the simulator replays.
    pub demand: Vec<f64>,
    /// The mean `demand` was drawn from each day: the best any forecast could do.
    pub expected: Vec<f64>,
    /// What the hub would have recorded: sales, stock-out flags, listed flags.
    pub observations: Vec<DailyObservation>,
}

/// A generated site: SKUs and the signals central sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteHistory {
    pub start: NaiveDate,
    pub days: usize,
    pub skus: Vec<SkuHistory>,
    pub signals: Vec<DemandSignal>,
}

impl SiteHistory {
    /// The date of day index `i`.
    pub fn date(&self, i: usize) -> NaiveDate {
        self.start + chrono::Days::new(i as u64)
    }
}

struct Kind {
    code: &'static str,
    name: &'static str,
    category: &'static str,
    shelf: (u32, u32),
    price: (f64, f64),
    daily: (f64, f64),
}

const KINDS: &[Kind] = &[
    Kind {
        code: "FRESH-QINGCAI",
        name: "上海青 500g",
        category: "fresh",
        shelf: (2, 3),
        price: (3.0, 5.0),
        daily: (15.0, 45.0),
    },
    Kind {
        code: "FRESH-TOMATO",
        name: "番茄 500g",
        category: "fresh",
        shelf: (3, 5),
        price: (4.0, 7.0),
        daily: (10.0, 30.0),
    },
    Kind {
        code: "FRESH-CUKE",
        name: "黄瓜 500g",
        category: "fresh",
        shelf: (3, 4),
        price: (3.0, 5.0),
        daily: (6.0, 20.0),
    },
    Kind {
        code: "FRESH-APPLE",
        name: "苹果 4 个装",
        category: "fresh",
        shelf: (4, 5),
        price: (9.0, 15.0),
        daily: (4.0, 15.0),
    },
    Kind {
        code: "FRESH-PORK",
        name: "冷鲜猪肉 300g",
        category: "fresh",
        shelf: (3, 4),
        price: (12.0, 20.0),
        daily: (5.0, 18.0),
    },
    Kind {
        code: "FRESH-TOFU",
        name: "嫩豆腐",
        category: "fresh",
        shelf: (2, 3),
        price: (2.0, 4.0),
        daily: (3.0, 12.0),
    },
    Kind {
        code: "DAIRY-MILK",
        name: "鲜牛奶 950ml",
        category: "dairy",
        shelf: (7, 10),
        price: (12.0, 18.0),
        daily: (6.0, 25.0),
    },
    Kind {
        code: "DAIRY-YOGURT",
        name: "酸奶 4 杯",
        category: "dairy",
        shelf: (10, 14),
        price: (10.0, 16.0),
        daily: (3.0, 12.0),
    },
    Kind {
        code: "FROZEN-DUMPLING",
        name: "速冻水饺 1kg",
        category: "frozen",
        shelf: (180, 270),
        price: (20.0, 35.0),
        daily: (2.0, 8.0),
    },
    Kind {
        code: "FROZEN-TANGYUAN",
        name: "汤圆 500g",
        category: "frozen",
        shelf: (180, 270),
        price: (12.0, 20.0),
        daily: (0.3, 1.5),
    },
    Kind {
        code: "DRY-RICE",
        name: "大米 5kg",
        category: "dry",
        shelf: (270, 365),
        price: (30.0, 50.0),
        daily: (1.0, 5.0),
    },
    Kind {
        code: "DRY-OIL",
        name: "花生油 5L",
        category: "dry",
        shelf: (365, 540),
        price: (60.0, 90.0),
        daily: (0.3, 2.0),
    },
    Kind {
        code: "DRY-NOODLE",
        name: "挂面 1kg",
        category: "dry",
        shelf: (270, 365),
        price: (8.0, 12.0),
        daily: (0.5, 3.0),
    },
    Kind {
        code: "DRY-TISSUE",
        name: "抽纸 10 包",
        category: "dry",
        shelf: (720, 1080),
        price: (20.0, 30.0),
        daily: (0.5, 3.0),
    },
    Kind {
        code: "SNACK-NUTS",
        name: "每日坚果 30 袋",
        category: "snacks",
        shelf: (180, 240),
        price: (60.0, 100.0),
        daily: (0.2, 1.2),
    },
    Kind {
        code: "SNACK-CHIPS",
        name: "薯片 大包",
        category: "snacks",
        shelf: (180, 270),
        price: (7.0, 12.0),
        daily: (1.0, 5.0),
    },
    Kind {
        code: "DRINK-WATER",
        name: "矿泉水 12 瓶",
        category: "drinks",
        shelf: (365, 540),
        price: (15.0, 25.0),
        daily: (1.0, 6.0),
    },
    Kind {
        code: "BAKERY-BREAD",
        name: "吐司面包",
        category: "bakery",
        shelf: (4, 6),
        price: (8.0, 14.0),
        daily: (2.0, 10.0),
    },
];

/// Monday-first weekday profile per category.
fn weekday_profile(category: &str) -> [f64; 7] {
    match category {
        "fresh" => [0.92, 0.9, 0.95, 1.0, 1.08, 1.2, 0.95],
        "dairy" => [1.0, 1.0, 0.98, 1.0, 1.05, 1.12, 0.85],
        "bakery" => [1.05, 1.0, 1.0, 1.0, 1.05, 1.05, 0.85],
        _ => [0.85, 0.9, 0.95, 1.0, 1.1, 1.25, 0.95],
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Festival dates that do not follow the Gregorian calendar, 2024–2027: (春节, 元宵, 端午, 中秋).
/// Month and day.
type MonthDay = (u32, u32);

const LUNAR: [(i32, MonthDay, MonthDay, MonthDay, MonthDay); 4] = [
    (2024, (2, 10), (2, 24), (6, 10), (9, 17)),
    (2025, (1, 29), (2, 12), (5, 31), (10, 6)),
    (2026, (2, 17), (3, 3), (6, 19), (9, 25)),
    (2027, (2, 6), (2, 20), (6, 9), (9, 15)),
];

fn span(
    id: String,
    kind: SignalKind,
    start: NaiveDate,
    end: NaiveDate,
    scope: SignalScope,
    multiplier: f64,
) -> DemandSignal {
    DemandSignal {
        id,
        kind,
        start,
        end,
        scope,
        multiplier,
    }
}

fn days_before(d: NaiveDate, n: u64) -> NaiveDate {
    d - chrono::Days::new(n)
}

fn days_after(d: NaiveDate, n: u64) -> NaiveDate {
    d + chrono::Days::new(n)
}

/// The festival and year-end signals central sends for a SKU catalogue (holiday kind, no two
/// covering the same SKU and day). `qingtuan`, `tangyuan`, `zongzi`, `mooncake` are the codes of
/// the seasonal SKUs present (if any).
fn festival_signals(first: NaiveDate, last: NaiveDate, seasonal: &Seasonal) -> Vec<DemandSignal> {
    let mut out = Vec::new();
    for (year, spring, lantern, dragon, autumn) in LUNAR {
        let eve = days_before(date(year, spring.0, spring.1), 1);
        out.push(span(
            format!("spring-run-up-{year}"),
            SignalKind::Holiday,
            days_before(eve, 7),
            days_before(eve, 1),
            SignalScope::All,
            1.35,
        ));
        out.push(span(
            format!("spring-eve-{year}"),
            SignalKind::Holiday,
            eve,
            eve,
            SignalScope::All,
            1.8,
        ));
        out.push(span(
            format!("spring-holiday-{year}"),
            SignalKind::Holiday,
            days_after(eve, 1),
            days_after(eve, 6),
            SignalScope::All,
            0.6,
        ));
        let lantern = date(year, lantern.0, lantern.1);
        if let Some(code) = &seasonal.tangyuan {
            out.push(span(
                format!("yuanxiao-{year}"),
                SignalKind::Holiday,
                days_before(lantern, 2),
                lantern,
                SignalScope::Skus(vec![code.clone()]),
                4.0,
            ));
        }
        let dragon = date(year, dragon.0, dragon.1);
        out.push(span(
            format!("duanwu-{year}"),
            SignalKind::Holiday,
            days_before(dragon, 2),
            dragon,
            SignalScope::Category("fresh".into()),
            1.25,
        ));
        let autumn = date(year, autumn.0, autumn.1);
        out.push(span(
            format!("zhongqiu-{year}"),
            SignalKind::Holiday,
            days_before(autumn, 2),
            autumn,
            SignalScope::Category("fresh".into()),
            1.3,
        ));
        // 清明 (4 or 5 April): 青团 in the days before.
        let qingming = qingming(year);
        if let Some(code) = &seasonal.qingtuan {
            out.push(span(
                format!("qingming-{year}"),
                SignalKind::Holiday,
                days_before(qingming, 3),
                qingming,
                SignalScope::Skus(vec![code.clone()]),
                2.5,
            ));
        }
        // 冬至 (21 or 22 December): 饺子 and 汤圆.
        let dongzhi = date(year, 12, if year >= 2026 { 22 } else { 21 });
        out.push(span(
            format!("dongzhi-{year}"),
            SignalKind::Holiday,
            days_before(dongzhi, 2),
            dongzhi,
            SignalScope::Category("frozen".into()),
            2.5,
        ));
        out.push(span(
            format!("year-end-{year}"),
            SignalKind::Holiday,
            date(year, 12, 28),
            date(year, 12, 31),
            SignalScope::All,
            1.2,
        ));
    }
    out.retain(|s| s.end >= first && s.start <= last);
    out
}

/// 清明 (a solar term): 4 April in 2024–2025, 5 April in 2026–2027.
fn qingming(year: i32) -> NaiveDate {
    date(year, 4, if year >= 2026 { 5 } else { 4 })
}

struct Seasonal {
    qingtuan: Option<String>,
    tangyuan: Option<String>,
}

/// Generates a site history. Same config, same history, bit for bit.
pub fn generate(config: &GeneratorConfig) -> SiteHistory {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let days = config.days.max(1);
    let first = config.start;
    let last = days_after(first, days as u64 - 1);

    // Catalogue.
    let mut profiles = Vec::new();
    let mut elasticity = Vec::new();
    for i in 0..config.skus {
        let kind = &KINDS[i % KINDS.len()];
        let variant = i / KINDS.len() + 1;
        // Slow sellers are long-life goods: fresh food that sells under a few a day is sold by
        // pre-order at a front warehouse, not stocked.
        let slow = rng.random::<f64>() < 0.3 && kind.shelf.0 >= 30;
        let (lo, hi) = if slow { (0.2, 1.5) } else { kind.daily };
        let base = lo * (hi / lo).powf(rng.random::<f64>());
        let launched_late = i >= KINDS.len() && rng.random::<f64>() < 0.15;
        let first_day = if launched_late {
            rng.random_range(days / 6..days.saturating_sub(10).max(days / 6 + 1))
        } else {
            0
        };
        profiles.push(SkuProfile {
            code: format!("{}-{:02}", kind.code, variant),
            name: if variant > 1 {
                format!("{} #{variant}", kind.name)
            } else {
                kind.name.to_string()
            },
            category: kind.category.to_string(),
            shelf_life_days: rng.random_range(kind.shelf.0..=kind.shelf.1),
            price: ((kind.price.0 + rng.random::<f64>() * (kind.price.1 - kind.price.0)) * 10.0)
                .round()
                / 10.0,
            first_day,
            last_day: days,
            prior_daily: base * (0.7 + 0.6 * rng.random::<f64>()),
            base_daily: base,
        });
        elasticity.push(0.8 + 0.4 * rng.random::<f64>());
    }
    // 青团: a seasonal SKU listed about two weeks before 清明 and delisted two days after.
    let mut seasonal = Seasonal {
        qingtuan: None,
        tangyuan: profiles
            .iter()
            .find(|p| p.code.starts_with("FROZEN-TANGYUAN"))
            .map(|p| p.code.clone()),
    };
    for year in first.year()..=last.year() {
        let qingming = qingming(year);
        let launch = days_before(qingming, 16);
        if launch >= first && launch <= last {
            let fd = (launch - first).num_days() as usize;
            let ld = ((qingming - first).num_days() as usize + 3).min(days);
            let base = 6.0 + 6.0 * rng.random::<f64>();
            profiles.push(SkuProfile {
                code: format!("BAKERY-QINGTUAN-{year}"),
                name: "青团 6 个装".into(),
                category: "bakery".into(),
                shelf_life_days: 3,
                price: 19.9,
                first_day: fd,
                last_day: ld,
                prior_daily: base * (0.7 + 0.6 * rng.random::<f64>()),
                base_daily: base,
            });
            elasticity.push(0.8 + 0.4 * rng.random::<f64>());
            seasonal.qingtuan = Some(format!("BAKERY-QINGTUAN-{year}"));
        }
    }

    // Signals: festivals, then weather, then promotions (none overlapping another of its kind).
    let mut signals = festival_signals(first, last, &seasonal);
    let mut day = 0;
    while day < days {
        let d = days_after(first, day as u64);
        let month = d.month();
        let roll = rng.random::<f64>();
        let len = rng.random_range(1..=3u64);
        let end = days_after(d, len - 1).min(last);
        if roll < 0.07 {
            signals.push(span(
                format!("rain-{d}"),
                SignalKind::Weather,
                d,
                end,
                SignalScope::Category("fresh".into()),
                1.2,
            ));
            day += len as usize + 1;
            continue;
        }
        if roll < 0.11 && matches!(month, 12 | 1 | 2) {
            signals.push(span(
                format!("cold-{d}"),
                SignalKind::Weather,
                d,
                end,
                SignalScope::Category("frozen".into()),
                1.3,
            ));
            day += len as usize + 1;
            continue;
        }
        if roll < 0.11 && matches!(month, 6..=8) {
            signals.push(span(
                format!("heat-{d}"),
                SignalKind::Weather,
                d,
                end,
                SignalScope::Category("drinks".into()),
                1.6,
            ));
            day += len as usize + 1;
            continue;
        }
        day += 1;
    }
    // Platform promotions (双十一, 双十二) on snacks and dry goods, 20 % held for pre-sale.
    for year in first.year()..=last.year() {
        for (m, dd, cat, mult) in [(11, 11, "snacks", 1.8), (12, 12, "dry", 1.5)] {
            let center = date(year, m, dd);
            let s = span(
                format!("promo-{cat}-{year}-{m:02}{dd:02}"),
                SignalKind::Promotion {
                    reserve_fraction: 0.2,
                },
                days_before(center, 1),
                days_after(center, 1),
                SignalScope::Category(cat.into()),
                mult,
            );
            if s.end >= first && s.start <= last {
                signals.push(s);
            }
        }
    }
    // SKU promotions: a few per SKU, 2–4 days, clear of the category promotions.
    let category_promos: Vec<(NaiveDate, NaiveDate)> = signals
        .iter()
        .filter(|s| matches!(s.kind, SignalKind::Promotion { .. }))
        .map(|s| (s.start, s.end))
        .collect();
    for p in &profiles {
        let span_days = p.last_day.saturating_sub(p.first_day);
        let count = span_days / 45;
        for k in 0..count {
            let len = rng.random_range(2..=4usize);
            let lo = p.first_day + k * 45 + 5;
            let hi = (lo + 35).min(p.last_day.saturating_sub(len));
            if hi <= lo {
                continue;
            }
            let s0 = rng.random_range(lo..hi);
            let start = days_after(first, s0 as u64);
            let end = days_after(start, len as u64 - 1);
            if category_promos
                .iter()
                .any(|(a, b)| start <= *b && *a <= end)
            {
                continue;
            }
            let mult = 1.4 + rng.random::<f64>() * 1.1;
            signals.push(span(
                format!("promo-{}-{start}", p.code),
                SignalKind::Promotion {
                    reserve_fraction: 0.2,
                },
                start,
                end,
                SignalScope::Skus(vec![p.code.clone()]),
                (mult * 100.0).round() / 100.0,
            ));
        }
    }

    // Demand and observations.
    let mut skus = Vec::with_capacity(profiles.len());
    for (profile, e) in profiles.into_iter().zip(elasticity) {
        let sig = crate::signals::SkuSignals::for_sku(&signals, &profile.code, &profile.category);
        let mut weekday = weekday_profile(&profile.category);
        for w in &mut weekday {
            *w *= 1.0 + 0.05 * sample_normal(&mut rng);
        }
        let drift = -0.0015 + 0.0035 * rng.random::<f64>();
        let mut log_level = 0.0f64;
        let mut demand = vec![0.0; days];
        let mut expected = vec![0.0; days];
        let mut observations = Vec::with_capacity(days);
        let mut outage_left = 0u32;
        for i in 0..days {
            let d = days_after(first, i as u64);
            let listed = i >= profile.first_day && i < profile.last_day;
            if !listed {
                observations.push(DailyObservation {
                    date: d,
                    sold: 0.0,
                    stocked_out: false,
                    existed: false,
                });
                continue;
            }
            let age = (i - profile.first_day) as f64;
            log_level += drift + 0.012 * sample_normal(&mut rng);
            // Mean reversion keeps a 180-day walk within a plausible band.
            log_level *= 0.995;
            let ramp = (0.4 + 0.6 * age / 14.0).min(1.0);
            let m = sig.multiplier(d);
            let true_m = 1.0 + (m - 1.0) * e;
            let mean = profile.base_daily
                * log_level.exp()
                * ramp
                * weekday[d.weekday().num_days_from_monday() as usize]
                * true_m.max(0.05);
            let q = sample_neg_binomial(&mut rng, mean, config.noise_shape);
            demand[i] = q;
            expected[i] = mean;
            // Stock-outs: more likely when demand jumps (festivals, promotions); runs of 1–3 days.
            if outage_left == 0 {
                let p = config.stockout_rate * (1.0 + 3.0 * (m - 1.0).max(0.0));
                if rng.random::<f64>() < p {
                    outage_left = rng.random_range(1..=3);
                }
            }
            let (sold, out) = if outage_left > 0 {
                outage_left -= 1;
                let share = 0.2 + 0.6 * rng.random::<f64>();
                ((q * share).floor(), true)
            } else {
                (q, false)
            };
            observations.push(DailyObservation {
                date: d,
                sold,
                stocked_out: out,
                existed: true,
            });
        }
        skus.push(SkuHistory {
            profile,
            demand,
            expected,
            observations,
        });
    }
    SiteHistory {
        start: first,
        days,
        skus,
        signals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::validate_signals;

    #[test]
    fn same_seed_same_history_other_seed_other_history() {
        let config = GeneratorConfig {
            skus: 55,
            ..GeneratorConfig::default()
        };
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a, b);
        let c = generate(&GeneratorConfig {
            seed: config.seed + 1,
            ..config
        });
        assert_ne!(a.skus[0].demand, c.skus[0].demand);
    }

    #[test]
    fn the_default_site_has_everything_the_brief_needs() {
        let site = generate(&GeneratorConfig::default());
        assert!(site.skus.len() > 50);
        let shelf = |cat: &str| {
            site.skus
                .iter()
                .filter(|s| s.profile.category == cat)
                .map(|s| s.profile.shelf_life_days)
                .collect::<Vec<_>>()
        };
        assert!(shelf("fresh").iter().all(|&d| (2..=5).contains(&d)));
        assert!(shelf("dairy").iter().all(|&d| (7..=14).contains(&d)));
        assert!(shelf("dry").iter().all(|&d| d >= 180));
        assert!(
            site.skus.iter().any(|s| s.profile.first_day > 0),
            "a SKU launched mid-history"
        );
        assert!(
            site.skus
                .iter()
                .any(|s| s.profile.code.starts_with("BAKERY-QINGTUAN")),
            "青团 for 清明"
        );
        let ids: Vec<&str> = site.signals.iter().map(|s| s.id.as_str()).collect();
        for want in [
            "dongzhi-2025",
            "spring-eve-2026",
            "qingming-2026",
            "year-end-2025",
            "yuanxiao-2026",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        assert!(ids.iter().any(|i| i.starts_with("rain-")));
        assert!(ids.iter().any(|i| i.starts_with("promo-FRESH")));
        // The emitted signals are valid as central would send them at the start.
        assert_eq!(validate_signals(&site.signals, site.start), Ok(()));
        let obs: Vec<&DailyObservation> = site
            .skus
            .iter()
            .flat_map(|s| &s.observations)
            .filter(|o| o.existed)
            .collect();
        let outs = obs.iter().filter(|o| o.stocked_out).count() as f64 / obs.len() as f64;
        assert!((0.02..0.2).contains(&outs), "stock-out share {outs}");
        let zeros = obs.iter().filter(|o| o.sold == 0.0).count() as f64 / obs.len() as f64;
        assert!(zeros > 0.05, "slow sellers have zero days: {zeros}");
        for s in &site.skus {
            for (o, q) in s.observations.iter().zip(&s.demand) {
                assert!(o.sold <= *q, "sales never exceed demand");
                if !o.stocked_out {
                    assert_eq!(o.sold, *q);
                }
            }
        }
    }
}
