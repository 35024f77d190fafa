#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit tests, lit/FileCheck, fuzzing;
# then the runtime and kernels again, built with ASan and UBSan, and their tests under them
# (scripts/sanitize.sh; MOEPLAN_SANITIZE=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd "${MOEPLAN_BUILD_DIR:-build}" && ctest --output-on-failure -j 2)
if [ "${MOEPLAN_SANITIZE:-1}" != 0 ]; then
  scripts/sanitize.sh
fi
