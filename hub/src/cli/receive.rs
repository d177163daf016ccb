//! `hub receive …`: manifests, station steps, decisions, held stock and disputes.

use super::*;
use crate::store::deliveries::DisputeResponse;

#[derive(Debug, Subcommand)]
pub(super) enum ReceiveCommand {
    /// Load delivery manifests from a JSON file: a `delivery_manifest` command exactly as
    /// central sends it (docs/mqtt.md), or an array of them. Every error is listed at once.
    Manifest {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
    },
    /// A code scanned at a station: a crate/delivery label selects a line, an item code binds.
    Scan {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        code: String,
        #[arg(long)]
        json: bool,
    },
    /// A stable weight in grams for the station's selected line.
    Weight {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        grams: i64,
    },
    /// Staff count for a line without trace codes.
    Count {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        count: i64,
    },
    /// Split part of a line off into another lot.
    Split {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long)]
        lot: String,
        #[arg(long)]
        expiry: Option<chrono::NaiveDate>,
        #[arg(long)]
        quantity: i64,
    },
    /// Decide a line now.
    Decide {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long)]
        staff: String,
        /// Hold the line for a supervisor's review with this reason, as the bench screen's
        /// hold does: what the checks would accept is held, what they reject stays rejected.
        #[arg(long, value_name = "REASON", value_parser = hold_reason_parser())]
        hold: Option<hub_core::receiving::HoldReason>,
        #[arg(long)]
        json: bool,
    },
    /// Release held stock into stock and/or reject it, after review.
    Release {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long, default_value_t = 0)]
        release: i64,
        #[arg(long, default_value_t = 0)]
        reject: i64,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        reason: String,
    },
    /// Close a delivery; undecided lines are decided now.
    Close {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        staff: String,
        #[arg(long)]
        json: bool,
    },
    /// Open a dispute on a delivery (its photos and decisions are then kept whatever the
    /// retention policy), respond to the open one with --respond (a note) or
    /// --photos-inspected, or close it with --close once settled. The first response (or the
    /// settlement, if nothing came before) is the dispute's response time in `hub report`.
    Dispute {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        staff: String,
        /// What is contested (when opening) or how it was settled (with --close).
        #[arg(long)]
        note: String,
        /// Close the delivery's open dispute instead of opening one.
        #[arg(long, conflicts_with_all = ["respond", "photos_inspected"])]
        close: bool,
        /// Open the dispute about this manifest line: its photos stored so far become the
        /// dispute's evidence.
        #[arg(long, conflicts_with_all = ["close", "respond", "photos_inspected"])]
        line: Option<u32>,
        /// Respond to the delivery's open dispute with the note (who, when and what are kept).
        #[arg(long)]
        respond: bool,
        /// Respond to the open dispute: its photos were inspected (the note says what they
        /// show).
        #[arg(long)]
        photos_inspected: bool,
    },
    /// A photo of the station's selected line: checked with the SKU's vision rule, stored as
    /// evidence and recorded on the line.
    Photo {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        /// The photo (JPEG or PNG).
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Where a delivery stands: every manifest line with what was observed on it so far
    /// (bound and flagged codes, weights, photos) and whether it is decided — what staff need
    /// to resume an interrupted session.
    Progress {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        json: bool,
    },
    /// A supervisor reverses a line's last receipt within
    /// `receiving.reversal_window_minutes`: the received quantity leaves the lot again with a
    /// reversal movement (the receipt stays in the journal), the line waits for a new decision,
    /// its trace codes may be bound again, and `receipt_reversed` goes upstream. Refused in
    /// words outside the window, once some of the stock has left, on a closed delivery, or for
    /// a clerk.
    Reverse {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        line: u32,
        #[arg(long, value_name = "REASON", value_parser = reversal_reason_parser())]
        reason: hub_core::receiving_reversal::ReversalReason,
        #[arg(long)]
        staff: String,
        /// This request's id: the same id again is answered with what it did, never applied
        /// twice (default: a new id).
        #[arg(long)]
        request_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a delivery: every expected line with what was observed, its state (waiting, its
    /// decision, released or rejected after a hold) and the reasons, in the station app's words
    /// and the site's time zone. `--json` prints the decisions made so far.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        delivery: String,
        #[arg(long)]
        json: bool,
        /// The language of the text: zh-CN (default) or en.
        #[arg(long, default_value = "zh-CN")]
        lang: String,
    },
}

/// `--hold`'s values: the hold reasons of `hub_core::receiving::HoldReason`.
fn hold_reason_parser()
-> impl clap::builder::TypedValueParser<Value = hub_core::receiving::HoldReason> {
    use hub_core::receiving::HoldReason;
    listed_reason_parser(
        &HoldReason::ALL,
        HoldReason::as_str,
        HoldReason::parse,
        "receiving.hold.",
        "a hold reason",
    )
}

/// `--reason`'s values for `receive reverse`: `hub_core::receiving_reversal::ReversalReason`.
fn reversal_reason_parser()
-> impl clap::builder::TypedValueParser<Value = hub_core::receiving_reversal::ReversalReason> {
    use hub_core::receiving_reversal::ReversalReason;
    listed_reason_parser(
        &ReversalReason::ALL,
        ReversalReason::as_str,
        ReversalReason::parse,
        "receiving.reverse.reason.",
        "a reversal reason",
    )
}

/// A value from a fixed list of reasons: each listed in `--help` with its English words from
/// the catalogue (`{catalogue_prefix}{name}`); any other value is refused by name with the list.
fn listed_reason_parser<R: Clone + Send + Sync + 'static>(
    all: &[R],
    name: fn(R) -> &'static str,
    parse: fn(&str) -> Option<R>,
    catalogue_prefix: &'static str,
    noun: &'static str,
) -> impl clap::builder::TypedValueParser<Value = R> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    let values = all.iter().map(|reason| {
        let reason = name(reason.clone());
        let key = format!("{catalogue_prefix}{reason}");
        PossibleValue::new(reason)
            .help(crate::catalogue::text(&key, crate::catalogue::Lang::En).to_owned())
    });
    PossibleValuesParser::new(values)
        .try_map(move |text: String| parse(&text).ok_or_else(|| format!("{text} is not {noun}")))
}

pub(super) fn receive_command(
    command: ReceiveCommand,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    use crate::store::deliveries::{self, ReceivingError};
    use crate::workflows::receiving;
    let now = crate::clock::now();
    // Refusals (unknown delivery, already decided, ...) are answers for staff, not failures.
    let answer = |e: ReceivingError| -> Result<Exit, Failure> {
        match e {
            ReceivingError::Store(e)
            | ReceivingError::Ledger(crate::store::ledger::RecordError::Store(e)) => Err(e.into()),
            refused => {
                eprintln!("refused: {refused}");
                Ok(Exit::Refused)
            }
        }
    };
    match command {
        ReceiveCommand::Manifest { config, file } => {
            if let Some(commands) = super::import::read_commands(
                &file,
                hub_contract::command::CommandKind::DeliveryManifest,
            )? {
                return super::import::apply_commands(&config.config, format, commands);
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let manifest: hub_core::receiving::Manifest =
                serde_json::from_str(&text).map_err(|e| Failure {
                    code: Exit::Invalid,
                    error: anyhow::anyhow!("{} is not a delivery manifest: {e}", file.display()),
                })?;
            let (_config, store) = open_site(&config.config, format)?;
            let id = manifest.delivery_id.clone();
            let outcome =
                store.write_blocking(move |c| deliveries::upsert_manifest(c, &manifest, now))?;
            store.close();
            println!("delivery {id}: {outcome:?}");
            Ok(Exit::Ok)
        }
        ReceiveCommand::Scan {
            config,
            station,
            code,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            receiving_station(&config, &station)?;
            let out = runtime()?.block_on(receiving::scan(
                &store,
                &Site::of(&config),
                &station,
                &code,
                now,
            ));
            store.close();
            match out {
                Ok(outcome) if json => print_json(&outcome).map(|_| Exit::Ok),
                Ok(outcome) => {
                    println!("{}", crate::cli_output::describe_scan(&outcome));
                    Ok(match outcome {
                        receiving::ScanOutcome::Item(deliveries::BindOutcome::Flagged {
                            ..
                        }) => Exit::Refused,
                        _ => Exit::Ok,
                    })
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Weight {
            config,
            station,
            grams,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            receiving_station(&config, &station)?;
            let out = runtime()?.block_on(receiving::weight(
                &store,
                &Site::of(&config),
                &station,
                grams,
                now,
            ));
            store.close();
            match out {
                Ok(s) => {
                    println!(
                        "{grams} g recorded for delivery {} line {} ({} lot {})",
                        s.delivery_id, s.line_no, s.sku, s.lot
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Count {
            config,
            delivery,
            line,
            count,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(receiving::count(&store, &delivery, line, count, now));
            store.close();
            match out {
                Ok(()) => {
                    println!("count {count} recorded");
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Split {
            config,
            delivery,
            line,
            lot,
            expiry,
            quantity,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(receiving::split(
                &store, &delivery, line, &lot, expiry, quantity, now,
            ));
            store.close();
            match out {
                Ok(new_line) => {
                    println!("split {quantity} off line {line} into new line {new_line}");
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Decide {
            config,
            delivery,
            line,
            staff,
            hold,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(receiving::decide_holding(
                &store,
                &Site::of(&config),
                &delivery,
                line,
                &staff,
                hold,
                now,
            ));
            store.close();
            match out {
                Ok(d) if json => print_json(&d).map(|_| Exit::Ok),
                Ok(d) => {
                    print!("{}", crate::cli_output::DecisionView(&d));
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Reverse {
            config,
            delivery,
            line,
            reason,
            staff,
            request_id,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let site = Site::of(&config);
            let request_id =
                request_id.unwrap_or_else(|| format!("cli-{delivery}-{line}-{}", now.millis()));
            let out = runtime()?.block_on(store.write(move |c| {
                // As on the bench and over MQTT: a staff member known as a clerk is refused.
                let member = crate::store::staff::staff(c, &staff)?;
                let supervisor = member.is_none_or(|m| m.role.supervises());
                let request = crate::store::receipt_reversal::ReversalRequest {
                    delivery_id: delivery,
                    line_no: line,
                    staff,
                    supervisor,
                    reason,
                    request_id,
                    window_minutes: site.reversal_window_minutes,
                };
                receiving::reverse_in(c, &site, &request, now)
            }));
            store.close();
            match out {
                Ok(done) if json => print_json(&done).map(|_| Exit::Ok),
                Ok(done) => {
                    println!(
                        "delivery {} line {}: receipt of {} ({} lot {}) reversed by {}{}; the line waits for a new decision",
                        done.delivery_id,
                        done.line_no,
                        done.quantity,
                        done.sku,
                        done.lot,
                        done.movement_id,
                        if done.repeated {
                            " (already, by this request)"
                        } else {
                            ""
                        }
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Release {
            config,
            delivery,
            line,
            release,
            reject,
            staff,
            reason,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let resolution = receiving::Resolution {
                delivery_id: delivery.clone(),
                line_no: line,
                release,
                reject,
                staff,
                reason,
            };
            let out = runtime()?.block_on(receiving::resolve(
                &store,
                &Site::of(&config),
                resolution,
                now,
            ));
            store.close();
            match out {
                Ok(()) => {
                    println!(
                        "delivery {delivery} line {line}: {release} released into stock, {reject} rejected"
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Dispute {
            config,
            delivery,
            staff,
            note,
            close,
            line,
            respond,
            photos_inspected,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            if respond || photos_inspected {
                let response = if photos_inspected {
                    DisputeResponse::PhotoInspection
                } else {
                    DisputeResponse::Note
                };
                let out = runtime()?.block_on(receiving::respond_to_dispute(
                    &store, &delivery, &staff, &note, response, now,
                ));
                store.close();
                return match out {
                    Ok(()) => {
                        println!(
                            "delivery {delivery}: response to the dispute recorded ({})",
                            response.as_str()
                        );
                        Ok(Exit::Ok)
                    }
                    Err(e) => answer(e),
                };
            }
            let out = runtime()?.block_on(receiving::dispute(
                &store, &delivery, &staff, &note, close, line, now,
            ));
            store.close();
            match out {
                Ok(()) if close => {
                    println!(
                        "delivery {delivery}: dispute closed; its evidence follows the retention policy again"
                    );
                    Ok(Exit::Ok)
                }
                Ok(()) => {
                    println!(
                        "delivery {delivery}: dispute opened; its photos and decisions are kept until it is closed"
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Close {
            config,
            delivery,
            staff,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let out = runtime()?.block_on(receiving::close(
                &store,
                &Site::of(&config),
                &delivery,
                &staff,
                now,
            ));
            store.close();
            match out {
                Ok(ds) if json => print_json(&ds).map(|_| Exit::Ok),
                Ok(ds) => {
                    println!(
                        "delivery {delivery} closed; {} line(s) decided now",
                        ds.len()
                    );
                    ds.iter()
                        .for_each(|d| print!("{}", crate::cli_output::DecisionView(d)));
                    Ok(Exit::Ok)
                }
                Err(e) => answer(e),
            }
        }
        ReceiveCommand::Photo {
            config,
            station,
            file,
            json,
        } => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read photo {}: {e}", file.display()))?;
            let config = Config::load(&config.config)?;
            telemetry::init(&config.log.level, log_format(format, Some(&config)));
            let vision = crate::vision::start(&config.vision)?;
            let store = daemon::open_store(&config)?;
            let desk = crate::vision::PhotoDesk {
                store: store.clone(),
                vision: std::sync::Arc::new(vision),
                data_dir: config.store.data_dir.clone(),
                site: Site::of(&config),
            };
            let out = runtime()?.block_on(crate::vision::photo_for_station(
                &desk, &station, bytes, now,
            ));
            store.close();
            desk.stop();
            match out {
                Ok(r) if json => print_json(&r).map(|_| Exit::Ok),
                Ok(r) => {
                    println!(
                        "photo {:?} recorded for delivery {} line {} ({} lot {}): {}",
                        r.evidence.verdict,
                        r.selected.delivery_id,
                        r.selected.line_no,
                        r.selected.sku,
                        r.selected.lot,
                        r.evidence.reasons.join("; ")
                    );
                    if let Some(problem) = &r.storage_problem {
                        eprintln!("warning: {problem}");
                    }
                    Ok(Exit::Ok)
                }
                Err(crate::vision::PhotoError::Receiving(e)) => answer(e),
                Err(e) => Err(e.into()),
            }
        }
        ReceiveCommand::Progress {
            config,
            delivery,
            json,
        } => {
            let (_config, store) = open_site(&config.config, format)?;
            let id = delivery.clone();
            let progress = store.read_blocking(move |c| deliveries::progress(c, &id));
            store.close();
            let progress = progress.map_err(|e| Failure {
                code: Exit::Failed,
                error: e.into(),
            })?;
            let (closed, lines) = progress.clone().unwrap_or_default();
            if json {
                print_json(&serde_json::json!({
                    "delivery_id": delivery,
                    "known": progress.is_some(),
                    "closed": closed,
                    "lines": lines,
                }))?;
            } else if progress.is_none() {
                println!("delivery {delivery} is not known: its manifest has not arrived");
            } else {
                print!(
                    "{}",
                    crate::cli_output::DeliveryProgress(&delivery, closed, &lines)
                );
            }
            Ok(Exit::Ok)
        }
        ReceiveCommand::Show {
            config,
            delivery,
            json,
            lang,
        } => {
            let Some(lang) = crate::catalogue::Lang::parse(&lang) else {
                return Err(Failure {
                    code: Exit::Invalid,
                    error: anyhow::anyhow!("language '{lang}' is not offered; use zh-CN or en"),
                });
            };
            let (config, store) = open_site(&config.config, format)?;
            let site = Site::of(&config);
            let (id, policy, today) = (delivery.clone(), site.receiving, site.today(now));
            let shown = store.read_blocking(move |c| {
                Ok::<_, ReceivingError>((
                    deliveries::decisions(c, &id)?,
                    deliveries::bench_delivery(c, &id, &policy, today)?,
                ))
            });
            store.close();
            let (decisions, bench) = match shown {
                Ok(x) => x,
                Err(e) => return answer(e),
            };
            if json {
                print_json(&decisions)?;
            } else {
                match bench {
                    None => println!(
                        "{}",
                        crate::catalogue::receiving::refusal(
                            &ReceivingError::UnknownDelivery(delivery),
                            lang
                        )
                    ),
                    Some(d) => print!(
                        "{}",
                        crate::cli_output::BenchDeliveryView {
                            delivery: &d,
                            lang,
                            zone: site.timezone
                        }
                    ),
                }
            }
            Ok(Exit::Ok)
        }
    }
}

/// Only a declared receiving station may receive (exit 2 otherwise: a usage error, checked
/// before anything is opened).
fn receiving_station(config: &Config, station: &str) -> Result<(), Failure> {
    config
        .station(station, crate::config::StationKind::Receiving)
        .map(|_| ())
        .map_err(|e| Failure {
            code: Exit::Invalid,
            error: e.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::super::Cli;
    use clap::Parser;

    #[test]
    fn reasons_from_a_list_are_read_by_name_and_anything_else_is_refused_with_the_list() {
        let decide = |hold: &str| {
            Cli::try_parse_from([
                "hub",
                "receive",
                "decide",
                "--delivery",
                "D",
                "--line",
                "1",
                "--staff",
                "s",
                "--hold",
                hold,
            ])
        };
        assert!(decide("label_unreadable").is_ok());
        let refused = decide("bogus").unwrap_err().to_string();
        assert!(refused.contains("bogus"), "{refused}");
        assert!(refused.contains("label_unreadable"), "{refused}");
        let reverse = |reason: &str| {
            Cli::try_parse_from([
                "hub",
                "receive",
                "reverse",
                "--delivery",
                "D",
                "--line",
                "1",
                "--staff",
                "s",
                "--reason",
                reason,
            ])
        };
        assert!(reverse("count_error").is_ok());
        let refused = reverse("label_unreadable").unwrap_err().to_string();
        assert!(refused.contains("count_error"), "{refused}");
    }
}
