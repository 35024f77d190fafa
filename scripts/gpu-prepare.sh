#!/usr/bin/env bash
# Prepares scripts/gpu-check.sh for a GPU machine that has CUDA (driver, cuBLAS), python3 with
# numpy, but no MLIR, MPI, OpenBLAS, Protobuf or network: builds here, compiles every plan
# the checks run, and packs what that machine lacks into one archive,
# .gpu-bundle.tar.xz (ignored by git; under 64 MiB):
#   build/tools/      moeplan-run, moeplan-compare, moeplan-calibrate (stripped)
#   build/test/       moeplan-cuda-kernel-tests, moeplan-runtime-bench
#   lib/              the shared libraries they and mpirun need beyond glibc and CUDA
#                     (Protobuf, OpenBLAS, OpenMPI's, ...), copied from this machine
#   root/usr/         OpenMPI's mpirun, its plugins and help files (relocated: OPAL_PREFIX)
#   work/             the plans and input of test/runtime/gpu-tests.sh (prepare)
#   bench/            the benchmark's plans: examples/clusters/h200.textproto at 16 x 1024
#                     and 128 x 1024 tokens
# Then, with the device tool: run `scripts/gpu-check.sh` carrying .gpu-bundle.tar.xz.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh > /dev/null
build=${MOEPLAN_BUILD_DIR:-build}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bundle=$stage/gpu-bundle
mkdir -p "$bundle"/{build/tools,build/test,lib,root,bench}
grep -q 'MOEPLAN_HAVE_CUDA:INTERNAL=ON\|moeplan: CUDA backend ON' "$build/CMakeCache.txt" 2>/dev/null ||
  [ -f "$build/test/moeplan-cuda-kernel-tests" ] || {
  echo "gpu-prepare: $build has no CUDA backend (nvcc was not found when it was configured)" >&2
  exit 2
}

for tool in moeplan-run moeplan-compare moeplan-calibrate; do strip -o "$bundle/build/tools/$tool" "$build/tools/$tool"; done
for test in moeplan-cuda-kernel-tests moeplan-runtime-bench; do strip -o "$bundle/build/test/$test" "$build/test/$test"; done

# OpenMPI as Debian installs it (mpirun, plugins, help files) and PMIx's plugins.
for package in openmpi-bin openmpi-common libopenmpi3 libpmix2; do
  dpkg -L "$package" | while read -r f; do
    case $f in /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      mkdir -p "$bundle/root$(dirname "$f")"
      cp -a "$f" "$bundle/root$f"
    fi
  done
done

# Debian names mpirun through /etc/alternatives, which the GPU machine lacks.
ln -sf orterun "$bundle/root/usr/bin/mpirun"
ln -sf orterun "$bundle/root/usr/bin/mpiexec"

# Every shared library those need, except glibc's, the C++ runtime's and CUDA's (the GPU
# machine has its own, newer ones), dereferenced into lib/.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libnccl|libnvidia)'
{
  find "$bundle/build" -type f -perm -u+x
  find "$bundle/root" -name '*.so*' -type f
  echo /usr/bin/orterun
} | xargs ldd 2>/dev/null | awk '/=> \// {print $1, $3}' | sort -u | while read -r name path; do
  [[ $name =~ $skip ]] && continue
  cp -L "$path" "$bundle/lib/$name"
done

# Plans and input of the end-to-end checks; the benchmark's plans.
MOEPLAN_PYTHON=/usr/bin/python3 test/runtime/gpu-tests.sh prepare "$build" "$bundle/work" > /dev/null
rm -f "$bundle/work/tiny.ckpt"  # 68 MB; the checks generate the same weights on the device
for sequences in 16 128; do
  sed "s/^  sequences: 16$/  sequences: $sequences/" examples/clusters/h200.textproto > "$stage/h200-$sequences.textproto"
  "$build/tools/moeplan" compile "$stage/h200-$sequences.textproto" -o "$bundle/bench/h200-${sequences}x1024.plan"
done
# The commit it was built from (and whether the tree had changes beside it).
echo "$(git rev-parse HEAD)$([ -z "$(git status --porcelain --untracked-files=no)" ] || echo ' with uncommitted changes')" > "$bundle/commit"

tar -C "$stage" -cf - gpu-bundle | xz -T2 -6 > .gpu-bundle.tar.xz
echo "gpu-prepare: .gpu-bundle.tar.xz, $(du -h .gpu-bundle.tar.xz | cut -f1) ($(du -sh "$bundle" | cut -f1) unpacked), commit $(cat "$bundle/commit")"
