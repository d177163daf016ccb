//! The page templates, compiled into the binary, rendered by `minijinja` with automatic HTML
//! escaping (every `{{ value }}` in a `.html` template is escaped; nothing is built by hand).
//!
//! Templates name their texts by catalogue key: `{{ t("pickup.hand_over") }}` looks the key up
//! in [`crate::catalogue`] in the page's `lang`. A template that fails to render is a bug:
//! [`render`] logs it and returns a plain error page instead of panicking.

use crate::catalogue::{self, Lang};
use minijinja::{Environment, State};
use std::sync::OnceLock;

/// Every template, by name (the name's extension decides the escaping).
const TEMPLATES: &[(&str, &str)] = &[
    ("status.css", include_str!("templates/status.css")),
    ("status.html", include_str!("templates/status.html")),
    ("base.html", include_str!("templates/base.html")),
    ("pair.html", include_str!("templates/pair.html")),
    ("signin.html", include_str!("templates/signin.html")),
    ("pickup.html", include_str!("templates/pickup.html")),
    ("result.html", include_str!("templates/result.html")),
    ("message.html", include_str!("templates/message.html")),
    ("receiving.html", include_str!("templates/receiving.html")),
    (
        "receiving_panel.html",
        include_str!("templates/receiving_panel.html"),
    ),
    (
        "receiving_dispute.html",
        include_str!("templates/receiving_dispute.html"),
    ),
    (
        "pairing_code.html",
        include_str!("templates/pairing_code.html"),
    ),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("stock.html", include_str!("templates/stock.html")),
    ("import.html", include_str!("templates/import.html")),
    ("drilldown.html", include_str!("templates/drilldown.html")),
    (
        "import_result.html",
        include_str!("templates/import_result.html"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // The sources are part of the binary and checked by the tests; a syntax error
            // shows when the template is rendered.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env.add_function("t", translate);
        env.add_global("asset_version", super::assets::version());
        env
    })
}

/// `t(key)`: the catalogue's text for `key` in the page's `lang` (zh-CN when unset).
fn translate(state: &State, key: &str) -> String {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or_default();
    catalogue::text(key, lang).to_owned()
}

/// Renders template `name` with `context` (which should carry `lang`). A failure is logged and
/// answered with a short page that says so.
pub fn render<S: serde::Serialize>(name: &str, context: S) -> String {
    match env()
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from_serialize(&context)))
    {
        Ok(page) => page,
        Err(e) => {
            tracing::error!(template = name, error = %e, "cannot render a page");
            format!(
                "<!DOCTYPE html><meta charset=\"utf-8\"><p>页面生成失败 / the page cannot be shown ({name}); please tell the technician.</p>"
            )
        }
    }
}

/// Like [`render`] but reports the error (tests use it so a broken template fails them).
pub fn try_render<S: serde::Serialize>(name: &str, context: S) -> Result<String, minijinja::Error> {
    env()
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from_serialize(&context)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page with every optional part shown, in both languages: it renders, names only
    /// texts the catalogue has, and escapes outside text.
    #[test]
    fn every_page_renders_in_both_languages_with_catalogue_texts_only() {
        for lang in Lang::ALL {
            let result = serde_json::json!({
                "tone": "ok", "headline": "<b>A1</b>", "message": "m", "order_id": "A1",
                "customer": "1234", "can_hand_over": true, "can_undo": true,
                "locked_for_ms": 60_000, "queue": ["A2", "A3"],
                "lines": [{"sku": "MILK", "name": "鲜牛奶", "quantity": 2, "lot": "L1", "expiry": "2030-01-01", "ticked": 1, "weighed": "⚖ 540", "refused": "已拒收 ×1"}],
            });
            let context = serde_json::json!({
                "lang": lang.tag(), "csrf": "c", "problem": "signin.wrong", "tries_left": 3,
                "staff_id": "li", "station_name": "取货台", "message": "x",
                "staff": {"staff_id": "li", "name": "李"}, "seq": 1, "r": result, "fresh": "1",
                "request_id": "r1", "refuse_request_id": "r2", "partial_request_id": "r3",
                "reasons": catalogue::REFUSAL_REASONS,
                "line_request_id": "r4", "line_reasons": crate::station_app::line_refusal::reasons(),
                "supervisor": true, "undo_reasons": hub_core::pickup::UNDO_REASONS,
                "code": "12345678",
            });
            for name in [
                "pair.html",
                "signin.html",
                "pickup.html",
                "result.html",
                "message.html",
                "pairing_code.html",
            ] {
                let page = try_render(name, &context).unwrap_or_else(|e| panic!("{name}: {e:#}"));
                for prefix in [
                    "app.",
                    "pair.",
                    "signin.",
                    "pickup.",
                    "refuse.",
                    "error.",
                    "supervisor.",
                    "undo.",
                    "item.",
                ] {
                    assert!(
                        !page.contains(&format!(">{prefix}"))
                            && !page.contains(&format!(" {prefix}")),
                        "{name} ({}) shows a key without text: {page}",
                        lang.tag()
                    );
                }
                assert!(!page.contains("<b>A1</b>"), "{name} does not escape");
            }
        }
    }
}
