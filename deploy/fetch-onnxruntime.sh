#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library the hub loads at run time.
#
# It comes from the PyPI wheel onnxruntime==1.31.1 (onnxruntime/capi/libonnxruntime.so.1.31.1);
# only that one file is kept. Python is needed for `pip download` only, never at run time.
#
# Usage: deploy/fetch-onnxruntime.sh [--arch x86_64|aarch64] [--dest DIR]
#   --arch   target CPU (default: this machine's, from `uname -m`)
#   --dest   folder to put the library in (default: <repo>/.runtime/onnxruntime/<arch>)
#
# Idempotent: when the library is already there and its sha256 matches the hash recorded below,
# nothing is downloaded. The hub finds the default destination by itself; for an installed box copy
# the file to /usr/lib/hub/ or point HUB_ONNXRUNTIME_LIB at it.
set -euo pipefail

ORT_VERSION="1.31.1"
LIB_NAME="libonnxruntime.so.${ORT_VERSION}"
# manylinux_2_28 is the oldest platform tag PyPI has for 1.31.1 (checked with pip download).
PLATFORM_x86_64="manylinux_2_28_x86_64"
PLATFORM_aarch64="manylinux_2_28_aarch64"
# sha256 of onnxruntime/capi/libonnxruntime.so.1.31.1 inside each wheel.
SHA256_x86_64="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"
SHA256_aarch64="8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="$(uname -m)"
dest=""

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
        --dest) dest="${2:?--dest needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "fetch-onnxruntime: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

case "$arch" in
    x86_64|amd64) arch="x86_64"; platform="$PLATFORM_x86_64"; want_sha="$SHA256_x86_64" ;;
    aarch64|arm64) arch="aarch64"; platform="$PLATFORM_aarch64"; want_sha="$SHA256_aarch64" ;;
    *) echo "fetch-onnxruntime: unsupported arch '$arch' (use x86_64 or aarch64)" >&2; exit 2 ;;
esac

dest="${dest:-$repo_root/.runtime/onnxruntime/$arch}"
target="$dest/$LIB_NAME"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$target" ] && [ "$(sha_of "$target")" = "$want_sha" ]; then
    echo "fetch-onnxruntime: $target already present (sha256 $want_sha), nothing to do"
    exit 0
fi

for tool in pip unzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "fetch-onnxruntime: '$tool' is needed but not installed" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetch-onnxruntime: downloading onnxruntime==$ORT_VERSION wheel for $platform from PyPI"
pip download --quiet --no-deps --only-binary=:all: --platform "$platform" --python-version 3.11 \
    "onnxruntime==$ORT_VERSION" -d "$work"
wheel="$(ls "$work"/onnxruntime-"$ORT_VERSION"-*.whl)"

unzip -q -j "$wheel" "onnxruntime/capi/$LIB_NAME" -d "$work/lib"
got_sha="$(sha_of "$work/lib/$LIB_NAME")"
if [ "$got_sha" != "$want_sha" ]; then
    echo "fetch-onnxruntime: sha256 of $LIB_NAME from $(basename "$wheel") is $got_sha, expected $want_sha; refusing to install it" >&2
    exit 1
fi

mkdir -p "$dest"
install -m 0644 "$work/lib/$LIB_NAME" "$target.tmp"
mv -f "$target.tmp" "$target"
ln -sfn "$LIB_NAME" "$dest/libonnxruntime.so"
echo "fetch-onnxruntime: installed $target (sha256 $got_sha) and symlink $dest/libonnxruntime.so"
