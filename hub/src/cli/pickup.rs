//! `hub pickup …`: load orders, check a presented code, hand an order over.

use super::*;

#[derive(Debug, Subcommand)]
pub(super) enum PickupCommand {
    /// Check a pickup code: the QR payload ORDER:CODE, or the typed code with --order or
    /// --phone-tail (a code alone is looked up only where pickup.allow_code_only is set).
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// The station (desk) checking the code; wrong codes are counted per station and for
        /// the site.
        #[arg(long)]
        station: String,
        code: String,
        /// The order number the customer gives with a typed code.
        #[arg(long)]
        order: Option<String>,
        /// The last 4 digits of the customer's phone number (尾号), with a typed code.
        #[arg(long)]
        phone_tail: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Lift a station's lockout after wrong codes (or, with --site, the site-wide pause) early:
    /// a supervisor's action, recorded with who and why.
    Unlock {
        #[command(flatten)]
        config: ConfigArg,
        /// The locked station.
        #[arg(long, required_unless_present = "site", conflicts_with = "site")]
        station: Option<String>,
        /// Lift the site-wide pause instead.
        #[arg(long)]
        site: bool,
        /// The supervisor lifting it.
        #[arg(long)]
        staff: String,
        #[arg(long, default_value = "lifted by a supervisor")]
        reason: String,
    },
    /// Undo a handover within `pickup.undo_window_minutes` (a supervisor's correction): the
    /// goods come back to stock, the original stays in the journal, the order is open again.
    /// Of an order handed over in parts, the last part is undone (earlier parts stand).
    Undo {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        order: String,
        /// The supervisor undoing it.
        #[arg(long)]
        staff: String,
        /// wrong_customer, customer_returned or clerk_mistake.
        #[arg(long)]
        reason: String,
    },
    /// Hand an order over (after its code was checked), exactly once.
    Handover {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        station: String,
        #[arg(long)]
        order: String,
        /// A trace code scanned while handing over (repeatable).
        #[arg(long = "item")]
        items: Vec<String>,
        /// A refused quantity: LINE:QTY:stock|loss[:reason], or LINE:QTY:REASON with a reason
        /// from the list (customer_declined, damaged, wrong_items, identity; damaged goods are
        /// written off, the rest go back to stock). Order lines are numbered from 1.
        #[arg(long = "refuse")]
        refusals: Vec<String>,
        /// A weighed by-weight line: LINE:GRAMS (lines from 1).
        #[arg(long = "weigh")]
        weighings: Vec<String>,
        /// A partial handover: LINE:QTY leaves now (repeatable; lines from 1); lines not named
        /// stay open (unless weighed) for a later check and handover.
        #[arg(long = "part")]
        parts: Vec<String>,
        /// Who hands the order over (staff id, kept with the handover).
        #[arg(long)]
        staff: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Load pickup orders from a JSON file: a `pickup_order` command exactly as central sends
    /// it (docs/mqtt.md), or an array of them. Every error is listed at once.
    Import {
        #[command(flatten)]
        config: ConfigArg,
        file: PathBuf,
    },
}

pub(super) fn parse_part(text: &str) -> anyhow::Result<crate::store::pickup_orders::Part> {
    let Some((line, quantity)) = text.split_once(':') else {
        anyhow::bail!("--part {text}: expected LINE:QTY (order lines are numbered from 1)");
    };
    let quantity: i64 = quantity.trim().parse().map_err(|_| {
        anyhow::anyhow!("--part {text}: '{quantity}' is not a whole number of units")
    })?;
    Ok(crate::store::pickup_orders::Part {
        line_no: line_number(line, "--part", text)?,
        quantity,
    })
}

pub(super) fn parse_refusal(text: &str) -> anyhow::Result<crate::store::pickup_orders::Refusal> {
    let mut parts = text.splitn(4, ':');
    let (Some(line), Some(quantity), Some(to)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("--refuse {text}: expected LINE:QTY:stock|loss[:reason] or LINE:QTY:REASON");
    };
    // A reason from the list says where the goods go (the station app's rule).
    let (to, listed) = match to {
        "stock" => (hub_core::event::RefusedTo::Stock, None),
        "loss" => (hub_core::event::RefusedTo::Loss, None),
        other => match hub_core::pickup::refusal_destination(other) {
            Some(to) => (to, Some(other)),
            None => anyhow::bail!(
                "--refuse {text}: '{other}' must be stock, loss or a reason from the list ({})",
                hub_core::pickup::REFUSAL_REASONS.join(", ")
            ),
        },
    };
    let reason = match listed {
        Some(reason) => reason.to_owned(),
        None => parts.next().unwrap_or("").to_owned(),
    };
    Ok(crate::store::pickup_orders::Refusal {
        line_no: line_number(line, "--refuse", text)?,
        quantity: quantity
            .parse()
            .map_err(|_| anyhow::anyhow!("--refuse {text}: quantity must be a number"))?,
        to,
        reason,
    })
}

pub(super) fn parse_weighing(text: &str) -> anyhow::Result<crate::store::pickup_orders::Weighing> {
    let (line, grams) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--weigh {text}: expected LINE:GRAMS"))?;
    Ok(crate::store::pickup_orders::Weighing {
        line_no: line_number(line, "--weigh", text)?,
        grams: grams
            .parse()
            .map_err(|_| anyhow::anyhow!("--weigh {text}: grams must be a number"))?,
    })
}

fn line_number(line: &str, flag: &str, text: &str) -> anyhow::Result<usize> {
    match line.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => anyhow::bail!("{flag} {text}: LINE must be an order line number, from 1"),
    }
}

fn pickup_failure(e: crate::workflows::pickup::PickupError) -> Failure {
    use crate::workflows::pickup::PickupError;
    match e {
        PickupError::Station(e) => Failure {
            code: Exit::Invalid,
            error: e.into(),
        },
        PickupError::Store(e) => e.into(),
    }
}

pub(super) fn pickup_command(
    command: PickupCommand,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    use crate::store::pickup_orders::{HandoverError, HandoverRequest};
    match command {
        PickupCommand::Check {
            config,
            station,
            code,
            order,
            phone_tail,
            json,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let entry = crate::workflows::pickup::CodeEntry {
                code,
                order_id: order,
                phone_tail,
            };
            let check = runtime()?
                .block_on(crate::workflows::pickup::check(
                    &store,
                    &Site::of(&config),
                    &station,
                    &entry,
                    crate::clock::now(),
                ))
                .map_err(pickup_failure)?;
            let pick = match &check {
                hub_core::pickup::CodeCheck::Found { order_id } => {
                    let id = order_id.clone();
                    let today = Site::of(&config).today(crate::clock::now());
                    store.read_blocking(move |c| {
                        crate::store::pickup_orders::pick_list(c, &id, today)
                    })?
                }
                _ => vec![],
            };
            store.close();
            if json {
                print_json(&serde_json::json!({"check": check, "pick": pick}))?;
            } else {
                println!(
                    "{}",
                    crate::catalogue::code_check(
                        &check,
                        crate::catalogue::Lang::En,
                        config.site.timezone
                    )
                );
                for p in &pick {
                    let from = match (&p.lot, &p.expiry) {
                        (Some(lot), Some(expiry)) => format!("lot {lot} (expires {expiry})"),
                        (Some(lot), None) => format!("lot {lot}"),
                        _ => "any lot".into(),
                    };
                    println!("  take {} x{} from {from}", p.sku, p.quantity);
                }
            }
            Ok(if check.is_found() {
                Exit::Ok
            } else {
                Exit::Refused
            })
        }
        PickupCommand::Handover {
            config,
            station,
            order,
            items,
            refusals,
            weighings,
            parts,
            staff,
            json,
        } => {
            let request = HandoverRequest {
                staff,
                partial: parts
                    .iter()
                    .map(|p| parse_part(p))
                    .collect::<Result<_, _>>()
                    .map_err(|e| Failure {
                        code: Exit::Invalid,
                        error: e,
                    })?,
                trace_codes: items,
                refusals: refusals
                    .iter()
                    .map(|r| parse_refusal(r))
                    .collect::<Result<_, _>>()
                    .map_err(|e| Failure {
                        code: Exit::Invalid,
                        error: e,
                    })?,
                weighings: weighings
                    .iter()
                    .map(|w| parse_weighing(w))
                    .collect::<Result<_, _>>()
                    .map_err(|e| Failure {
                        code: Exit::Invalid,
                        error: e,
                    })?,
            };
            let (config, store) = open_site(&config.config, format)?;
            let outcome = runtime()?.block_on(crate::workflows::pickup::handover(
                &store,
                &Site::of(&config),
                &station,
                &order,
                request,
                crate::clock::now(),
            ));
            store.close();
            match outcome {
                Ok(handover) => {
                    if json {
                        print_json(&handover)?;
                    } else {
                        println!(
                            "order {} {} at station {}{}",
                            handover.order_id,
                            if handover.open.is_empty() {
                                "handed over"
                            } else {
                                "partly handed over (the rest stays open)"
                            },
                            handover.station,
                            handover
                                .staff
                                .as_deref()
                                .map(|s| format!(" by {s}"))
                                .unwrap_or_default()
                        );
                        for (i, l) in handover.lines.iter().enumerate() {
                            let open = handover
                                .open
                                .get(i)
                                .map(|o| format!("  open {o:>4}"))
                                .unwrap_or_default();
                            println!(
                                "  {:<16} handed {:>6} of {:>6}  refused {:>4}{open}",
                                l.sku, l.handed_over, l.ordered, l.refused
                            );
                        }
                    }
                    Ok(Exit::Ok)
                }
                Err(HandoverError::Store(e)) => Err(e.into()),
                Err(HandoverError::Station(e)) => Err(Failure {
                    code: Exit::Invalid,
                    error: e.into(),
                }),
                Err(HandoverError::Ledger(crate::store::ledger::RecordError::Store(e))) => {
                    Err(e.into())
                }
                Err(refused) => {
                    if json {
                        print_json(&serde_json::json!({"refused": refused.to_string()}))?;
                    } else {
                        eprintln!(
                            "refused: {}",
                            crate::catalogue::handover_error(
                                &refused,
                                crate::catalogue::Lang::En,
                                config.site.timezone
                            )
                        );
                    }
                    Ok(Exit::Refused)
                }
            }
        }
        PickupCommand::Undo {
            config,
            order,
            staff,
            reason,
        } => {
            use crate::store::handover_undo::UndoError;
            let (config, store) = open_site(&config.config, format)?;
            let undone = runtime()?.block_on(crate::workflows::pickup::undo_handover(
                &store,
                &Site::of(&config),
                &order,
                &staff,
                &reason,
                crate::clock::now(),
            ));
            store.close();
            match undone {
                Ok(u) => {
                    println!(
                        "handover of order {} undone by {staff}: {} return movement(s) ({}); {}",
                        u.order_id,
                        u.returned.len(),
                        u.returned.join(", "),
                        if u.status == "open" {
                            "the order is open again".to_owned()
                        } else {
                            // An order handed over in parts: only its last part was undone.
                            format!(
                                "the last part was undone, earlier parts stand; still open per line: {:?}",
                                u.open
                            )
                        }
                    );
                    Ok(Exit::Ok)
                }
                Err(UndoError::Store(e)) => Err(e.into()),
                Err(e) => {
                    eprintln!("refused: {e}");
                    Ok(Exit::Refused)
                }
            }
        }
        PickupCommand::Unlock {
            config,
            station,
            site: _,
            staff,
            reason,
        } => {
            let (config, store) = open_site(&config.config, format)?;
            let was_locked = runtime()?
                .block_on(crate::workflows::pickup::unlock(
                    &store,
                    &Site::of(&config),
                    station.as_deref(),
                    &staff,
                    &reason,
                    crate::clock::now(),
                ))
                .map_err(pickup_failure)?;
            store.close();
            let what = station
                .as_deref()
                .map_or("the site-wide pause".to_owned(), |s| format!("station {s}"));
            if was_locked {
                println!("{what}: lockout lifted by {staff}");
            } else {
                println!("{what} was not locked; its wrong-code count starts over");
            }
            Ok(Exit::Ok)
        }
        PickupCommand::Import { config, file } => {
            if let Some(commands) = super::import::read_commands(
                &file,
                hub_contract::command::CommandKind::PickupOrder,
            )? {
                return super::import::apply_commands(&config.config, format, commands);
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let orders: Vec<hub_core::pickup::PickupOrder> =
                serde_json::from_str(&text).map_err(|e| Failure {
                    code: Exit::Invalid,
                    error: anyhow::anyhow!(
                        "{} is not a JSON array of pickup orders: {e}",
                        file.display()
                    ),
                })?;
            let (_config, store) = open_site(&config.config, format)?;
            let now = crate::clock::now();
            let count = orders.len();
            let outcomes = store.write_blocking(move |c| {
                orders
                    .iter()
                    .map(|o| crate::store::pickup_orders::upsert_order(c, o, now))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            store.close();
            let stale = outcomes
                .iter()
                .filter(|o| {
                    !matches!(
                        o,
                        crate::store::pickup_orders::OrderUpsert::Inserted
                            | crate::store::pickup_orders::OrderUpsert::Updated
                    )
                })
                .count();
            println!(
                "{count} order(s) read, {} stored, {stale} skipped (older version or already collected)",
                count - stale
            );
            Ok(Exit::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_refusal;
    use hub_core::event::RefusedTo;

    #[test]
    fn a_refusal_names_where_the_goods_go_or_a_reason_from_the_list_that_says_it() {
        let r = parse_refusal("2:1:loss:dented").unwrap();
        assert_eq!(
            (r.line_no, r.quantity, r.to, r.reason.as_str()),
            (2, 1, RefusedTo::Loss, "dented")
        );
        let r = parse_refusal("1:3:damaged").unwrap();
        assert_eq!((r.to, r.reason.as_str()), (RefusedTo::Loss, "damaged"));
        let r = parse_refusal("1:1:customer_declined").unwrap();
        assert_eq!(
            (r.to, r.reason.as_str()),
            (RefusedTo::Stock, "customer_declined")
        );
        let e = parse_refusal("1:1:dented").unwrap_err().to_string();
        assert!(e.contains("stock, loss or a reason from the list"), "{e}");
    }
}
