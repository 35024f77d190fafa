#!/usr/bin/env bash
# Installs every dependency moeplan needs on Debian bookworm (apt-get), then configures and
# builds it into build/. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  cmake ninja-build ccache
  clang-19 libclang-rt-19-dev              # compiler; libFuzzer and sanitizers
  libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools  # MLIR 19, TableGen, lit, FileCheck
  libcli11-dev libprotobuf-dev protobuf-compiler nlohmann-json3-dev
  libgtest-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin libopenblas-dev
  libjemalloc-dev                          # the compiler's allocator (CMakeLists.txt)
  python3-numpy python3-torch              # the PyTorch oracle of the runtime tests
  python3-venv                             # .venv: transformers, the outside oracle
  chromium python3-pil fonts-dejavu-core   # the report pages' browser test (test/browser)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Hugging Face transformers, pinned to a release that runs on Debian's torch 1.13, in a
# virtual environment that sees Debian's torch and numpy (test/hf/hf_oracle.py).
venv=.venv
if ! "$venv/bin/python" -c "import transformers, safetensors, torch" 2>/dev/null; then
  echo "setup: installing transformers 4.40.2 into $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "transformers==4.40.2"
fi

build=${MOEPLAN_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  CC=clang-19 CXX=clang++-19 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
# Two cores and 24 GB: two jobs keep the build fast without swapping.
cmake --build "$build" -j "${MOEPLAN_JOBS:-2}"
