#!/usr/bin/env bash
# Makes sure an `influxd` (InfluxDB 1.x OSS, Debian's `influxdb` package) is on PATH for the
# InfluxDB store tests. Installs it when missing and running as root; otherwise says exactly
# what to install and exits non-zero, so no test can skip silently.
set -euo pipefail

if command -v influxd >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-influxd: influxd is missing; installing Debian's influxdb package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends influxdb >&2
  # The package starts a system service on :8086 on some systems; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now influxdb >/dev/null 2>&1 || true; fi
  if command -v influxd >/dev/null 2>&1; then
    exit 0
  fi
fi

cat >&2 <<'MSG'
ensure-influxd: influxd is not installed, and this script cannot install it (needs root and apt-get).
Install InfluxDB 1.x OSS so that `influxd` is on PATH, for example:
  sudo apt-get update && sudo apt-get install -y influxdb
MSG
exit 1
