#!/usr/bin/env bash
# The demo: builds moeplan if needed, then checks the seed deployment and the tiny model.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null || { echo "demo: setup failed (run scripts/setup.sh)"; exit 2; }
moeplan=${MOEPLAN_BUILD_DIR:-build}/tools/moeplan

echo "== moeplan check examples/seed-moe-30b/deployment.textproto"
"$moeplan" check examples/seed-moe-30b/deployment.textproto
echo "(exit status $?: 1 means the seed's strategy has errors)"
echo
echo "== moeplan check examples/tiny-moe/deployment.textproto"
"$moeplan" check examples/tiny-moe/deployment.textproto
status=$?
echo "(exit status $status)"
exit $status
