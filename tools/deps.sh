#!/usr/bin/env bash
# Installs the Debian 12 packages redispool needs to build, test and run its demo.
# Only packages that are missing are installed, so a second run is cheap.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build
  libglib2.0-dev libhiredis-dev glib-networking
  gobject-introspection libgirepository1.0-dev
  valac gjs python3-gi gi-docgen python3-toml
  redis-server redis-tools openssl valgrind
  python3-redis strace linux-perf
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "tools/deps.sh: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The Debian package starts a system redis-server on port 6379; the project never
# uses it (tests start their own on free ports), so stop it to keep the port free.
if [ -x /usr/bin/systemctl ] && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl stop redis-server || true
fi
