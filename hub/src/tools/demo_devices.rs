//! The demo's receiving and pickup, driven through simulated devices.
//!
//! A simulated MT-SICS scale and a simulated scanner run as child processes on
//! pseudo-terminals (the same `hub sim …` a hardware-in-the-loop test uses); the hub's own
//! device adapters read them and feed the receiving workflow, exactly as on site. Photos are
//! checked by the caller's photo check (the vision adapter) and recorded on their line. Then
//! an order is checked and handed over at a pickup desk.

use crate::config::Config;
use crate::store::Store;
use crate::store::deliveries::{self, LineRecord};
use crate::tools::demo::Step;
use crate::workflows;
use crate::workflows::Site;
use hub_core::pickup::{OrderStatus, PickupItem, PickupOrder, hash_code};
use hub_core::receiving::{Manifest, ManifestLine, PhotoEvidence};
use hub_core::{Sku, SkuCode, StockUnit, Timestamp};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The real photos the demo shows the model: produce, and something that is not produce.
pub const ORANGE_JPG: &[u8] = include_bytes!("../../vision/testdata/images/orange.jpg");
pub const BABOON_JPG: &[u8] = include_bytes!("../../vision/testdata/images/baboon.jpg");

const STATION: &str = "dock-1";
/// Shelf life of the lots delivered through the devices, in days from the demo's "today".
pub const DELIVERED_LOT_EXPIRES_IN: u64 = 12;
const DELIVERY: &str = "D2001";
const ORANGE_GTIN: &str = "09506000134352";
const MILK_GTIN: &str = "06901234567892";

/// A simulated device process and its command pipe.
struct Sim {
    child: Child,
    stdin: ChildStdin,
}

impl Sim {
    async fn start(args: &[&str], link: &Path) -> anyhow::Result<Sim> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(args)
            .arg("--link")
            .arg(link)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("simulator has no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("simulator has no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = lines.next_line().await? {
                if line == "ready" {
                    return Ok(());
                }
            }
            anyhow::bail!("simulator {args:?} stopped before it was ready")
        });
        ready
            .await
            .map_err(|_| anyhow::anyhow!("simulator {args:?} did not start within 10 s"))??;
        // Keep draining its acknowledgements so its stdout never fills up.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Sim { child, stdin })
    }

    async fn say(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn stop(mut self) {
        let _ = self.say("quit").await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
    }
}

/// Where the demo's scans and weights come from.
#[allow(
    clippy::large_enum_variant,
    reason = "one short-lived value per demo run"
)]
enum Input {
    /// Simulated devices read by the hub's own device adapters.
    Devices {
        scale: Sim,
        scanner: Sim,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    },
    /// Typed in at the station, through the same receiving workflow.
    Typed { site: Site },
}

impl Input {
    async fn devices(base: &Config, store: &Store) -> anyhow::Result<Input> {
        let (config, scale_link, scanner_link) = devices_config(base, &base.store.data_dir)?;
        let scale = Sim::start(&["sim", "scale", "--protocol", "mt-sics"], &scale_link).await?;
        let scanner = Sim::start(&["sim", "scanner", "--terminator", "cr"], &scanner_link).await?;
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let health = crate::devices::spawn(
            &config,
            store,
            &crate::station_app::feed::StationFeed::new(),
            &tracker,
            &shutdown,
        );
        let input = Input::Devices {
            scale,
            scanner,
            tracker,
            shutdown,
        };
        let online = wait_for("the simulated devices to come online", || {
            let all = health.snapshot().iter().all(|d| d.online);
            async move { Ok(all.then_some(())) }
        })
        .await;
        match online {
            Ok(()) => Ok(input),
            Err(e) => {
                input.stop().await;
                Err(e)
            }
        }
    }

    async fn scan(&mut self, store: &Store, code: &str, now: Timestamp) -> anyhow::Result<()> {
        match self {
            Input::Devices { scanner, .. } => scanner.say(&format!("scan {code}")).await,
            Input::Typed { site } => {
                workflows::receiving::scan(store, site, STATION, code, now).await?;
                Ok(())
            }
        }
    }

    async fn weigh(&mut self, store: &Store, grams: i64, now: Timestamp) -> anyhow::Result<()> {
        match self {
            Input::Devices { scale, .. } if grams == 0 => scale.say("remove").await,
            Input::Devices { scale, .. } => scale.say(&format!("put {grams}g")).await,
            Input::Typed { .. } if grams == 0 => Ok(()),
            Input::Typed { site } => {
                workflows::receiving::weight(store, site, STATION, grams, now).await?;
                Ok(())
            }
        }
    }

    async fn stop(self) {
        if let Input::Devices {
            scale,
            scanner,
            tracker,
            shutdown,
        } = self
        {
            shutdown.cancel();
            tracker.close();
            tracker.wait().await;
            scale.stop().await;
            scanner.stop().await;
        }
    }
}

/// Polls `probe` until it returns `Some`, or fails after `what` took too long.
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the demo waited 15 s for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn line(store: &Store, line_no: u32) -> anyhow::Result<LineRecord> {
    Ok(store
        .read(move |c| deliveries::line_record(c, DELIVERY, line_no))
        .await?)
}

fn devices_config(base: &Config, dir: &Path) -> anyhow::Result<(Config, PathBuf, PathBuf)> {
    let (scale, scanner) = (dir.join("by-id-demo-scale"), dir.join("by-id-demo-scanner"));
    let text = format!(
        "{}\n[[devices]]\nname = \"demo-scale\"\nkind = \"scale\"\npath = \"{}\"\nprotocol = \"mt-sics\"\nstation = \"{STATION}\"\npoll_interval_ms = 100\n\
         [[devices]]\nname = \"demo-scanner\"\nkind = \"scanner\"\npath = \"{}\"\nterminator = \"cr\"\nstation = \"{STATION}\"\n",
        crate::tools::demo::DEMO_CONFIG,
        scale.display(),
        scanner.display()
    );
    let mut config = Config::parse(&text, dir)
        .map_err(|p| anyhow::anyhow!("demo device config is invalid: {p:?}"))?;
    config.store = base.store.clone();
    Ok((config, scale, scanner))
}

/// Receives delivery D2001 through the simulated devices, then hands an order over.
pub async fn receive_and_hand_over(
    store: &Store,
    base: &Config,
    vision: Option<std::sync::Arc<crate::vision::VisionService>>,
    now: Timestamp,
) -> anyhow::Result<Vec<Step>> {
    let site = Site::of(base);
    let photos = vision.map(|vision| crate::vision::PhotoDesk {
        store: store.clone(),
        vision,
        data_dir: base.store.data_dir.clone(),
        site: site.clone(),
    });
    let mut steps = Vec::new();
    let mut step = |what: &str, outcome: String| {
        steps.push(Step {
            what: what.to_owned(),
            outcome,
        })
    };

    let mut orange = Sku::new(
        SkuCode::new("ORANGE-5KG")?,
        "Navel oranges, 5 kg box",
        StockUnit::Piece,
    );
    orange.gtins = vec![ORANGE_GTIN.parse()?];
    orange.check_items_at_handover = true;
    orange.version = 2;
    let mut milk = Sku::new(SkuCode::new("MILK-1L")?, "Fresh milk 1 L", StockUnit::Piece);
    milk.gtins = vec![MILK_GTIN.parse()?];
    milk.version = 2;
    let today = site.today(now);
    let manifest_line = |line_no: u32, sku: &Sku, lot: &str, count: i64, grams: i64| ManifestLine {
        expiry: Some(today + chrono::Days::new(DELIVERED_LOT_EXPIRES_IN)),
        expected_count: Some(count),
        expected_weight_g: Some(grams),
        weight_tolerance_g: 150,
        ..ManifestLine::unexpected(line_no, sku.code.clone(), lot)
    };
    let manifest = Manifest {
        delivery_id: DELIVERY.into(),
        supplier: "Sunny Orchards Co-op".into(),
        expected_at: None,
        lines: vec![
            manifest_line(1, &orange, "OR2611B", 3, 15_000),
            manifest_line(2, &milk, "MK1125", 2, 2_100),
        ],
        cancelled: false,
        version: 1,
    };
    store
        .write(move |c| {
            crate::store::sku::upsert(c, &orange, now)?;
            crate::store::sku::upsert(c, &milk, now)?;
            deliveries::upsert_manifest(c, &manifest, now)?;
            Ok::<_, crate::store::StoreError>(())
        })
        .await?;
    step(
        "delivery manifest D2001 arrives (2 lines)",
        "stored; SKUs now carry their GTINs".into(),
    );

    let mut input = match Input::devices(base, store).await {
        Ok(devices) => {
            step(
                "simulated MT-SICS scale and scanner on pseudo-terminals",
                "probed and online".into(),
            );
            devices
        }
        Err(e) => {
            // E.g. under qemu-user without binfmt, a child of this binary cannot be started:
            // the same scans and weights are then typed in at the station instead.
            step(
                "simulated devices",
                format!("unavailable ({e}); scans and weights typed in at the station"),
            );
            Input::Typed { site: site.clone() }
        }
    };

    let received = async {
        // Line 1: oranges, three items, 15.05 kg, a photo of oranges.
        input.scan(store, &format!("{DELIVERY}/1"), now).await?;
        for i in 0..3 {
            input
                .scan(store, &format!("]C101{ORANGE_GTIN}21OR-{i}"), now)
                .await?;
        }
        wait_for("three orange trace codes", || async {
            Ok((line(store, 1).await?.bound_codes.len() == 3).then_some(()))
        })
        .await?;
        input.weigh(store, 15_050, now).await?;
        let grams = stable_weight(store, 1).await?;
        step(
            "scan crate label D2001/1 and 3 orange items; crate on the scale",
            format!("3 codes bound; stable {grams} g"),
        );
        if let Some(what) = check_photo(photos.as_ref(), ORANGE_JPG, now).await? {
            step("photo of the orange crate checked by the model", what);
        }
        input.weigh(store, 0, now).await?;

        // Line 2: milk, one item scanned twice (a duplicate), 2.0 kg, a photo that is no milk.
        input.scan(store, &format!("{DELIVERY}/2"), now).await?;
        input
            .scan(store, &format!("]C101{MILK_GTIN}21MK-7"), now)
            .await?;
        input
            .scan(store, &format!("]C101{MILK_GTIN}21MK-7"), now)
            .await?;
        wait_for("the duplicate milk code to be flagged", || async {
            Ok((!line(store, 2).await?.flagged.is_empty()).then_some(()))
        })
        .await?;
        input.weigh(store, 2_000, now).await?;
        let grams = stable_weight(store, 2).await?;
        step(
            "scan D2001/2, one milk item twice; crate on the scale",
            format!("second scan FLAGGED as already bound; stable {grams} g"),
        );
        if let Some(what) = check_photo(photos.as_ref(), BABOON_JPG, now).await? {
            step(
                "photo of the milk crate (shows a baboon) checked by the model",
                what,
            );
        }
        anyhow::Ok(())
    }
    .await;
    input.stop().await;
    received?;

    let decisions = workflows::receiving::close(store, &site, DELIVERY, "staff-li", now).await?;
    for d in &decisions {
        let reasons: Vec<String> = d
            .decision
            .reasons
            .iter()
            .map(|r| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v["code"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        step(
            &format!("decide D2001 line {} ({} lot {})", d.line_no, d.sku, d.lot),
            format!(
                "{} — accepted {}, held {}{}",
                d.decision.outcome.as_str(),
                d.decision.accepted,
                d.decision.held,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            ),
        );
    }

    // A person reviews what the hub held. Oranges held only for want of a photo check are
    // looked at by hand and released; anything suspicious stays in quarantine.
    for d in decisions
        .iter()
        .filter(|d| d.decision.held > 0 && d.flagged_codes.is_empty() && d.photos.is_empty())
    {
        let resolution = workflows::receiving::Resolution {
            delivery_id: DELIVERY.into(),
            line_no: d.line_no,
            release: d.decision.held,
            reject: 0,
            staff: "staff-li".into(),
            reason: "photo checked by hand".into(),
        };
        workflows::receiving::resolve(store, &site, resolution, now).await?;
        step(
            &format!("staff reviews held line {} by hand", d.line_no),
            format!("{} released into stock, reason recorded", d.decision.held),
        );
    }

    // Pickup: a customer collects one box of oranges with code 246810.
    let salt = "5eed5eed";
    let order = PickupOrder {
        order_id: "P6001".into(),
        site: base.site.id.clone(),
        code_hash: hash_code(salt, "246810").unwrap_or_default(),
        code_salt: salt.into(),
        items: vec![PickupItem {
            sku: SkuCode::new("ORANGE-5KG")?,
            quantity: 1,
            lot: None,
            trace_codes: vec![],
            unit_price_cents: None,
        }],
        opens_at: now.plus_millis(-3_600_000),
        closes_at: now.plus_millis(86_400_000),
        status: OrderStatus::Open,
        version: 1,
        phone_tail: Some("8888".into()),
    };
    store
        .write(move |c| crate::store::pickup_orders::upsert_order(c, &order, now))
        .await?;
    let typed = workflows::pickup::CodeEntry {
        code: "135790".into(),
        phone_tail: Some("8888".into()),
        ..Default::default()
    };
    let wrong = workflows::pickup::check(store, &site, "desk-1", &typed, now).await?;
    step(
        "pickup desk: customer types 135790, phone tail 8888",
        crate::catalogue::code_check(&wrong, crate::catalogue::Lang::En, site.timezone),
    );
    let scanned = workflows::pickup::CodeEntry::scanned("P6001:246810");
    let right = workflows::pickup::check(store, &site, "desk-1", &scanned, now).await?;
    step(
        "pickup desk: customer shows QR P6001:246810",
        crate::catalogue::code_check(&right, crate::catalogue::Lang::En, site.timezone),
    );
    let request = crate::store::pickup_orders::HandoverRequest {
        trace_codes: vec![format!("(01){ORANGE_GTIN}(21)OR-0")],
        staff: Some("staff-wang".into()),
        ..Default::default()
    };
    let handover =
        workflows::pickup::handover(store, &site, "desk-1", "P6001", request, now).await?;
    step(
        "hand P6001 over, scanning the item's trace code",
        format!(
            "handed over at {} by {} exactly once",
            handover.station,
            handover.staff.as_deref().unwrap_or("-")
        ),
    );
    let again =
        workflows::pickup::handover(store, &site, "desk-2", "P6001", Default::default(), now).await;
    step(
        "a second desk tries to hand P6001 over",
        match again {
            Ok(_) => "HANDED OVER TWICE".into(),
            Err(e) => format!(
                "refused: {}",
                crate::catalogue::handover_error(&e, crate::catalogue::Lang::En, site.timezone)
            ),
        },
    );
    let round = workflows::alerts::run_checks(store, &site, &base.alerts, now).await?;
    step(
        "periodic alert checks",
        format!(
            "{} stock action(s), {} alert change(s)",
            round.stock_actions, round.alert_changes
        ),
    );
    Ok(steps)
}

/// Waits until line `line_no` has a stable weight recorded and returns it.
async fn stable_weight(store: &Store, line_no: u32) -> anyhow::Result<i64> {
    wait_for(&format!("a stable weight on line {line_no}"), || async {
        Ok(line(store, line_no).await?.weights_g.last().copied())
    })
    .await
}

/// Checks a photo at the station (when vision runs) and says what the model made of it.
async fn check_photo(
    photos: Option<&crate::vision::PhotoDesk>,
    photo: &[u8],
    now: Timestamp,
) -> anyhow::Result<Option<String>> {
    let Some(desk) = photos else {
        return Ok(None);
    };
    let recorded = crate::vision::photo_for_station(desk, STATION, photo.to_vec(), now).await?;
    Ok(Some(format!(
        "{:?}: {}",
        recorded.evidence.verdict,
        top_label(&recorded.evidence)
    )))
}

fn top_label(e: &PhotoEvidence) -> String {
    e.top_k
        .first()
        .map(|t| format!("top class '{}' p={:.2}", t.label, t.probability))
        .unwrap_or_else(|| "no classes".into())
}
