#!/usr/bin/env bash
# Installs the system libraries adaroute links (Debian/Ubuntu) and builds the release binary.
# usage: scripts/setup.sh        (run from the repository root; uses sudo when not root)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=()
for pkg in libopenblas-dev libpng-dev libjpeg-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift not found on PATH (install Swift 6 from swift.org)" >&2; exit 1; }
swift build -c release 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
test -x .build/release/adaroute || { echo "error: release build failed" >&2; exit 1; }
echo "built .build/release/adaroute"
