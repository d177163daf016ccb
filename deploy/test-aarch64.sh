#!/usr/bin/env bash
# CI check for the ARM boxes: cross-build `hub` for aarch64-unknown-linux-gnu and run that
# binary under qemu-user: `hub --version`, `hub check-config` on every shipped config, the demo
# (with HUB_VISION_BACKEND=tract, so the pure-Rust inference backend is the one exercised once
# vision is built in; a fallback to typed input fails where simulated devices can run), one
# photo classified on the aarch64 ONNX Runtime, then package it as an arm64 .deb and run the
# unpacked binary.
#
# Usage: deploy/test-aarch64.sh [--profile cross|release]   (default: cross, the lean profile)
# Part of tests/run.sh. Prints how long the build and the qemu runs took.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

profile=cross
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "test-aarch64: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

command -v qemu-aarch64-static >/dev/null 2>&1 || {
    echo "test-aarch64: qemu-aarch64-static not found; apt-get install qemu-user-static (bash deploy/setup.sh)" >&2
    exit 1
}
sysroot=/usr/aarch64-linux-gnu
qemu=(qemu-aarch64-static -L "$sysroot")
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

step() { echo "test-aarch64: $*"; }
fail() { echo "test-aarch64: FAILED: $*" >&2; exit 1; }

t0=$(date +%s)
bin="$(bash deploy/build-aarch64.sh --profile "$profile" | tail -n 1)"
t1=$(date +%s)
step "cross build ($profile profile) took $((t1 - t0)) s: $bin ($(du -h "$bin" | cut -f1))"
readelf -h "$bin" | grep -q 'Machine:.*AArch64' || fail "$bin is not an AArch64 binary"

step "hub --version under qemu"
version="$("${qemu[@]}" "$bin" --version)"
case "$version" in hub\ *) echo "  $version" ;; *) fail "unexpected --version output: $version" ;; esac

for config in config/*.toml; do
    step "hub check-config $config under qemu"
    # --syntax-only: the examples name TLS files and devices of a box, not of this machine.
    "${qemu[@]}" "$bin" check-config --syntax-only "$config" || fail "check-config $config"
done
bad="$scratch/bad.toml"
printf '[site]\nid = "x y"\n' > "$bad"
set +e
"${qemu[@]}" "$bin" check-config "$bad" >/dev/null 2>&1
code=$?
set -e
[ "$code" = 2 ] || fail "check-config on an invalid file exited $code, expected 2"

step "hub demo under qemu (HUB_VISION_BACKEND=tract)"
HUB_VISION_BACKEND=tract "${qemu[@]}" "$bin" demo --json > "$scratch/demo.json" \
    || fail "demo exited non-zero"
grep -q '"site": "demo-site-001"' "$scratch/demo.json" || fail "demo summary lacks the site"
tr -d ' \n' < "$scratch/demo.json" | grep -q '"problems":\[\]' || fail "demo ledger did not verify"
# The demo drives simulated devices (children of the hub binary on pseudo-terminals) and falls
# back to typed input where they cannot start. Under qemu-user an aarch64 child can start only
# when the kernel runs aarch64 binaries through binfmt_misc; then the fallback is a failure.
compact="$(tr -d ' \n' < "$scratch/demo.json")"
if grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    case "$compact" in
        *'"what":"simulatedMT-SICSscaleandscanneronpseudo-terminals","outcome":"probedandonline"'*) ;;
        *) fail "the demo fell back to typed input although aarch64 children can run (binfmt_misc qemu-aarch64 is enabled)" ;;
    esac
    step "  simulated scale and scanner probed and online under qemu"
else
    case "$compact" in
        *'"what":"simulateddevices","outcome":"unavailable'*)
            step "  simulated devices cannot start here (no binfmt_misc entry for aarch64): scans and weights typed in" ;;
        *'"outcome":"probedandonline"'*) ;;
        *) fail "the demo summary says neither that the simulated devices ran nor why not" ;;
    esac
fi

# ONNX Runtime for aarch64 (deploy/fetch-onnxruntime.sh --arch aarch64): load it under qemu and
# classify one photo with it — not with the tract fallback. Its CPU-detection library reads
# /proc/cpuinfo while loading, and qemu-user passes the x86 host's file through, on which the
# library crashes (SIGSEGV in dlopen). An ARM board has its own file; here an aarch64 one
# (two Neoverse-N1 cores) is bind-mounted over it in a private mount namespace (needs root).
ort_lib=".runtime/onnxruntime/aarch64/libonnxruntime.so"
if [ ! -e "$ort_lib" ]; then
    step "fetching ONNX Runtime for aarch64"
    bash deploy/fetch-onnxruntime.sh --arch aarch64 >/dev/null
fi
for core in 0 1; do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n' "$core"
done > "$scratch/cpuinfo"
step "hub check-image on ONNX Runtime for aarch64 under qemu"
unshare -m true 2>/dev/null \
    || fail "unshare -m is refused (run as root): the ONNX Runtime check needs a private mount namespace"
unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$scratch/cpuinfo" \
    env HUB_VISION_BACKEND=onnxruntime HUB_ONNXRUNTIME_LIB="$repo_root/$ort_lib" "${qemu[@]}" "$bin" \
    check-image hub/vision/testdata/images/orange.jpg --sku ORANGE-5KG --expect 950 --json \
    > "$scratch/check.json" || fail "check-image on ONNX Runtime failed: $(cat "$scratch/check.json")"
tr -d ' \n' < "$scratch/check.json" | grep -q '"backend":"onnxruntime"' \
    || fail "check-image did not run on ONNX Runtime: $(cat "$scratch/check.json")"
tr -d ' \n' < "$scratch/check.json" | grep -q '"outcome":"pass"' \
    || fail "orange.jpg did not pass on ONNX Runtime under qemu: $(cat "$scratch/check.json")"
tr -d ' \n' < "$scratch/check.json" | grep -q '"top_k":\[{"class_id":950,' \
    || fail "orange (950) is not the top class on ONNX Runtime under qemu: $(cat "$scratch/check.json")"

step "hub bench disk under qemu (tiny run, checks the measurement code on aarch64)"
"${qemu[@]}" "$bin" bench disk --data-dir "$scratch/bench" --fsyncs 5 --sequential-mib 1 \
    --seconds 0.2 --baseline-dir "$scratch/bench" --json "$scratch/bench.json" >/dev/null \
    || [ $? = 4 ] || fail "bench disk failed"
grep -q '"sqlite_durable_commits_per_s"' "$scratch/bench.json" || fail "bench disk wrote no figures"

step "arm64 .deb"
deb="$(bash deploy/build-deb.sh --arch arm64 --binary "$bin" --out "$scratch/deb" --compression gzip | tail -n 1)"
dpkg-deb -f "$deb" Architecture | grep -qx arm64 || fail "$deb is not arm64"
dpkg -x "$deb" "$scratch/root"
"${qemu[@]}" "$scratch/root/usr/bin/hub" --version >/dev/null || fail "packaged binary does not run"
if [ -e "$scratch/root/usr/lib/hub/libonnxruntime.so" ]; then
    readelf -h "$scratch/root/usr/lib/hub/libonnxruntime.so" | grep -q 'Machine:.*AArch64' \
        || fail "packaged ONNX Runtime is not aarch64"
fi
t2=$(date +%s)
step "ok: build $((t1 - t0)) s, qemu runs and packaging $((t2 - t1)) s"
