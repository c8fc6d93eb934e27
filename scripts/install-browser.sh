#!/usr/bin/env bash
# Headless Chromium for the browser tests (wallet_lake_tests/ui), from Debian's packages: the
# tests drive /usr/bin/chromium through Playwright's Python client, which never downloads a
# browser of its own. A no-op when the browser is there (WL_CHROMIUM, default /usr/bin/chromium).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/stack/lib.sh"
CHROMIUM="${WL_CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] && exit 0
LOGS="${WL_STACK_DIR:-$ROOT/.stack}/logs"
mkdir -p "$LOGS"
log "browser: installing chromium from Debian's packages (browser tests)"
[[ $(id -u) -eq 0 ]] || fail "browser: $CHROMIUM is missing and installing it needs root (apt-get install chromium fonts-dejavu-core)"
apt-get update -qq >"$LOGS/apt-chromium.log" 2>&1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >>"$LOGS/apt-chromium.log" 2>&1 \
  || fail "browser: apt-get install chromium failed; see $LOGS/apt-chromium.log"
[[ -x "$CHROMIUM" ]] || fail "browser: chromium installed but $CHROMIUM is missing; set WL_CHROMIUM to its path"
