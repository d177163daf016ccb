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
# Always: CMake and NASM build the vendored libjpeg-turbo (the JPEG decoder, with its x86 SIMD).
declare -A want=(
  [cmake]=cmake
  [nasm]=nasm
  [mosquitto]=mosquitto
  [openssl]=openssl
  # deploy tests: headless browser for the status page, the aarch64 cross build and qemu-user,
  # systemd-analyze for the unit, readelf for the package's dependencies.
  [chromium]=chromium
  # the station app's browser tests drive chromium over WebDriver
  [chromedriver]=chromium-driver
  # the demo test runs the scenario on other days
  [faketime]=faketime
  [qemu-aarch64-static]=qemu-user-static
  [aarch64-linux-gnu-gcc]=gcc-aarch64-linux-gnu
  [systemd-analyze]=systemd
  [readelf]=binutils
  [dpkg-deb]=dpkg
  # the power-cut filesystem (tests/powercut) mounts through fusermount3 when not root
  [fusermount3]=fuse3
)
if [ "$mode" = "--demo" ]; then
  want=([cmake]=cmake [nasm]=nasm)
fi

missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${want[$cmd]}")
  fi
done
# Files that prove a package without a command of its own.
if [ "$mode" != "--demo" ] && [ ! -f /usr/aarch64-linux-gnu/lib/crt1.o ]; then
  missing+=(libc6-dev-arm64-cross)
fi
# central's PostgreSQL tests and benchmark start a private cluster (initdb is not on PATH).
if [ "$mode" != "--demo" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=(postgresql)
fi
# Chinese glyphs for the station app's screenshots.
if [ "$mode" != "--demo" ] && [ ! -d /usr/share/fonts/opentype/noto ]; then
  missing+=(fonts-noto-cjk)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

# The Rust standard library for the ARM boxes (deploy/build-aarch64.sh).
if [ "$mode" != "--demo" ] && command -v rustup >/dev/null 2>&1 \
  && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "setup: rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu
fi

# The firmware's microcontroller target (the no_std build of firmware-shim).
if [ "$mode" != "--demo" ] && command -v rustup >/dev/null 2>&1 \
  && ! rustup target list --installed | grep -qx thumbv7em-none-eabihf; then
  echo "setup: rustup target add thumbv7em-none-eabihf"
  rustup target add thumbv7em-none-eabihf
fi

# The ONNX Runtime library used by the vision checks (project-local, not a system install).
if [ -x deploy/fetch-onnxruntime.sh ] || [ -f deploy/fetch-onnxruntime.sh ]; then
  bash deploy/fetch-onnxruntime.sh
fi
echo "setup: done"
