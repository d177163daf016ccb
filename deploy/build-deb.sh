#!/usr/bin/env bash
# Builds the hub's Debian package from a staged tree with dpkg-deb (no cargo-deb, no debhelper).
#
# Usage: deploy/build-deb.sh [--arch amd64|arm64] [--binary PATH] [--onnxruntime-dir DIR]
#                            [--out DIR] [--version VERSION]
#   --arch             Debian architecture (default: this machine's, `dpkg --print-architecture`)
#   --binary           the hub binary to ship (default: build it: `cargo build --release` for
#                      amd64, deploy/build-aarch64.sh for arm64)
#   --onnxruntime-dir  folder holding libonnxruntime.so.* for that arch (default:
#                      .runtime/onnxruntime/<x86_64|aarch64>, as deploy/fetch-onnxruntime.sh
#                      leaves it); shipped when present, skipped with a note otherwise
#   --out              where to write hub_<version>_<arch>.deb (default: target/deb)
#   --version          package version (default: the workspace version in Cargo.toml)
#   --compression      xz (default, smallest), gzip (fast, used by the tests) or none
#
# The package installs:
#   /usr/bin/hub, /usr/bin/hub-serial-devices
#   /usr/lib/hub/libonnxruntime.so*              (ONNX Runtime, when present)
#   /usr/share/hub/models/*                      (the default model, manifest, labels, licences)
#   /etc/hub/hub.toml                            (conffile: the example config, site.id to fill in)
#   /lib/systemd/system/hub.service, /lib/udev/rules.d/61-hub-devices.rules
#   /usr/share/doc/hub/*                         (README, deploy guide, example config)
# and its postinst creates the `hub` system user (in dialout) and /var/lib/hub (0750).
# Prints the .deb's path on the last line of stdout.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

arch="$(dpkg --print-architecture)"
binary=""
ort_dir=""
out="$repo_root/target/deb"
version=""
compression=xz
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="${2:?}"; shift 2 ;;
        --binary) binary="${2:?}"; shift 2 ;;
        --onnxruntime-dir) ort_dir="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        --version) version="${2:?}"; shift 2 ;;
        --compression) compression="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "build-deb: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

case "$arch" in
    amd64) uname_arch=x86_64; elf_machine="X86-64" ;;
    arm64) uname_arch=aarch64; elf_machine="AArch64" ;;
    *) echo "build-deb: unsupported arch '$arch' (amd64 or arm64)" >&2; exit 2 ;;
esac
if [ -z "$version" ]; then
    version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
fi
if [ -z "$binary" ]; then
    if [ "$arch" = arm64 ]; then
        binary="$(bash deploy/build-aarch64.sh --profile release | tail -n 1)"
    else
        cargo build --locked --release -p hub --bin hub >&2
        binary="${CARGO_TARGET_DIR:-$repo_root/target}/release/hub"
    fi
fi
[ -x "$binary" ] || { echo "build-deb: $binary is not an executable" >&2; exit 1; }
if ! readelf -h "$binary" | grep -q "Machine:.*$elf_machine"; then
    echo "build-deb: $binary is not a $elf_machine binary (wanted for $arch)" >&2
    exit 1
fi
ort_dir="${ort_dir:-$repo_root/.runtime/onnxruntime/$uname_arch}"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/hub_${version}_${arch}"
mkdir -p "$root/DEBIAN"

install -D -m 0755 "$binary" "$root/usr/bin/hub"
# Symbols and debug info are no use on the box and cost card space: strip the packaged copy.
strip_tool=strip
[ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ] && strip_tool=aarch64-linux-gnu-strip
if command -v "$strip_tool" >/dev/null 2>&1; then
    "$strip_tool" --strip-unneeded "$root/usr/bin/hub"
else
    echo "build-deb: note: $strip_tool not found; packaging the binary unstripped" >&2
fi
install -D -m 0755 deploy/hub-serial-devices "$root/usr/bin/hub-serial-devices"
install -D -m 0644 deploy/systemd/hub.service "$root/lib/systemd/system/hub.service"
install -D -m 0644 deploy/udev/61-hub-devices.rules "$root/lib/udev/rules.d/61-hub-devices.rules"

# /etc/hub/hub.toml: the documented example with site.id commented out, so that a fresh box
# waits for the technician instead of binding its database to the example's site.
install -d -m 0755 "$root/etc/hub"
awk '
    /^\[/ { in_site = ($0 == "[site]") }
    in_site && /^id = / && !done { print "# Set this to the site id central uses for this warehouse, then: systemctl start hub"; print "# " $0; done = 1; next }
    { print }
' config/hub.example.toml > "$root/etc/hub/hub.toml"
chmod 0640 "$root/etc/hub/hub.toml"

doc="$root/usr/share/doc/hub"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 deploy/README.md "$doc/deploy.md"
install -D -m 0644 config/hub.example.toml "$doc/hub.example.toml"
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hub

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.

Files: usr/share/hub/models/*
License: see /usr/share/hub/models/LICENSE.md and PROVENANCE.md

Files: usr/lib/hub/libonnxruntime.so*
License: MIT (ONNX Runtime, Microsoft Corporation)

Files: usr/bin/hub (statically linked part: libjpeg-turbo 3.1, the JPEG decoder)
License: BSD-3-Clause and IJG and Zlib
 This software is based in part on the work of the Independent JPEG Group.
 libjpeg-turbo: Copyright (C) 2009-2024 D. R. Commander, and others; see
 https://github.com/libjpeg-turbo/libjpeg-turbo/blob/main/LICENSE.md
COPYRIGHT

shipped_ort="no"
if compgen -G "$ort_dir/libonnxruntime.so.*" >/dev/null; then
    lib="$(ls "$ort_dir"/libonnxruntime.so.* | sort -V | tail -n 1)"
    if ! readelf -h "$lib" | grep -q "Machine:.*$elf_machine"; then
        echo "build-deb: $lib is not a $elf_machine library" >&2
        exit 1
    fi
    install -D -m 0644 "$lib" "$root/usr/lib/hub/$(basename "$lib")"
    ln -s "$(basename "$lib")" "$root/usr/lib/hub/libonnxruntime.so"
    shipped_ort="$(basename "$lib")"
else
    echo "build-deb: note: no ONNX Runtime library in $ort_dir (run deploy/fetch-onnxruntime.sh --arch $uname_arch); packaging without it" >&2
fi

shipped_models=0
if [ -d models ]; then
    for f in models/*; do
        case "$f" in *.py) continue ;; esac
        [ -f "$f" ] || continue
        install -D -m 0644 "$f" "$root/usr/share/hub/models/$(basename "$f")"
        shipped_models=$((shipped_models + 1))
    done
fi

# Dependencies from the dynamic sections of what we ship: the newest glibc symbol version any
# of it needs, libgcc for the hub, libstdc++ for ONNX Runtime.
elves=("$root/usr/bin/hub")
[ "$shipped_ort" != no ] && elves+=("$root/usr/lib/hub/$shipped_ort")
glibc="$(for elf in "${elves[@]}"; do readelf --dyn-syms -W "$elf"; done \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)"
depends="adduser, libc6 (>= ${glibc:-2.31})"
needed="$(for elf in "${elves[@]}"; do readelf -d "$elf"; done)"
if grep -q 'NEEDED.*libgcc_s' <<<"$needed"; then
    depends="$depends, libgcc-s1"
fi
if grep -q 'NEEDED.*libstdc++' <<<"$needed"; then
    depends="$depends, libstdc++6"
fi
installed_kb="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"

cat > "$root/DEBIAN/control" <<CONTROL
Package: hub
Version: $version
Architecture: $arch
Maintainer: Front-warehouse hub maintainers <hub@localhost>
Installed-Size: $installed_kb
Depends: $depends
Recommends: systemd, udev
Section: misc
Priority: optional
Description: edge hub for community front warehouses and pickup points
 The daemon that runs on the small ARM box in each front warehouse: reads
 scales and scanners, checks deliveries with an image model, keeps the
 stock ledger and syncs every event to the central system over MQTT.
 Includes the systemd unit, udev rules for serial devices, the default
 model and the ONNX Runtime library.
CONTROL
echo "/etc/hub/hub.toml" > "$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "deploy/debian/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/hub_${version}_${arch}.deb"
dpkg-deb --root-owner-group "-Z$compression" --build "$root" "$deb" >&2
echo "build-deb: $deb (binary $(basename "$binary"), onnxruntime: $shipped_ort, model files: $shipped_models)" >&2
echo "$deb"
