#!/usr/bin/env bash
# Regenerates the README's pictures (docs/images/*.png) from the seed example: its report,
# and the report of its full search (moeplan search, about 30 s on 2 cores), rendered in
# headless Chromium by test/browser/screenshot.py (which also checks they are not blank and
# fetch nothing). Needs a build (scripts/setup.sh) and chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOEPLAN_BUILD_DIR:-build}
moeplan="$build/tools/moeplan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed=examples/seed-moe-30b/deployment.textproto
# The seed compiles with its placement errors reported (exit 1); the plan is written.
"$moeplan" compile "$seed" -o "$work/seed.plan" -q 2> /dev/null || [ -s "$work/seed.plan" ]
"$moeplan" report "$work/seed.plan" -o "$work/seed-report.html"
"$moeplan" search "$seed" --json > "$work/seed-search.json" || true  # exit 1: a requirement cannot hold
"$moeplan" report --search "$work/seed-search.json" -o "$work/seed-search.html"

/usr/bin/python3 test/browser/screenshot.py --out "$work/shots" \
  "$work/seed-report.html:1900" "$work/seed-search.html:1150"
cp "$work/shots/seed-report.png" docs/images/seed-report.png
cp "$work/shots/seed-search.png" docs/images/seed-search.png
ls -l docs/images/seed-report.png docs/images/seed-search.png
