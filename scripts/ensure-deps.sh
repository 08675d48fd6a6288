#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (root), or names what is missing (not root).
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A need=( [tmux]=tmux [influxd]=influxdb [sqlite3]=sqlite3 [zsh]=zsh [script]=bsdutils [mosquitto]=mosquitto )
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's influxdb package may start a service on install where systemd runs; the tests start their own.
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "still missing after install: $cmd" >&2; exit 1; }
done
echo "system packages: installed ${missing[*]}"
