#!/usr/bin/env bash
# The one command that runs the hub's demo on a fresh machine: fetch what it needs, build,
# and play the built-in scenario on a temporary site. Extra arguments go to `hub demo`
# (e.g. --keep-running, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh --demo
cargo build --release -p hub --quiet
exec ./target/release/hub demo "$@"
