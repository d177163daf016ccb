//! Live weighing at the pickup counter, in words: a line sold by weight shows its weighed
//! against its ordered grams and what that changes in the price. The price per kilogram is the
//! order's own (`unit_price_cents` of the line, as central sent it; the master data has no
//! price); a line without one shows the weights and says no difference is charged here. The
//! arithmetic is `hub_core::counter`'s, the same the handover records.

use super::LineView;
use super::feed::BagShown;
use crate::catalogue::{self, Lang, Tone};

/// Cents as yuan with a sign: `+¥1.20`, `-¥0.75`, `¥0.00`.
fn yuan(cents: i64) -> String {
    let sign = match cents {
        c if c > 0 => "+",
        c if c < 0 => "-",
        _ => "",
    };
    let c = cents.abs();
    format!("{sign}¥{}.{:02}", c / 100, c % 100)
}

/// "weighed 540 g / ordered 500 g · price difference +¥1.20 (order price ¥30.00/kg)".
pub(super) fn weighed(
    ordered_g: i64,
    weighed_g: i64,
    per_kg_cents: Option<i64>,
    lang: Lang,
) -> String {
    let weights = catalogue::text("weigh.weighed", lang)
        .replace("{w}", &weighed_g.to_string())
        .replace("{o}", &ordered_g.to_string());
    let price = match per_kg_cents {
        Some(per_kg) => catalogue::text("weigh.difference", lang)
            .replace(
                "{d}",
                &yuan(hub_core::counter::weighed_price_difference(
                    ordered_g, weighed_g, per_kg,
                )),
            )
            .replace("{p}", yuan(per_kg).trim_start_matches('+')),
        None => catalogue::text("weigh.no_price", lang).to_owned(),
    };
    format!("⚖ {weights} · {price}")
}

/// The message for a stable weight that just came from the counter's scale: the line it
/// filled (the last one weighed, with this weight), or that it filled none.
pub(super) fn weight_message(
    grams: i64,
    weighed: &[(usize, i64)],
    lines: &[LineView],
    lang: Lang,
) -> (Tone, String) {
    match weighed.last() {
        Some((line, g)) if *g == grams => (
            Tone::Ok,
            format!(
                "{} {}",
                lines
                    .get(*line)
                    .map(|l| l.name.as_str())
                    .unwrap_or_default(),
                lines
                    .get(*line)
                    .map(|l| l.weighed.as_str())
                    .unwrap_or_default()
            ),
        ),
        _ => (
            Tone::Attention,
            catalogue::text("weigh.nothing_to_fill", lang).replace("{g}", &grams.to_string()),
        ),
    }
}

/// The weight cross-check of the bagged order in words: amber with the likely missing or
/// extra item when it does not match, green when it does.
pub(super) fn bag_message(bag: &BagShown, lines: &[LineView], lang: Lang) -> (Tone, String) {
    let figures = catalogue::text("weigh.bag_figures", lang)
        .replace("{m}", &bag.measured_g.to_string())
        .replace("{e}", &bag.expected_g.to_string())
        .replace("{t}", &bag.tolerance_g.to_string());
    if bag.matches {
        return (
            Tone::Ok,
            format!(
                "⚖ {} · {figures}",
                catalogue::text("weigh.bag_matches", lang)
            ),
        );
    }
    let likely = match bag.likely {
        Some((line, units)) => {
            let name = lines.get(line).map(|l| l.name.as_str()).unwrap_or_default();
            let key = if units < 0 {
                "weigh.likely_missing"
            } else {
                "weigh.likely_extra"
            };
            format!("{}{name} ×{}", catalogue::text(key, lang), units.abs())
        }
        None => catalogue::text("weigh.check_each", lang).to_owned(),
    };
    (
        Tone::Attention,
        format!(
            "⚖ {} · {figures} · {likely}",
            catalogue::text("weigh.bag_mismatch", lang)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weighed_line_says_both_weights_and_where_its_price_comes_from() {
        assert_eq!(
            weighed(500, 540, Some(3_000), Lang::ZhCn),
            "⚖ 称重 540 克 / 订购 500 克 · 差价 +¥1.20（按订单单价 ¥30.00/千克）"
        );
        assert_eq!(
            weighed(500, 475, Some(3_000), Lang::En),
            "⚖ weighed 475 g / ordered 500 g · price difference -¥0.75 (order price ¥30.00/kg)"
        );
        assert_eq!(
            weighed(500, 540, None, Lang::En),
            "⚖ weighed 540 g / ordered 500 g · the order has no price per kg: no difference charged here"
        );
    }
}
