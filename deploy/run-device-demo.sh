#!/usr/bin/env bash
# Device demo: a simulated MT-SICS scale and a simulated scanner on pseudo-terminals, a hub
# reading them, a delivery received by scanning its label and an item and weighing the crate,
# then an unplug and replug of the scale. Prints `hub devices` at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
HUB=${HUB:-}
if [[ -z "$HUB" ]]; then
  cargo build --release -p hub --quiet
  HUB=./target/release/hub
fi
work=$(mktemp -d /tmp/hub-device-demo-XXXXXX)
pids=()
cleanup() {
  exec 3>&- 4>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
cat > "$work/hub.toml" <<TOML
[site]
id = "device-demo"
[store]
data_dir = "data"
[log]
level = "warn"
[[devices]]
name = "scale-1"
kind = "scale"
path = "$work/by-id-scale"
protocol = "mt-sics"
station = "recv-1"
poll_interval_ms = 100
offline_after_ms = 1500
reconnect_max_ms = 1000
[[devices]]
name = "scanner-1"
kind = "scanner"
path = "$work/by-id-scanner"
terminator = "cr"
station = "recv-1"
TOML
cat > "$work/skus.json" <<'JSON'
[{"code":"APPLE-1KG","name":"Apples 1 kg","unit":"piece","gtins":["09506000134352"],"version":1}]
JSON
cat > "$work/manifest.json" <<'JSON'
{"delivery_id":"DLV-1","supplier":"Orchard","lines":[{"line_no":1,"sku":"APPLE-1KG","lot":"LOT7","expected_count":10,"expected_weight_g":1250,"weight_tolerance_g":50}],"version":1}
JSON
"$HUB" sku import --config "$work/hub.toml" "$work/skus.json"
"$HUB" receive manifest --config "$work/hub.toml" "$work/manifest.json"
mkfifo "$work/scale.in" "$work/scanner.in"
"$HUB" sim scale --protocol mt-sics --link "$work/by-id-scale" < "$work/scale.in" > "$work/scale.out" & pids+=($!)
exec 3>"$work/scale.in"
"$HUB" sim scanner --link "$work/by-id-scanner" < "$work/scanner.in" > "$work/scanner.out" & pids+=($!)
exec 4>"$work/scanner.in"
sleep 0.5
"$HUB" run --config "$work/hub.toml" 2> "$work/hub.log" & pids+=($!)
sleep 1.5
echo "scanning the delivery label, then an item; putting 1.250 kg on the scale"
echo 'scan DLV-1/1' >&4; sleep 0.3
echo 'scan ]C1010950600013435221ABC123\x1d10LOT7' >&4; sleep 0.3
echo 'put 1.250' >&3; sleep 2.5
echo "unplugging the scale for 2 s, then plugging it back in"
echo unplug >&3; sleep 2; echo replug >&3; sleep 2.5
"$HUB" devices --config "$work/hub.toml"
echo
echo "(site files in $work)"
