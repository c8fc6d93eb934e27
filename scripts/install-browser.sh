#!/usr/bin/env bash
# Headless Chromium for the browser tests (wallet_lake_tests/ui), from Debian's packages: the
# tests drive /usr/bin/chromium through Playwright's Python client, which never downloads a
# browser of its own. A no-op when the browser is there (WL_CHROMIUM, default /usr/bin/chromium).
# Versions: Chromium unpinned, Playwright 1.65.2
#   (Chromium the distribution's current package, Playwright from constraints.txt;
#   wallet_lake_tests/unit/test_stack_scripts.py keeps them equal)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/stack/lib.sh"
CHROMIUM="${WL_CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] && exit 0
stack_paths
apt_install chromium --no-install-recommends chromium fonts-dejavu-core
[[ -x "$CHROMIUM" ]] || fail "browser: chromium installed but $CHROMIUM is missing; set WL_CHROMIUM to its path"
