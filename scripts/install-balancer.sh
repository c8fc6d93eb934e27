#!/usr/bin/env bash
# HAProxy for `python -m api.serve --balance-requests N` (api/balancer.py): the per-request
# balancer in front of the API's workers, from Debian's packages. A no-op when it is there.
# Versions: HAProxy unpinned
#   (the distribution's current package; wallet_lake_tests/unit/test_stack_scripts.py keeps it equal)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/stack/lib.sh"
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] && exit 0
stack_paths
apt_install haproxy --no-install-recommends haproxy
[[ -x /usr/sbin/haproxy ]] || command -v haproxy >/dev/null || fail "balancer: haproxy installed but not found in /usr/sbin or PATH"
