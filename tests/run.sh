#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh machine (as root): installs what
# the suite needs (Mosquitto, OpenSSL, Chromium, qemu-user, the aarch64 cross toolchain, the
# ONNX Runtime library), then runs every test of every workspace crate, plus the firmware
# build for a microcontroller target, plus the aarch64 cross build run under qemu-user
# (deploy/test-aarch64.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
# A one-off full build gains nothing from incremental caches, which cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --workspace --all-targets --locked
# The firmware builds for a microcontroller (no_std, no allocator).
cargo build -p firmware-shim --target thumbv7em-none-eabihf --locked
# Doc tests are cheap and keep examples honest.
cargo test --workspace --doc --locked
# The ARM boxes: cross-build for aarch64 and run that binary under qemu-user.
bash deploy/test-aarch64.sh
