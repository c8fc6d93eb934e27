#!/usr/bin/env bash
# The reports pages' front-end packages (api/ui/package.json: Chart.js), installed from the npm
# registry with `npm ci` exactly as api/ui/package-lock.json pins them (integrity-checked, no
# install scripts) into the git-ignored api/ui/node_modules, which the API serves at /ui/vendor:
# the pages work without internet access. Skipped when the lock file is unchanged since the last
# install. Node.js and npm come from Debian's packages when the machine has none.
# Versions: Chart.js 4.6.1, Node.js unpinned, npm unpinned
#   (Chart.js from api/ui/package-lock.json, Node.js and npm the distribution's current packages;
#   wallet_lake_tests/unit/test_stack_scripts.py keeps them equal)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/stack/lib.sh"
UI="$ROOT/api/ui"
stamp="$UI/node_modules/.wallet-lake-installed"
want="$(sha256sum "$UI/package-lock.json" | cut -d' ' -f1)"
[[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && exit 0
stack_paths
command -v npm >/dev/null || apt_install nodejs nodejs npm
log "ui: npm ci in api/ui (Chart.js for the reports pages)"
(cd "$UI" && npm ci --ignore-scripts --no-audit --no-fund >"$LOGS/npm-ui.log" 2>&1) \
  || fail "ui: npm ci failed; see $LOGS/npm-ui.log. Retry: stack/wallet-stack up"
echo "$want" >"$stamp"
