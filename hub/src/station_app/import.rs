//! The import page (`/station/import`, supervisors): a supervisor uploads a file of central's
//! commands — SKU master data, pickup orders or a delivery manifest, exactly the `down/commands`
//! messages of `docs/mqtt.md` — from the tablet, as `hub sku import`, `hub pickup import` and
//! `hub receive manifest` read them. Every error in the file is listed at once and then nothing
//! is imported; otherwise all of it is applied in one transaction, as if central had sent it,
//! and each command's outcome is listed.

use super::{StationApp, authorised, html, refusal, session, templates};
use crate::catalogue::{self, Lang};
use crate::commands::Applied;
use crate::store::staff as staff_store;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use hub_contract::command::CommandKind;
use serde::Deserialize;

/// Largest import file: a month of pickup orders for a busy site fits many times over.
const IMPORT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The kinds a supervisor may import here, in the order the page lists them.
const KINDS: [CommandKind; 3] = [
    CommandKind::SkuUpsert,
    CommandKind::PickupOrder,
    CommandKind::DeliveryManifest,
];

/// The page's routes.
pub fn routes() -> Router<StationApp> {
    Router::new().route("/station/import", get(page)).route(
        "/station/import",
        post(upload).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
    )
}

/// `?lang=` overrides the staff member's language, as on the stock screen and the dashboard.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    lang: Option<String>,
}

async fn page(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let Some(s) = session(&app, &headers).await else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "import page without a session",
            Lang::default(),
            "error.session",
        );
    };
    if !s.role.supervises() {
        return refusal(
            StatusCode::FORBIDDEN,
            "import page asked by a clerk",
            s.lang,
            "supervisor.only",
        );
    }
    let lang = q.lang.as_deref().and_then(Lang::parse).unwrap_or(s.lang);
    let context = serde_json::json!({
        "lang": lang.tag(),
        "csrf": s.csrf,
        "staff": super::StaffView { staff_id: &s.staff_id, name: &s.name },
        "station_name": app.station_name(&s.station),
        "kinds": KINDS.map(|k| k.as_str()),
    });
    html(StatusCode::OK, templates::render("import.html", context))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    kind: String,
}

/// One command's outcome, for the result list.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    ok: bool,
    text: String,
}

async fn upload(
    State(app): State<StationApp>,
    headers: HeaderMap,
    Query(q): Query<UploadQuery>,
    body: axum::body::Bytes,
) -> Response {
    let s = match authorised(&app, &headers, None).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = s.lang;
    if !s.role.supervises() {
        return refusal(
            StatusCode::FORBIDDEN,
            "import asked by a clerk",
            lang,
            "supervisor.only",
        );
    }
    let result = |status: StatusCode, heading: String, lines: Vec<Outcome>| {
        html(
            status,
            templates::render(
                "import_result.html",
                serde_json::json!({"lang": lang.tag(), "heading": heading, "lines": lines}),
            ),
        )
    };
    let Some(kind) = KINDS.into_iter().find(|k| k.as_str() == q.kind) else {
        return result(
            StatusCode::BAD_REQUEST,
            catalogue::text("import.unknown_kind", lang).to_owned(),
            vec![],
        );
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return result(
            StatusCode::BAD_REQUEST,
            catalogue::text("import.not_text", lang).to_owned(),
            vec![],
        );
    };
    let commands = match crate::imports::decode_file(text, kind) {
        Ok(Some(commands)) if !commands.is_empty() => commands,
        Ok(_) => {
            return result(
                StatusCode::BAD_REQUEST,
                catalogue::text("import.not_commands", lang).to_owned(),
                vec![],
            );
        }
        Err(crate::imports::ImportError::Problems(problems)) => {
            let heading = match lang {
                Lang::ZhCn => format!("文件有 {} 处错误，未导入任何内容：", problems.len()),
                Lang::En => format!(
                    "{} error(s) in the file; nothing was imported:",
                    problems.len()
                ),
            };
            let lines = problems
                .into_iter()
                .map(|problem| Outcome {
                    ok: false,
                    text: catalogue::import_problem(&problem, lang),
                })
                .collect();
            return result(StatusCode::BAD_REQUEST, heading, lines);
        }
        Err(crate::imports::ImportError::NotJson {
            line,
            column,
            detail,
            ..
        }) if lang == Lang::ZhCn => {
            let heading = format!(
                "{}第 {line} 行第 {column} 列（{detail}）",
                catalogue::text("import.not_json", lang)
            );
            return result(StatusCode::BAD_REQUEST, heading, vec![]);
        }
        Err(e) => {
            let heading = format!("{} {e}", catalogue::text("import.not_json", lang));
            return result(StatusCode::BAD_REQUEST, heading, vec![]);
        }
    };
    let (site, zone, now) = (app.site.id.clone(), app.site.timezone, crate::clock::now());
    let (staff, station, device) = (s.staff_id.clone(), s.station.clone(), s.device_id.clone());
    let count = commands.len();
    let applied = app
        .store
        .write(move |c| {
            let outcomes = commands
                .into_iter()
                .map(|command| crate::commands::apply(c, &site, zone, Ok(command), now))
                .collect::<Result<Vec<_>, _>>()?;
            staff_store::record_action(
                c,
                &staff_store::Action {
                    staff: Some(&staff),
                    station: Some(&station),
                    device: Some(&device),
                    action: "import",
                    detail: &format!("{count} {} command(s)", kind.as_str()),
                },
                now,
            )?;
            Ok::<_, crate::store::StoreError>(outcomes)
        })
        .await;
    let outcomes = match applied {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::error!(error = %e, "import: cannot apply the file");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "store error while importing",
                lang,
                "error.store",
            );
        }
    };
    let lines: Vec<Outcome> = outcomes
        .iter()
        .map(|outcome| {
            outcome.log();
            let zh = lang == Lang::ZhCn;
            match outcome {
                Applied::Applied {
                    command_id,
                    changed,
                    key,
                    version,
                    ..
                } => Outcome {
                    ok: true,
                    text: match (zh, changed) {
                        (true, true) => format!("{command_id}：{key} 第 {version} 版，已导入"),
                        (true, false) => format!("{command_id}：{key} 第 {version} 版，已是最新"),
                        (false, true) => format!("{command_id}: {key} version {version} applied"),
                        (false, false) => {
                            format!("{command_id}: {key} version {version} unchanged")
                        }
                    },
                },
                Applied::Duplicate { command_id } => Outcome {
                    ok: true,
                    text: if zh {
                        format!("{command_id}：之前已导入，本次未重复导入")
                    } else {
                        format!("{command_id}: applied before; not applied again")
                    },
                },
                Applied::Rejected(r) => Outcome {
                    ok: false,
                    text: format!(
                        "{}: {} ({})",
                        r.command_id.as_deref().unwrap_or("-"),
                        r.reason,
                        r.code.as_str()
                    ),
                },
            }
        })
        .collect();
    let heading = match lang {
        Lang::ZhCn => format!("已处理 {} 条命令：", lines.len()),
        Lang::En => format!("{} command(s) handled:", lines.len()),
    };
    result(StatusCode::OK, heading, lines)
}
