#!/usr/bin/env bash
# Installs what the hub's demo and test suite need on a fresh Debian machine (run as root).
# Idempotent: installs only what is missing and says what it did.
#
#   bash deploy/setup.sh            # everything the tests need
#   bash deploy/setup.sh --demo     # only what the demo needs
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-test}

# Debian packages: command that proves presence -> package.
declare -A want=(
  [mosquitto]=mosquitto
  [openssl]=openssl
)
if [ "$mode" = "--demo" ]; then
  want=()
fi

missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${want[$cmd]}")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

# The ONNX Runtime library used by the vision checks (project-local, not a system install).
if [ -x deploy/fetch-onnxruntime.sh ] || [ -f deploy/fetch-onnxruntime.sh ]; then
  bash deploy/fetch-onnxruntime.sh
fi
echo "setup: done"
