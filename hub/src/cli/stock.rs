//! The site's records: stock, the ledger check, SKU master data, traces, alerts and the
//! operations report.

use super::*;

#[derive(Debug, Args)]
pub(super) struct StockArgs {
    #[command(flatten)]
    pub(super) config: ConfigArg,
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct TraceArgs {
    #[command(flatten)]
    pub(super) config: ConfigArg,
    /// The item's trace code (as scanned, or its canonical form).
    pub(super) code: Option<String>,
    /// Trace every item of this lot instead.
    #[arg(long, conflicts_with = "code")]
    pub(super) batch: Option<String>,
    #[arg(long)]
    pub(super) json: bool,
    /// The language of the text: zh-CN (default) or en.
    #[arg(long, default_value = "zh-CN")]
    pub(super) lang: String,
}

#[derive(Debug, Args)]
pub(super) struct AlertsArgs {
    #[command(flatten)]
    pub(super) config: ConfigArg,
    /// Run the periodic checks once before listing.
    #[arg(long)]
    pub(super) check: bool,
    #[arg(long)]
    pub(super) json: bool,
    /// The language of the text: zh-CN (default) or en.
    #[arg(long, default_value = "zh-CN")]
    pub(super) lang: String,
}

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[command(flatten)]
    pub(super) config: ConfigArg,
    /// First day (YYYY-MM-DD, the site's calendar: `site.timezone`); default 7 days
    /// before --to.
    #[arg(long)]
    pub(super) from: Option<chrono::NaiveDate>,
    /// Day after the last day (YYYY-MM-DD, the site's calendar); default tomorrow.
    #[arg(long)]
    pub(super) to: Option<chrono::NaiveDate>,
    #[arg(long)]
    pub(super) json: bool,
}

pub(super) fn stock(args: StockArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let StockArgs { config, json } = args;
    let config = Config::load(&config.config)?;
    telemetry::init(&config.log.level, log_format(log, Some(&config)));
    let store = daemon::open_store(&config)?;
    let stock = store.read_blocking(ledger::balances)?;
    if json {
        print_json(&stock)?;
    } else {
        print!("{}", crate::cli_output::StockTable(&stock));
    }
    store.close();
    Ok(Exit::Ok)
}

pub(super) fn ledger_command(
    command: LedgerCommand,
    log: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    let LedgerCommand::Verify { config, json } = command;
    let config = Config::load(&config.config)?;
    telemetry::init(&config.log.level, log_format(log, Some(&config)));
    // A file too damaged to open is a verification failure too, not a generic one.
    let store = daemon::open_store(&config).map_err(|e| match e {
        crate::incarnation::IncarnationError::Store(
            e @ (crate::store::StoreError::Corrupt { .. }
            | crate::store::StoreError::NotADatabase { .. }),
        ) => Failure {
            code: Exit::LedgerMismatch,
            error: e.into(),
        },
        e => Failure::from(e),
    })?;
    let report = store.read_blocking(ledger::verify_file)?;
    store.close();
    if json {
        print_json(&report)?;
    } else if report.ok() {
        println!(
            "ledger ok: {} movements, {} SKU balances, {} batch balances, {} outbox events — all match; database file sound",
            report.movements, report.skus_checked, report.batches_checked, report.outbox_events
        );
    } else {
        if !report.integrity.is_empty() {
            eprintln!(
                "database file DAMAGED ({} problem(s) from SQLite's integrity check):",
                report.integrity.len()
            );
            for p in &report.integrity {
                eprintln!("  - {p}");
            }
            eprintln!("what to do: {}", crate::store::RESTORE_HINT);
        }
        if !report.problems.is_empty() {
            eprintln!("ledger MISMATCH ({} problem(s)):", report.problems.len());
            for p in &report.problems {
                eprintln!("  - {p}");
            }
        }
    }
    Ok(if report.ok() {
        Exit::Ok
    } else {
        Exit::LedgerMismatch
    })
}

pub(super) fn trace(args: TraceArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let TraceArgs {
        config,
        code,
        batch,
        json,
        lang,
    } = args;
    let Some(lang) = crate::catalogue::Lang::parse(&lang) else {
        return Err(Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!("language '{lang}' is not offered; use zh-CN or en"),
        });
    };
    let (site, store) = open_site(&config.config, log)?;
    let zone = site.site.timezone;
    let out = match (code, batch) {
        (_, Some(lot)) => {
            let traces = store.read_blocking(move |c| crate::store::trace::batch(c, &lot))?;
            if json {
                print_json(&traces)?;
            } else {
                print!(
                    "{}",
                    crate::cli_output::BatchTraces {
                        traces: &traces,
                        lang,
                        zone
                    }
                );
            }
            if traces.is_empty() {
                Exit::Refused
            } else {
                Exit::Ok
            }
        }
        (Some(code), None) => {
            let canonical = crate::codes::stored_form(&code, &site.codes);
            let trace = store.read_blocking(move |c| {
                Ok::<_, crate::store::StoreError>(match crate::store::trace::item(c, &canonical)? {
                    Some(t) => Some(t),
                    None => crate::store::trace::item(c, &code)?,
                })
            })?;
            match trace {
                Some(t) if json => print_json(&t)?,
                Some(t) => print!(
                    "{}",
                    crate::cli_output::ItemTraceView {
                        trace: &t,
                        lang,
                        zone
                    }
                ),
                None if json => print_json(&serde_json::Value::Null)?,
                None => eprintln!(
                    "{}",
                    match lang {
                        crate::catalogue::Lang::ZhCn => "本设备从未见过这个追溯码",
                        crate::catalogue::Lang::En => "this hub has never seen that code",
                    }
                ),
            }
            Exit::Ok
        }
        (None, None) => {
            return Err(Failure {
                code: Exit::Invalid,
                error: anyhow::anyhow!("give a trace code, or --batch LOT"),
            });
        }
    };
    store.close();
    Ok(out)
}

pub(super) fn alerts(args: AlertsArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let AlertsArgs {
        config,
        check,
        json,
        lang,
    } = args;
    let Some(lang) = crate::catalogue::Lang::parse(&lang) else {
        return Err(Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!("language '{lang}' is not offered; use zh-CN or en"),
        });
    };
    let (config, store) = open_site(&config.config, log)?;
    if check {
        runtime()?.block_on(crate::workflows::alerts::run_checks(
            &store,
            &Site::of(&config),
            &config.alerts,
            crate::clock::now(),
        ))?;
    }
    let listed = store.read_blocking(crate::store::alert_book::open_alerts_listed)?;
    store.close();
    if json {
        let alerts: Vec<&hub_core::alerts::Alert> = listed.iter().map(|l| &l.alert).collect();
        print_json(&alerts)?;
    } else {
        print!(
            "{}",
            crate::cli_output::AlertsView {
                alerts: &listed,
                lang,
                zone: config.site.timezone,
            }
        );
    }
    Ok(Exit::Ok)
}

pub(super) fn report(args: ReportArgs, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    let ReportArgs {
        config,
        from,
        to,
        json,
    } = args;
    let (site_config, store) = open_site(&config.config, log)?;
    // Days of the site's calendar (`site.timezone`), never UTC days.
    let zone = site_config.site.timezone;
    let settings = crate::workflows::Site::of(&site_config).report;
    let now = crate::clock::now();
    let today = crate::clock::site_date(zone, now);
    let to = to.unwrap_or(today + chrono::Days::new(1));
    let from = from.unwrap_or(to - chrono::Days::new(7));
    if from >= to {
        return Err(Failure {
            code: Exit::Invalid,
            error: anyhow::anyhow!("--from {from} must be before --to {to}"),
        });
    }
    // The closed days' rollups first (a hub that was off at midnight catches up here); the
    // report is right without them, only slower.
    if let Err(e) = crate::workflows::rollups::refresh_report_rollups_blocking(&store, zone, now) {
        tracing::warn!(error = %e, "cannot write the report's rollups; reading the journal");
    }
    let report = store.read_blocking(move |c| {
        crate::store::report::compute_with(c, from, to, zone, settings, now)
    })?;
    store.close();
    if json {
        print_json(&report)?;
    } else {
        print!("{}", crate::cli_output::ReportView(&report));
    }
    Ok(Exit::Ok)
}

pub(super) fn sku_command(command: SkuCommand, log: Option<LogFormatArg>) -> Result<Exit, Failure> {
    match command {
        SkuCommand::Import { config, file } => {
            if let Some(commands) =
                super::import::read_commands(&file, hub_contract::command::CommandKind::SkuUpsert)?
            {
                return super::import::apply_commands(&config.config, log, commands);
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let skus: Vec<hub_core::Sku> = serde_json::from_str(&text).map_err(|e| Failure {
                code: Exit::Invalid,
                error: anyhow::anyhow!("{} is not a JSON array of SKUs: {e}", file.display()),
            })?;
            let (_config, store) = open_site(&config.config, log)?;
            let now = crate::clock::now();
            let count = skus.len();
            let outcomes = store.write_blocking(move |c| {
                skus.iter()
                    .map(|s| crate::store::sku::upsert(c, s, now))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            store.close();
            let stale = outcomes
                .iter()
                .filter(|o| matches!(o, crate::store::sku::SkuUpsert::Stale { .. }))
                .count();
            println!(
                "{count} SKU(s) read, {} stored, {stale} skipped (same or newer version stored)",
                count - stale
            );
            Ok(Exit::Ok)
        }
        SkuCommand::List { config, json } => {
            let (_config, store) = open_site(&config.config, log)?;
            let skus = store.read_blocking(|c| {
                crate::store::sku::all(c)?
                    .into_iter()
                    .map(|s| {
                        let category = crate::store::sku::category_of(c, s.code.as_str())?;
                        Ok::<_, crate::store::StoreError>((s, category))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?;
            store.close();
            if json {
                // Each SKU as its master data, with its category (null: none).
                let rows: Vec<serde_json::Value> = skus
                    .iter()
                    .map(|(s, category)| {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        if let Some(o) = v.as_object_mut() {
                            o.insert("category".into(), serde_json::json!(category));
                        }
                        v
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for (s, category) in &skus {
                    println!(
                        "{:<16} {:<32} {:<6} v{} category {} gtins {}",
                        s.code,
                        s.name,
                        s.unit.symbol(),
                        s.version,
                        category.as_deref().unwrap_or("-"),
                        s.gtins
                            .iter()
                            .map(|g| g.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
            Ok(Exit::Ok)
        }
    }
}
