#!/usr/bin/env bash
# Installs what the browser tests need beyond Python packages: Debian's Chromium (driven by
# Playwright through /usr/bin/chromium; Playwright's own browser download is not used) and
# Japanese fonts so screenshots show text. Does nothing when both are present.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "noto sans cjk" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Please install: ${need[*]} (the browser tests need them)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
