#!/usr/bin/env bash
# Cross-builds the `hub` binary for the ARM boxes (aarch64-unknown-linux-gnu) on an x86_64
# Debian machine, and fetches the aarch64 ONNX Runtime library next to it.
#
# Usage: deploy/build-aarch64.sh [--profile release|cross] [--no-onnxruntime] [--install-deps]
#   --profile         cargo profile (default: release, what goes on a box; `cross` is the lean
#                     profile CI uses: no LTO, 16 codegen units, same panic=abort semantics)
#   --no-onnxruntime  skip fetching libonnxruntime.so for aarch64
#   --install-deps    apt-get/rustup what the cross build needs first (as root)
#
# Needs: rustup target aarch64-unknown-linux-gnu, Debian gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross (rusqlite's bundled SQLite is compiled with the cross gcc).
# Prints the binary's path on the last line of stdout. Respects CARGO_TARGET_DIR.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

profile=release
fetch_ort=yes
install_deps=no
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
        --no-onnxruntime) fetch_ort=no; shift ;;
        --install-deps) install_deps=yes; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "build-aarch64: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

target=aarch64-unknown-linux-gnu
if [ "$install_deps" = yes ]; then
    missing=()
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
    [ -d /usr/aarch64-linux-gnu/include ] || missing+=(libc6-dev-arm64-cross)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "build-aarch64: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "build-aarch64: rustup target add $target" >&2
    rustup target add "$target" >&2
fi
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || {
    echo "build-aarch64: aarch64-linux-gnu-gcc not found; apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross (or pass --install-deps)" >&2
    exit 1
}

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# Generic ARMv8.0 code: runs on Cortex-A53/A55/A72/A76 alike (Pi 4 has no LSE atomics).
unset RUSTFLAGS

started=$(date +%s)
echo "build-aarch64: cargo build -p hub --profile $profile --target $target" >&2
cargo build --locked -p hub --bin hub --profile "$profile" --target "$target" >&2
echo "build-aarch64: built in $(( $(date +%s) - started )) s" >&2

if [ "$fetch_ort" = yes ] && [ -f deploy/fetch-onnxruntime.sh ]; then
    bash deploy/fetch-onnxruntime.sh --arch aarch64 >&2
fi

target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
dir_name="$profile"
[ "$profile" = dev ] && dir_name=debug
echo "$target_dir/$target/$dir_name/hub"
