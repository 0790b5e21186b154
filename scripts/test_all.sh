#!/usr/bin/env bash
# `make test`: every phase in order, each timed, stopping at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: $((SECONDS - t0)) s"
}
phase deps scripts/install_deps.sh
phase build make --no-print-directory build
phase model make --no-print-directory model
phase unit make --no-print-directory unit
phase aarch64 scripts/test_aarch64.sh
phase fuzz make --no-print-directory fuzz
phase e2e make --no-print-directory e2e
echo "=== total: $((SECONDS - start)) s"
