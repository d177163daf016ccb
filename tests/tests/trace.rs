//! `hub trace` answers for an item from receipt to handover, run entirely through the CLI as
//! staff would: SKU and manifest arrive, the crate and items are scanned, the line is weighed
//! and decided, the order is checked and handed over with the item scanned, then traced; then
//! the delivery is disputed and the dispute settled.

use serde_json::{Value, json};
use tests::{hub, stderr, stdout};

fn run(args: &[&str]) -> String {
    let out = hub(args);
    assert!(
        out.status.success(),
        "hub {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn an_item_is_traced_from_supplier_to_pickup_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, "[site]\nid = \"trace-site\"\n[store]\ndata_dir = \"data\"\n[receiving]\nphoto_required = false\n[[stations]]\nid = \"dock\"\nkind = \"receiving\"\n[[stations]]\nid = \"desk-1\"\nkind = \"pickup\"\n").unwrap();
    let cfg = config.to_str().unwrap();
    let write = |name: &str, value: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let skus = write(
        "skus.json",
        json!([{
            "code": "ORANGE", "name": "Navel oranges", "unit": "piece", "gtins": ["09506000134352"],
            "allow_negative": false, "check_items_at_handover": true, "version": 1
        }]),
    );
    run(&["sku", "import", &skus, "--config", cfg]);
    let manifest = write(
        "manifest.json",
        json!({
            "delivery_id": "D900", "supplier": "Sunny Orchards", "version": 1,
            "lines": [{"line_no": 1, "sku": "ORANGE", "lot": "OR-900", "expiry": "2030-01-31",
                       "expected_count": 2, "expected_weight_g": 10000, "weight_tolerance_g": 300}]
        }),
    );
    run(&["receive", "manifest", &manifest, "--config", cfg]);
    assert!(
        run(&[
            "receive",
            "scan",
            "--station",
            "dock",
            "D900/1",
            "--config",
            cfg
        ])
        .contains("line 1 selected")
    );
    for serial in ["S1", "S2"] {
        let out = run(&[
            "receive",
            "scan",
            "--station",
            "dock",
            &format!("]C10109506000134352 21{serial}").replace(' ', ""),
            "--config",
            cfg,
        ]);
        assert!(out.contains("bound to delivery D900"), "{out}");
    }
    run(&[
        "receive",
        "weight",
        "--station",
        "dock",
        "10100",
        "--config",
        cfg,
    ]);
    let decided = run(&[
        "receive",
        "decide",
        "--delivery",
        "D900",
        "--line",
        "1",
        "--staff",
        "li.wei",
        "--config",
        cfg,
    ]);
    assert!(decided.contains("ACCEPTED"), "{decided}");

    let salt = "0a0b0c0d";
    let code_hash = {
        // sha256(salt || code), as central computes it.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("printf '\\012\\013\\014\\015123456' | sha256sum | cut -d' ' -f1")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let orders = write(
        "orders.json",
        json!([{
            "order_id": "P-77", "site": "trace-site", "code_salt": salt, "code_hash": code_hash,
            "items": [{"sku": "ORANGE", "quantity": 1, "lot": "OR-900"}],
            "opens_at": 0, "closes_at": 4_102_444_800_000i64, "status": {"state": "open"}, "version": 1
        }]),
    );
    run(&["pickup", "import", &orders, "--config", cfg]);
    assert!(
        run(&[
            "pickup",
            "check",
            "--station",
            "desk-1",
            "P-77:123456",
            "--config",
            cfg
        ])
        .contains("hand it over")
    );
    // The SKU asks for each item to be scanned: without it the handover is refused.
    let refused = hub(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P-77",
        "--config",
        cfg,
    ]);
    assert_eq!(refused.status.code(), Some(5), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("needs 1 scanned trace code"),
        "{}",
        stderr(&refused)
    );
    let handed = run(&[
        "pickup",
        "handover",
        "--station",
        "desk-1",
        "--order",
        "P-77",
        "--item",
        "(01)09506000134352(21)S1",
        "--staff",
        "wu.fang",
        "--config",
        cfg,
    ]);
    assert!(
        handed.contains("handed over at station desk-1 by wu.fang"),
        "{handed}"
    );

    let trace: Value = serde_json::from_str(&run(&[
        "trace",
        "]C1010950600013435221S1",
        "--json",
        "--config",
        cfg,
    ]))
    .unwrap();
    assert_eq!(trace["supplier"], "Sunny Orchards");
    assert_eq!(
        trace["elements"],
        json!([{"ai": "01", "value": "09506000134352"}, {"ai": "21", "value": "S1"}]),
        "the code's GS1 elements are kept with its binding"
    );
    assert_eq!(trace["delivery_id"], "D900");
    assert_eq!(trace["status"], "handed_over");
    assert_eq!(trace["decision"]["decision"]["outcome"], "accepted");
    assert_eq!(trace["decision"]["staff"], "li.wei");
    assert_eq!(trace["decision"]["weight_readings_g"], json!([10100]));
    assert_eq!(trace["handed_over"]["order_id"], "P-77");
    assert_eq!(trace["handed_over"]["station"], "desk-1");
    assert_eq!(trace["handed_over"]["staff"], "wu.fang");
    let kinds: Vec<&str> = trace["batch_movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["receipt", "issue"]);

    let human = run(&[
        "trace",
        "(01)09506000134352(21)S1",
        "--lang",
        "en",
        "--config",
        cfg,
    ]);
    assert!(
        human.contains("supplier Sunny Orchards")
            && human.contains("pickup order P-77")
            && human.contains("printed  (01)09506000134352 (21)S1")
            && human.contains("now handed over"),
        "{human}"
    );
    // By default in the catalogue's zh-CN words, times in the site's zone (never RFC 3339 UTC),
    // reasons in words (never JSON).
    let chinese = run(&["trace", "(01)09506000134352(21)S1", "--config", cfg]);
    assert!(
        chinese.contains("供应商 Sunny Orchards")
            && chinese.contains("取货单 P-77")
            && chinese.contains("现状：已交付")
            && chinese.contains("印码")
            && chinese.contains("入库")
            && chinese.contains("到货单 D900 第 1 行"),
        "{chinese}"
    );
    let iso_time = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|w| w[0].is_ascii_digit() && w[1] == b'T' && w[2].is_ascii_digit())
    };
    assert!(!iso_time(&chinese) && !iso_time(&human), "{chinese}{human}");
    assert!(!chinese.contains("{\"code\""), "{chinese}");
    let lot = run(&["trace", "--batch", "OR-900", "--config", cfg]);
    assert!(
        lot.contains("批次 OR-900") && lot.contains("已交付 → 取货单 P-77") && !iso_time(&lot),
        "{lot}"
    );
    let batch: Value = serde_json::from_str(&run(&[
        "trace", "--batch", "OR-900", "--json", "--config", cfg,
    ]))
    .unwrap();
    let items = batch[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|i| i["code"] == "(01)09506000134352(21)S1" && i["order_id"] == "P-77")
    );
    assert!(
        items
            .iter()
            .any(|i| i["code"] == "(01)09506000134352(21)S2" && i["status"] == "in_stock")
    );
    assert_eq!(batch[0]["on_hand"], 1);

    // A customer disputes the delivery: staff open a dispute, a second one is refused with the
    // first one's note (exit 5), and it is closed once settled.
    let dispute = |extra: &[&str]| {
        let mut args = vec![
            "receive",
            "dispute",
            "--delivery",
            "D900",
            "--staff",
            "li.wei",
            "--config",
            cfg,
        ];
        args.extend_from_slice(extra);
        hub(&args)
    };
    let opened = dispute(&["--note", "two oranges mouldy"]);
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert!(
        stdout(&opened).contains("dispute opened"),
        "{}",
        stdout(&opened)
    );
    let again = dispute(&["--note", "again"]);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already has an open dispute (two oranges mouldy)"),
        "{}",
        stderr(&again)
    );
    // A supervisor's responses: the first one is the dispute's response time in `hub report`.
    let inspected = dispute(&[
        "--note",
        "photos show mould on 2 of 12",
        "--photos-inspected",
    ]);
    assert!(inspected.status.success(), "{}", stderr(&inspected));
    assert!(
        stdout(&inspected).contains("response to the dispute recorded (photo_inspection)"),
        "{}",
        stdout(&inspected)
    );
    let noted = dispute(&["--note", "supplier called back", "--respond"]);
    assert!(noted.status.success(), "{}", stderr(&noted));
    let both = dispute(&["--note", "x", "--respond", "--close"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    let closed = dispute(&["--note", "refunded", "--close"]);
    assert!(closed.status.success(), "{}", stderr(&closed));
    assert!(
        stdout(&closed).contains("dispute closed"),
        "{}",
        stdout(&closed)
    );
    let none = dispute(&["--note", "refunded", "--close"]);
    assert_eq!(none.status.code(), Some(5), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("has no open dispute"),
        "{}",
        stderr(&none)
    );
    let late = dispute(&["--note", "too late", "--respond"]);
    assert_eq!(late.status.code(), Some(5), "{}", stderr(&late));
    assert!(
        stderr(&late).contains("has no open dispute"),
        "{}",
        stderr(&late)
    );
    // Opened again about one line: a new episode; the settled one keeps its times, and
    // `hub receive show` lists both. A line the manifest does not have is refused.
    let no_line = dispute(&["--note", "appeal", "--line", "99"]);
    assert_eq!(no_line.status.code(), Some(5), "{}", stderr(&no_line));
    assert!(stderr(&no_line).contains("99"), "{}", stderr(&no_line));
    let reopened = dispute(&["--note", "customer appealed", "--line", "1"]);
    assert!(reopened.status.success(), "{}", stderr(&reopened));
    let shown = hub(&[
        "receive",
        "show",
        "--delivery",
        "D900",
        "--lang",
        "en",
        "--config",
        cfg,
    ]);
    let text = stdout(&shown);
    assert!(
        text.contains("two oranges mouldy") && text.contains("settled (li.wei)"),
        "{text}"
    );
    assert!(
        text.contains("customer appealed") && text.contains("Line 1 · The line's photos"),
        "{text}"
    );
    assert_eq!(text.matches("Disputes #").count(), 2, "{text}");
}
