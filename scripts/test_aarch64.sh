#!/usr/bin/env bash
# The aarch64 path (Ascend hosts are aarch64): cross-compiles the kernels, the model and their
# unit tests with Debian's aarch64 toolchain and runs them under qemu-aarch64, so the NEON
# kernels are checked against their scalar references on every CI run. Installs the cross
# toolchain and the arm64 libraries it needs (multiarch) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${AARCH64_BUILD:-build-aarch64}

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
for p in libcmocka-dev libjansson-dev libpcre2-dev libutf8proc-dev; do
  dpkg-query -W -f='${Status}' "$p:arm64" 2>/dev/null | grep -q 'install ok installed' || need+=("$p:arm64")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test_aarch64: apt-get install ${need[*]}"
  dpkg --print-foreign-architectures | grep -q arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

tests="test_quant test_kquants test_matmul test_model_stories"
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DSGLC_ONLY="base;kernels;formats;model;runtime;tokenizer" \
  -DSGLC_TESTS="($(echo $tests | tr ' ' '|'))" >/dev/null
cmake --build "$build" -j "${JOBS:-2}" >/dev/null
failed=0
for t in $tests; do
  t0=$SECONDS
  if SGLC_TEST_QUICK=1 SGLC_ROOT=$PWD qemu-aarch64 -L / "$build/$t" >"$build/$t.log" 2>&1; then
    echo "aarch64 $t: passed ($((SECONDS - t0)) s)"
  else
    echo "aarch64 $t: FAILED ($((SECONDS - t0)) s)"; tail -20 "$build/$t.log"; failed=1
  fi
done
exit $failed
