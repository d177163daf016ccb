//! `hub station pair|list|revoke` and `hub staff add|list|disable`: who may use the station app.

use super::*;
use crate::store::staff::{self as staff_store, Role, StaffMember};

#[derive(Debug, Subcommand)]
pub(super) enum StationCommand {
    /// Print a one-time code (valid 10 minutes) that pairs a tablet to a declared station: open
    /// the app on the tablet (/station) and type the code.
    Pair {
        #[command(flatten)]
        config: ConfigArg,
        /// The station's id from [[stations]].
        station: String,
    },
    /// List paired tablets.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a paired tablet (by its device id), or every tablet of a station (by station id).
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// A device id from `hub station list`, or a station id.
        device: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum StaffCommand {
    /// Add a staff member, or change one (name, role, PIN; enables them again). The PIN is read
    /// from HUB_STAFF_PIN or, without it, from the first line of standard input.
    Add {
        #[command(flatten)]
        config: ConfigArg,
        /// Staff id, typed at sign-in.
        id: String,
        #[arg(long)]
        name: String,
        /// clerk, supervisor or manager (the store manager: the dashboard and what a supervisor
        /// may do).
        #[arg(long, default_value = "clerk")]
        role: String,
        /// Language of their screens: zh-CN or en.
        #[arg(long, default_value = "zh-CN")]
        lang: String,
    },
    /// List staff (never their PINs).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Disable a staff member: they can no longer sign in.
    Disable {
        #[command(flatten)]
        config: ConfigArg,
        id: String,
    },
}

fn usage(message: String) -> Failure {
    Failure {
        code: Exit::Invalid,
        error: anyhow::anyhow!(message),
    }
}

pub(super) fn station_command(
    command: StationCommand,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    match command {
        StationCommand::Pair { config, station } => {
            let (config, store) = open_site(&config.config, format)?;
            if !config.stations.iter().any(|s| s.id == station) {
                store.close();
                return Err(usage(format!(
                    "station '{station}' is not declared in this hub's config ([[stations]]); declared: {}",
                    config
                        .stations
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let code = crate::station_app::new_pairing_code();
            let now = crate::clock::now();
            let expires = hub_core::Timestamp(now.millis() + crate::station_app::PAIRING_VALID_MS);
            let (s, c) = (station.clone(), code.clone());
            store
                .write_blocking(move |conn| staff_store::add_pairing(conn, &s, &c, now, expires))?;
            store.close();
            let scheme = if config.status.tls.is_some() {
                "https"
            } else {
                "http"
            };
            println!(
                "pairing code for station {station}: {code} (valid until {}; open {scheme}://<hub>:<port>/station on the tablet and type it)",
                crate::catalogue::local_date_time(expires, config.site.timezone)
            );
            Ok(Exit::Ok)
        }
        StationCommand::List { config, json } => {
            let (config, store) = open_site(&config.config, format)?;
            let devices = store.read_blocking(staff_store::devices)?;
            store.close();
            if json {
                print_json(&devices)?;
            } else if devices.is_empty() {
                println!("no paired tablets (pair one with: hub station pair STATION)");
            } else {
                for d in &devices {
                    println!(
                        "{}  station {}  paired {}{}",
                        d.device_id,
                        d.station,
                        crate::catalogue::local_date_time(d.paired_at, config.site.timezone),
                        d.revoked_at
                            .map(|t| format!(
                                "  revoked {}",
                                crate::catalogue::local_date_time(t, config.site.timezone)
                            ))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(Exit::Ok)
        }
        StationCommand::Revoke { config, device } => {
            let (_config, store) = open_site(&config.config, format)?;
            let d = device.clone();
            let now = crate::clock::now();
            let n = store.write_blocking(move |c| staff_store::revoke(c, &d, now))?;
            store.close();
            if n == 0 {
                eprintln!(
                    "error: no paired tablet '{device}' (or none left for that station); see hub station list"
                );
                return Ok(Exit::Failed);
            }
            println!("revoked {n} tablet(s) for '{device}'");
            Ok(Exit::Ok)
        }
    }
}

pub(super) fn staff_command(
    command: StaffCommand,
    format: Option<LogFormatArg>,
) -> Result<Exit, Failure> {
    match command {
        StaffCommand::Add {
            config,
            id,
            name,
            role,
            lang,
        } => {
            let id = id.trim().to_owned();
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(usage(format!(
                    "staff id '{id}' must be 1-64 letters, digits, '-', '_' or '.'"
                )));
            }
            let Some(role) = Role::parse(&role) else {
                return Err(usage(format!(
                    "role '{role}' is not a role; use clerk, supervisor or manager"
                )));
            };
            let Some(lang) = crate::catalogue::Lang::parse(&lang) else {
                return Err(usage(format!(
                    "language '{lang}' is not offered; use zh-CN or en"
                )));
            };
            let pin = match std::env::var("HUB_STAFF_PIN") {
                Ok(pin) => pin,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let pin = pin.trim().to_owned();
            if !crate::station_app::valid_pin(&pin) {
                return Err(usage(
                    "the PIN must be 4 to 12 digits (give it in HUB_STAFF_PIN or on standard input)"
                        .into(),
                ));
            }
            let pin_hash = crate::station_app::hash_pin(&pin)?;
            let (_config, store) = open_site(&config.config, format)?;
            let member = StaffMember {
                staff_id: id.clone(),
                name,
                role,
                lang: lang.tag().to_owned(),
                disabled: false,
                failed_pins: 0,
                locked_until: None,
                pin_hash,
            };
            let now = crate::clock::now();
            store.write_blocking(move |c| staff_store::upsert_staff(c, &member, now))?;
            store.close();
            println!("staff {id} saved ({})", role.as_str());
            Ok(Exit::Ok)
        }
        StaffCommand::List { config, json } => {
            let (_config, store) = open_site(&config.config, format)?;
            let staff = store.read_blocking(staff_store::all_staff)?;
            store.close();
            if json {
                print_json(&staff)?;
            } else if staff.is_empty() {
                println!("no staff (add one with: hub staff add ID --name NAME --role clerk)");
            } else {
                for m in &staff {
                    println!(
                        "{}  {}  {}  {}{}",
                        m.staff_id,
                        m.name,
                        m.role.as_str(),
                        m.lang,
                        if m.disabled { "  disabled" } else { "" }
                    );
                }
            }
            Ok(Exit::Ok)
        }
        StaffCommand::Disable { config, id } => {
            let (_config, store) = open_site(&config.config, format)?;
            let now = crate::clock::now();
            let i = id.clone();
            let found = store.write_blocking(move |c| staff_store::disable_staff(c, &i, now))?;
            store.close();
            if !found {
                eprintln!("error: no staff member '{id}'; see hub staff list");
                return Ok(Exit::Failed);
            }
            println!("staff {id} disabled");
            Ok(Exit::Ok)
        }
    }
}
