#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, lit/FileCheck, fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${MOEPLAN_BUILD_DIR:-build}"
ctest --output-on-failure -j 2
