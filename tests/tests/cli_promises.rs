//! Promises of the README's command table, each through the `hub` binary as staff use it:
//! `hub receive split`, `hub pickup handover --refuse/--weigh`, `hub report`,
//! `hub alerts --check`, a station's lockout holding across hub processes (every CLI command
//! is a fresh process that opens the database), and `hub sync check` against a real Mosquitto.

use serde_json::{Value, json};
use std::process::Output;
use tests::{hub, stderr, stdout};

const SALT: &str = "0a0b0c0d";
const CODE: &str = "123456";

struct Site {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    config: String,
}

impl Site {
    fn new(extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "[site]\nid = \"cli-site\"\n[store]\ndata_dir = \"data\"\n\
                 [receiving]\nphoto_required = false\nmin_days_to_expiry = 0\n\
                 [alerts]\nexpiry_warn_days = 5\n\
                 [[stations]]\nid = \"dock\"\nkind = \"receiving\"\n\
                 [[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\n\
                 [[stations]]\nid = \"desk-2\"\nkind = \"pickup\"\n{extra}"
            ),
        )
        .unwrap();
        Site {
            dir: dir.path().to_owned(),
            config: config.to_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--config", &self.config]);
        hub(&all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hub {args:?} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {text}"))
    }

    fn file(&self, name: &str, value: Value) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Rice (pieces) and pork (by weight, grams) in master data.
    fn skus(&self) {
        let skus = self.file(
            "skus.json",
            json!([
                {"code": "RICE", "name": "Rice 5 kg", "unit": "piece", "gtins": [],
                 "allow_negative": false, "check_items_at_handover": false, "version": 1},
                {"code": "PORK", "name": "Pork belly", "unit": "gram", "gtins": [],
                 "allow_negative": false, "check_items_at_handover": false, "version": 1}
            ]),
        );
        self.ok(&["sku", "import", &skus]);
    }

    fn order(&self, id: &str, items: Value) {
        let hash = {
            use std::io::Write;
            let mut child = std::process::Command::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut salted = vec![0x0a, 0x0b, 0x0c, 0x0d];
            salted.extend_from_slice(CODE.as_bytes());
            child.stdin.take().unwrap().write_all(&salted).unwrap();
            let out = child.wait_with_output().unwrap();
            String::from_utf8(out.stdout).unwrap()[..64].to_owned()
        };
        let orders = self.file(
            &format!("{id}.json"),
            json!([{
                "order_id": id, "site": "cli-site", "code_salt": SALT, "code_hash": hash,
                "items": items, "opens_at": 0, "closes_at": 4_102_444_800_000i64,
                "status": {"state": "open"}, "version": 1
            }]),
        );
        self.ok(&["pickup", "import", &orders]);
    }
}

/// (lot, on hand) of every batch of `sku` in `hub stock --json`.
fn lots(site: &Site, sku: &str) -> Vec<(String, i64)> {
    site.json(&["stock"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sku"] == sku)
        .flat_map(|s| s["batches"].as_array().unwrap().clone())
        .map(|b| {
            (
                b["lot"].as_str().unwrap().to_owned(),
                b["on_hand"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Delivery D1: 100 rice of which 40 are split off into lot R-2, and 5 kg of pork weighed.
fn receive_rice_split_and_pork(site: &Site) {
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({
            "delivery_id": "D1", "supplier": "Grain Co", "version": 1,
            "lines": [
                {"line_no": 1, "sku": "RICE", "lot": "R-1", "expiry": "2030-01-31", "expected_count": 100},
                {"line_no": 2, "sku": "PORK", "lot": "K-1", "expiry": "2030-01-31",
                 "expected_weight_g": 5000, "weight_tolerance_g": 100}
            ]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    let split = site.ok(&[
        "receive",
        "split",
        "--delivery",
        "D1",
        "--line",
        "1",
        "--lot",
        "R-2",
        "--expiry",
        "2030-02-28",
        "--quantity",
        "40",
    ]);
    assert!(
        split.contains("split 40 off line 1 into new line 3"),
        "{split}"
    );
    site.ok(&["receive", "count", "--delivery", "D1", "--line", "1", "60"]);
    site.ok(&["receive", "count", "--delivery", "D1", "--line", "3", "40"]);
    for line in ["1", "3"] {
        let decided = site.ok(&[
            "receive",
            "decide",
            "--delivery",
            "D1",
            "--line",
            line,
            "--staff",
            "li.wei",
        ]);
        assert!(decided.contains("ACCEPTED (accepted"), "{decided}");
    }
    site.ok(&["receive", "scan", "--station", "dock", "D1/2"]);
    site.ok(&["receive", "weight", "--station", "dock", "5000"]);
    let decided = site.ok(&[
        "receive",
        "decide",
        "--delivery",
        "D1",
        "--line",
        "2",
        "--staff",
        "li.wei",
    ]);
    assert!(decided.contains("ACCEPTED (accepted 5000"), "{decided}");
}

#[test]
fn a_split_line_is_received_as_two_lots() {
    let site = Site::new("");
    receive_rice_split_and_pork(&site);
    assert_eq!(
        lots(&site, "RICE"),
        [("R-1".to_owned(), 60), ("R-2".to_owned(), 40)]
    );
    let shown = site.json(&["receive", "show", "--delivery", "D1"]);
    let line3 = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["line_no"] == 3)
        .unwrap_or_else(|| panic!("no line 3 decided: {shown}"));
    assert_eq!(line3["lot"], "R-2", "{line3}");
}

#[test]
fn a_handover_with_a_refused_item_and_a_weighed_line_takes_only_what_left() {
    let site = Site::new("");
    receive_rice_split_and_pork(&site);
    site.order(
        "P1",
        json!([{"sku": "RICE", "quantity": 3}, {"sku": "PORK", "quantity": 500}]),
    );
    site.ok(&[
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P1:{CODE}"),
    ]);
    let handed = site.ok(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P1",
        "--refuse",
        "1:1:stock",
        "--weigh",
        "2:480",
        "--staff",
        "wu.fang",
    ]);
    assert!(
        handed.contains("handed over at station desk-1 by wu.fang"),
        "{handed}"
    );
    // The refused rice went back to stock; the pork left by its weight, not the ordered 500 g.
    assert_eq!(
        lots(&site, "RICE"),
        [("R-1".to_owned(), 58), ("R-2".to_owned(), 40)]
    );
    assert_eq!(lots(&site, "PORK"), [("K-1".to_owned(), 4520)]);
    // A refusal that is a loss is written off.
    site.order("P2", json!([{"sku": "RICE", "quantity": 2}]));
    site.ok(&[
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P2:{CODE}"),
    ]);
    site.ok(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P2",
        "--refuse",
        "1:1:loss:bag torn",
    ]);
    assert_eq!(
        lots(&site, "RICE"),
        [("R-1".to_owned(), 56), ("R-2".to_owned(), 40)]
    );
    // Bad input is a clear usage error.
    let out = site.run(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P2",
        "--refuse",
        "1:x:stock",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("quantity must be a number"),
        "{}",
        stderr(&out)
    );

    // The report counts what happened today, per unit kind (grams and pieces are never added).
    let report = site.json(&["report"]);
    assert_eq!(report["receipts"], 3, "{report}");
    assert_eq!(report["handovers"], 2, "{report}");
    assert_eq!(report["acceptance_pass_rate"], 1.0, "{report}");
    let unit = |name: &str| {
        report["by_unit"]
            .as_array()
            .and_then(|units| units.iter().find(|u| u["unit"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} figures: {report}"))
    };
    let (grams, pieces) = (unit("gram"), unit("piece"));
    assert_eq!(grams["received_quantity"], 5000, "{report}");
    assert_eq!(grams["handed_over_quantity"], 480, "{report}");
    assert_eq!(grams["lost_quantity"], 0, "{report}");
    assert_eq!(pieces["received_quantity"], 100, "{report}");
    assert_eq!(pieces["handed_over_quantity"], 2 + 1, "{report}");
    assert_eq!(pieces["lost_quantity"], 1, "{report}");
    let text = site.ok(&["report"]);
    assert!(
        text.lines().any(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words == ["handovers", "2"]
        }),
        "{text}"
    );
}

#[test]
fn alerts_check_runs_the_periodic_checks_and_finds_a_lot_near_its_expiry() {
    let site = Site::new("");
    site.skus();
    // Two days from now (UTC): one or two days in the site's time zone, never past.
    let soon = (std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 86_400))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let soon = {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", &format!("@{soon}"), "+%F"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let manifest = site.file(
        "soon.json",
        json!({
            "delivery_id": "D2", "supplier": "Grain Co", "version": 1,
            "lines": [{"line_no": 1, "sku": "RICE", "lot": "R-SOON", "expiry": soon, "expected_count": 5}]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    site.ok(&["receive", "count", "--delivery", "D2", "--line", "1", "5"]);
    site.ok(&[
        "receive",
        "decide",
        "--delivery",
        "D2",
        "--line",
        "1",
        "--staff",
        "li.wei",
    ]);
    // Expiry is a periodic check: the listing alone has not run it.
    assert_eq!(site.json(&["alerts"]), json!([]));
    let alerts = site.json(&["alerts", "--check"]);
    assert_eq!(alerts[0]["kind"], "near_expiry", "{alerts}");
    assert_eq!(alerts[0]["subject"], "RICE/R-SOON", "{alerts}");
    // It is kept in the alert book.
    assert_eq!(site.json(&["alerts"]), alerts);
    // People read it in the catalogue's words, zh-CN by default, in the site's time zone.
    let zh = site.ok(&["alerts"]);
    assert!(
        zh.contains("[黄] 临期 · RICE/R-SOON · 自 ")
            && zh.contains("处理：")
            && zh.contains("Asia/Shanghai"),
        "{zh}"
    );
    assert!(
        !zh.contains("near_expiry") && !zh.contains("expires"),
        "{zh}"
    );
    let en = site.ok(&["alerts", "--lang", "en"]);
    assert!(
        en.contains("[yellow] Near expiry · RICE/R-SOON · since ") && en.contains("To do: "),
        "{en}"
    );
    let unknown = site.run(&["alerts", "--lang", "fr"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("not offered"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn a_station_locked_out_by_wrong_codes_stays_locked_in_the_next_hub_process() {
    let site = Site::new("[pickup]\nmax_wrong_codes = 3\n");
    site.skus();
    site.order("P1", json!([{"sku": "RICE", "quantity": 1}]));
    for wrong in ["000001", "000002", "000003"] {
        let out = site.run(&[
            "pickup",
            "check",
            "--station",
            "desk-1",
            &format!("P1:{wrong}"),
        ]);
        assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    }
    // Every command is a new process that opens the database: the lockout is stored.
    let out = site.run(&[
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P1:{CODE}"),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("locked after too many wrong codes"),
        "{}",
        stdout(&out)
    );
    // Another desk is not locked.
    let out = site.run(&[
        "pickup",
        "check",
        "--station",
        "desk-2",
        &format!("P1:{CODE}"),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn sync_check_connects_to_the_configured_broker_once_or_says_why_not() {
    use hub_mqtt::brokers::{Mosquitto, MosquittoOptions};
    let broker_dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(broker_dir.path(), &MosquittoOptions::default()).unwrap();
    let site = Site::new(&format!(
        "[uplink]\nbroker = \"mqtt://127.0.0.1:{}\"\n",
        broker.port()
    ));
    let out = site.run(&["sync", "check"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let free = hub_mqtt::brokers::free_port().unwrap();
    let nowhere = Site::new(&format!("[uplink]\nbroker = \"mqtt://127.0.0.1:{free}\"\n"));
    let out = nowhere.run(&["sync", "check"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains(&free.to_string()), "names the broker: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn receive_progress_shows_undecided_lines_with_what_was_observed() {
    let site = Site::new("");
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({
            "delivery_id": "D3", "supplier": "Grain Co", "version": 1,
            "lines": [
                {"line_no": 1, "sku": "RICE", "lot": "R-3", "expiry": "2030-01-31", "expected_count": 10},
                {"line_no": 2, "sku": "PORK", "lot": "K-3", "expiry": "2030-01-31",
                 "expected_weight_g": 2000, "weight_tolerance_g": 50}
            ]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    site.ok(&["receive", "count", "--delivery", "D3", "--line", "1", "10"]);
    site.ok(&["receive", "scan", "--station", "dock", "D3/2"]);
    site.ok(&["receive", "weight", "--station", "dock", "1990"]);
    // `show` lists decisions only; nothing is decided yet.
    assert_eq!(
        site.json(&["receive", "show", "--delivery", "D3"]),
        json!([])
    );
    let progress = site.json(&["receive", "progress", "--delivery", "D3"]);
    assert_eq!(progress["known"], true, "{progress}");
    let lines = progress["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{progress}");
    assert_eq!(lines[0]["decided"], false);
    assert_eq!(lines[0]["observed"]["counted_by_staff"], 10, "{progress}");
    assert_eq!(
        lines[1]["observed"]["weights_g"],
        json!([1990]),
        "{progress}"
    );
    site.ok(&[
        "receive",
        "decide",
        "--delivery",
        "D3",
        "--line",
        "1",
        "--staff",
        "li.wei",
    ]);
    let progress = site.json(&["receive", "progress", "--delivery", "D3"]);
    assert_eq!(progress["lines"][0]["decided"], true, "{progress}");
    assert_eq!(progress["lines"][1]["decided"], false, "{progress}");
    let text = site.ok(&["receive", "progress", "--delivery", "D3"]);
    assert!(
        text.contains("line 2 PORK lot K-3: not decided") && text.contains("last 1990 g"),
        "{text}"
    );
    // An unknown delivery is said to be unknown, not an error.
    let unknown = site.json(&["receive", "progress", "--delivery", "NOPE"]);
    assert_eq!(unknown["known"], false, "{unknown}");
}

#[test]
fn receive_show_lists_the_expected_lines_before_a_decision_and_the_state_after_a_release() {
    let site = Site::new("");
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({
            "delivery_id": "D9", "supplier": "Grain Co", "version": 1, "expected_at": "08:30",
            "lines": [
                {"line_no": 1, "sku": "RICE", "lot": "R-9", "expiry": "2999-01-31", "expected_count": 10},
                {"line_no": 2, "sku": "RICE", "lot": "R-10", "expiry": "2999-01-31", "expected_count": 5}
            ]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    // Before any decision: every expected line, its name, state and what deciding now gives.
    let before = site.ok(&["receive", "show", "--delivery", "D9"]);
    assert!(!before.contains("no line decided yet"), "{before}");
    assert!(
        before.contains("Grain Co") && before.contains("Rice 5 kg"),
        "{before}"
    );
    assert!(
        before.contains("行 1") && before.contains("行 2"),
        "{before}"
    );
    assert!(before.contains("待决定"), "{before}");
    assert!(
        before.contains("未点数"),
        "the proposal's reason in words: {before}"
    );
    // A flagged code holds line 1 when it is decided.
    site.ok(&["receive", "scan", "--station", "dock", "D9/1"]);
    site.run(&[
        "receive",
        "scan",
        "--station",
        "dock",
        "(01)12345678901234(21)X1",
    ]);
    site.ok(&["receive", "count", "--delivery", "D9", "--line", "1", "10"]);
    site.ok(&[
        "receive",
        "decide",
        "--delivery",
        "D9",
        "--line",
        "1",
        "--staff",
        "li.wei",
    ]);
    let held = site.ok(&["receive", "show", "--delivery", "D9", "--lang", "en"]);
    assert!(held.contains("held for review"), "{held}");
    assert!(held.contains("scanned code(s) flagged"), "{held}");
    assert!(
        !held.contains("\"code\"") && !held.contains("{"),
        "no raw JSON: {held}"
    );
    let decisions = site.json(&["receive", "show", "--delivery", "D9"]);
    let quantity = decisions[0]["decision"]["held"].as_i64().unwrap();
    assert!(quantity > 0, "{decisions}");
    site.ok(&[
        "receive",
        "release",
        "--delivery",
        "D9",
        "--line",
        "1",
        "--release",
        &quantity.to_string(),
        "--staff",
        "wang.wei",
        "--reason",
        "checked_by_hand",
    ]);
    // After the release the line says so (it said HELD before), by whom and why.
    let after = site.ok(&["receive", "show", "--delivery", "D9", "--lang", "en"]);
    assert!(after.contains("released after the hold"), "{after}");
    assert!(
        after.contains("wang.wei") && after.contains("checked by hand"),
        "{after}"
    );
    assert!(!after.contains("HELD"), "{after}");
    let zh = site.ok(&["receive", "show", "--delivery", "D9"]);
    assert!(
        zh.contains("暂扣后已放行") && zh.contains("已人工核对"),
        "{zh}"
    );
    let bad = site.run(&["receive", "show", "--delivery", "D9", "--lang", "fr"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("zh-CN or en"), "{}", stderr(&bad));
}

#[test]
fn import_files_are_central_commands_and_every_error_is_listed_at_once() {
    let site = Site::new("");
    let sku = |id: &str, code: &str, name: &str| {
        json!({"v":1,"id":id,"site":"cli-site","kind":"sku_upsert","key":code,"version":1,
               "body":{"code":code,"name":name,"unit":"piece","gtins":[],"allow_negative":false,"version":1}})
    };
    let mut milk = sku("c-2", "MILK", "Milk");
    milk["body"]["category"] = json!("dairy");
    let skus = site.file("skus.json", json!([sku("c-1", "RICE", "Rice 5 kg"), milk]));
    let out = site.ok(&["sku", "import", &skus]);
    assert!(
        out.contains("c-1: sku_upsert RICE version 1 applied"),
        "{out}"
    );
    // The optional category is listed with the SKU (demand signals scoped to it reach MILK).
    let listed = site.ok(&["sku", "list"]);
    let line = |code: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(code))
            .unwrap_or_else(|| panic!("{code} not listed: {listed}"))
            .to_owned()
    };
    assert!(line("MILK").contains("category dairy"), "{listed}");
    assert!(line("RICE").contains("category -"), "{listed}");
    let json: Value = serde_json::from_str(&site.ok(&["sku", "list", "--json"])).unwrap();
    assert_eq!(json[0]["code"], "MILK", "{json}");
    assert_eq!(json[0]["category"], "dairy", "{json}");

    // A manifest file with three mistakes in two commands: all three listed, with their place,
    // in plain words; nothing is stored.
    let bad = site.file(
        "bad-manifests.json",
        json!([
            {"v":1,"id":"c-10","site":"cli-site","kind":"delivery_manifest","key":"D1","version":1,
             "body":{"supplier":"Grain Co","lines":[{"line_no":1,"sku":"RICE","lot":"R-1","expected_count":"ten"}]}},
            {"v":1,"id":"c-11","site":"cli-site","kind":"pickup_order","key":"P1","version":1,"body":{}},
            {"v":1,"site":"cli-site","kind":"delivery_manifest","key":"D2","version":1,"body":{}}
        ]),
    );
    let out = site.run(&["receive", "manifest", &bad]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("3 error(s); nothing was imported"), "{err}");
    assert!(err.contains("command 1 (id c-10) (D1)"), "{err}");
    assert!(
        err.contains("command 2 (id c-11): a `pickup_order` command"),
        "{err}"
    );
    assert!(
        err.contains("command 3:") && err.contains("\"id\""),
        "{err}"
    );
    assert!(!err.contains("internally tagged"), "{err}");
    let progress = site.json(&["receive", "progress", "--delivery", "D1"]);
    assert_eq!(progress["known"], false, "{progress}");

    // The documented `delivery_manifest` message is a manifest file as it stands.
    let good = site.file(
        "manifest.json",
        json!({"v":1,"id":"c-12","site":"cli-site","kind":"delivery_manifest","key":"D1","version":1,
               "body":{"supplier":"Grain Co","expected_at":"2026-11-25T06:00:00+08:00",
                       "lines":[{"line_no":1,"sku":"RICE","lot":"R-1","expiry":"2999-01-31","expected_count":10}]}}),
    );
    let out = site.ok(&["receive", "manifest", &good]);
    assert!(
        out.contains("delivery_manifest D1 version 1 applied"),
        "{out}"
    );
    let progress = site.json(&["receive", "progress", "--delivery", "D1"]);
    assert_eq!(progress["known"], true, "{progress}");

    // And the documented `pickup_order` message is an order file.
    let order = site.file(
        "order.json",
        json!({"v":1,"id":"c-13","site":"cli-site","kind":"pickup_order","key":"P1","version":1,
               "body":{"code_salt":"0a0b0c0d","code_hash":"0".repeat(64),"status":"open",
                       "items":[{"sku":"RICE","quantity":2}],"phone_tail":"1234",
                       "opens_at_ms":0,"closes_at_ms":4_102_444_800_000i64}}),
    );
    let out = site.ok(&["pickup", "import", &order]);
    assert!(out.contains("pickup_order P1 version 1 applied"), "{out}");
    let bad_order = site.file(
        "bad-order.json",
        json!({"v":1,"id":"c-14","site":"cli-site","kind":"pickup_order","key":"P2","version":1,
               "body":{"code_salt":"0a","code_hash":"0".repeat(64),"status":"lost",
                       "items":[],"opens_at_ms":0,"closes_at_ms":1}}),
    );
    let out = site.run(&["pickup", "import", &bad_order]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("command 1 (id c-14) (P2)") && err.contains("status 'lost'"),
        "{err}"
    );
}

#[test]
fn a_negative_or_absurd_count_is_refused_and_nothing_is_recorded() {
    let site = Site::new("");
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({"delivery_id": "D5", "supplier": "Grain Co", "version": 1,
               "lines": [{"line_no": 1, "sku": "RICE", "lot": "R-5", "expected_count": 10}]}),
    );
    site.ok(&["receive", "manifest", &manifest]);
    for bad in ["-3", "99999999999"] {
        let out = hub(&[
            "receive",
            "count",
            "--config",
            &site.config,
            "--delivery",
            "D5",
            "--line",
            "1",
            "--",
            bad,
        ]);
        assert!(!out.status.success(), "{bad} was taken: {}", stdout(&out));
        assert!(
            stderr(&out).contains(&format!("a count of {bad} is not possible")),
            "{}",
            stderr(&out)
        );
    }
    let progress = site.json(&["receive", "progress", "--delivery", "D5"]);
    assert_eq!(
        progress["lines"][0]["observed"]["counted_by_staff"],
        Value::Null,
        "{progress}"
    );
}

#[test]
fn a_supervisor_undoes_a_handover_once_and_the_stock_comes_back() {
    let site = Site::new("");
    receive_rice_split_and_pork(&site);
    let before = lots(&site, "RICE");
    site.order("P1", json!([{"sku": "RICE", "quantity": 3}]));
    site.ok(&[
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P1:{CODE}"),
    ]);
    site.ok(&["pickup", "handover", "--station", "desk-1", "--order", "P1"]);
    assert_ne!(lots(&site, "RICE"), before);
    let undo = |reason: &str| {
        site.run(&[
            "pickup", "undo", "--order", "P1", "--staff", "wang", "--reason", reason,
        ])
    };
    // A reason not on the list changes nothing.
    let bad = undo("because");
    assert_eq!(bad.status.code(), Some(5), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("wrong_customer"), "{}", stderr(&bad));
    let done = undo("customer_returned");
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        String::from_utf8_lossy(&done.stdout).contains("handover of order P1 undone by wang"),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
    assert_eq!(lots(&site, "RICE"), before, "the stock came back");
    // Only once.
    let again = undo("customer_returned");
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("has not been handed over"),
        "{}",
        stderr(&again)
    );
    assert_eq!(lots(&site, "RICE"), before);
}

#[test]
fn a_partial_handover_from_the_cli_leaves_the_rest_open_for_a_later_check() {
    let site = Site::new("");
    receive_rice_split_and_pork(&site);
    let total = |site: &Site| lots(site, "RICE").iter().map(|(_, q)| q).sum::<i64>();
    let before = total(&site);
    site.order("P1", json!([{"sku": "RICE", "quantity": 3}]));
    let check = [
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P1:{CODE}"),
    ];
    site.ok(&check);
    // More than is open is refused, and nothing leaves.
    let too_much = site.run(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P1",
        "--part",
        "1:4",
    ]);
    assert!(!too_much.status.success(), "{}", stdout(&too_much));
    assert!(
        stderr(&too_much).contains("3 is open"),
        "{}",
        stderr(&too_much)
    );
    assert_eq!(total(&site), before);
    let first = site.ok(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P1",
        "--part",
        "1:1",
    ]);
    assert!(first.contains("partly handed over"), "{first}");
    assert!(first.contains("open    2"), "{first}");
    assert_eq!(total(&site), before - 1);
    // The rest: a new check, then everything still open leaves.
    site.ok(&check);
    let rest = site.ok(&["pickup", "handover", "--station", "desk-1", "--order", "P1"]);
    assert!(rest.contains("order P1 handed over"), "{rest}");
    assert!(rest.contains("handed      3 of      3"), "{rest}");
    assert_eq!(total(&site), before - 3);
    // Collected: the code check says so, and nothing more leaves.
    let collected = site.run(&check);
    assert!(
        stdout(&collected).contains("already collected"),
        "{}",
        stdout(&collected)
    );
    let again = site.run(&["pickup", "handover", "--station", "desk-1", "--order", "P1"]);
    assert!(!again.status.success(), "{}", stdout(&again));
    assert_eq!(total(&site), before - 3);
}

#[test]
fn receive_decide_holds_a_line_with_a_reason_from_the_list_and_refuses_any_other() {
    let site = Site::new("");
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({
            "delivery_id": "D7", "supplier": "Grain Co", "version": 1, "expected_at": "08:30",
            "lines": [
                {"line_no": 1, "sku": "RICE", "lot": "R-7", "expiry": "2999-01-31", "expected_count": 10}
            ]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    site.ok(&["receive", "count", "--delivery", "D7", "--line", "1", "10"]);
    // `--help` lists every reason with its words.
    let help = stdout(&hub(&["receive", "decide", "--help"]));
    for (name, words) in [
        ("damaged_packaging", "damaged packaging"),
        ("wrong_temperature", "wrong temperature"),
        ("quality_doubt", "doubtful quality"),
        ("label_unreadable", "unreadable label"),
    ] {
        assert!(
            help.contains(name) && help.contains(words),
            "{name}: {help}"
        );
    }
    // A reason off the list is refused in words, and nothing is decided.
    let bad = site.run(&[
        "receive",
        "decide",
        "--delivery",
        "D7",
        "--line",
        "1",
        "--staff",
        "li.wei",
        "--hold",
        "looks_odd",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let why = stderr(&bad);
    assert!(
        why.contains("looks_odd") && why.contains("damaged_packaging"),
        "{why}"
    );
    let progress = site.json(&["receive", "progress", "--delivery", "D7"]);
    assert_eq!(progress["lines"][0]["decided"], false, "{progress}");
    // The count matches, so the hub would accept the line: the clerk's hold holds all of it.
    let decision = site.json(&[
        "receive",
        "decide",
        "--delivery",
        "D7",
        "--line",
        "1",
        "--staff",
        "li.wei",
        "--hold",
        "wrong_temperature",
    ]);
    assert_eq!(decision["decision"]["held"], 10, "{decision}");
    assert_eq!(decision["decision"]["accepted"], 0, "{decision}");
    let shown = site.ok(&["receive", "show", "--delivery", "D7", "--lang", "en"]);
    assert!(
        shown.contains("held for review") && shown.contains("wrong temperature"),
        "{shown}"
    );
    assert!(lots(&site, "RICE").is_empty(), "held stock is not on hand");
}

/// `hub receive reverse` takes a line's receipt out again (the line waits, a redo
/// stocks it again), the same request id is applied once, and a reversal after stock has left
/// or with a reason off the list is refused in words.
#[test]
fn receive_reverse_takes_a_receipt_out_once_and_a_redo_stocks_it_again() {
    let site = Site::new("");
    site.skus();
    let manifest = site.file(
        "manifest.json",
        json!({
            "delivery_id": "D8", "supplier": "Grain Co", "version": 1,
            "lines": [
                {"line_no": 1, "sku": "RICE", "lot": "R-8", "expiry": "2999-01-31", "expected_count": 10}
            ]
        }),
    );
    site.ok(&["receive", "manifest", &manifest]);
    let receive = || {
        site.ok(&["receive", "count", "--delivery", "D8", "--line", "1", "10"]);
        site.ok(&[
            "receive",
            "decide",
            "--delivery",
            "D8",
            "--line",
            "1",
            "--staff",
            "li",
        ]);
    };
    receive();
    assert_eq!(lots(&site, "RICE"), [("R-8".to_owned(), 10)]);
    let reverse = |reason: &str, request: &str| {
        site.run(&[
            "receive",
            "reverse",
            "--delivery",
            "D8",
            "--line",
            "1",
            "--reason",
            reason,
            "--staff",
            "wang",
            "--request-id",
            request,
        ])
    };
    let odd = reverse("looks_odd", "q-0");
    assert_eq!(odd.status.code(), Some(2), "{}", stderr(&odd));
    assert!(stderr(&odd).contains("count_error"), "{}", stderr(&odd));
    let done = reverse("count_error", "q-1");
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(stdout(&done).contains("reversed"), "{}", stdout(&done));
    assert_eq!(lots(&site, "RICE"), [("R-8".to_owned(), 0)]);
    let again = reverse("count_error", "q-1");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(lots(&site, "RICE"), [("R-8".to_owned(), 0)]);
    let progress = site.json(&["receive", "progress", "--delivery", "D8"]);
    assert_eq!(progress["lines"][0]["decided"], false, "{progress}");
    // Redone, the line stocks again (its receipt has a new id); then some of it leaves.
    receive();
    assert_eq!(lots(&site, "RICE"), [("R-8".to_owned(), 10)]);
    site.order("P8", json!([{"sku": "RICE", "quantity": 1}]));
    site.ok(&[
        "pickup",
        "check",
        "--station",
        "desk-1",
        &format!("P8:{CODE}"),
    ]);
    site.ok(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P8",
        "--staff",
        "wu.fang",
    ]);
    let late = reverse("damage_found", "q-2");
    assert!(!late.status.success());
    assert!(
        stderr(&late).contains("1 of the 10 received have already left the site"),
        "{}",
        stderr(&late)
    );
}
