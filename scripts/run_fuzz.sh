#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan in build-fuzz,
# then runs each one for $FUZZ_SECONDS seconds (default 30), seeded from
# tests/fuzz/seeds/<target>/ when that folder exists. Prints one line per target; exits 1 if
# the build fails or any target crashes, leaks, times out or runs out of memory.
# Settings (environment): FUZZ_SECONDS, FUZZ_TIMEOUT (seconds one input may take, default 20),
# FUZZ_TARGETS (space-separated names to run, default all), FUZZ_BUILD (default build-fuzz),
# JOBS (build parallelism, default 2), SGLC_ONLY (developer builds: only these src/ folders),
# FUZZ_SEED (libFuzzer's random seed, default 1: CI starts from the seed folders alone, so a fixed
# seed makes its run repeatable; set FUZZ_SEED=0 for a fresh random seed when hunting).
# New inputs found go to FUZZ_BUILD/corpus/<target>/ (the seed folders are only read), and a
# failing input to FUZZ_BUILD/artifacts/<target>-crash-..., with the log beside it.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-30}
timeout=${FUZZ_TIMEOUT:-20}
seed=${FUZZ_SEED:-1}
jobs=${JOBS:-2}

if ! command -v clang >/dev/null; then
    echo "run_fuzz: clang is needed (libFuzzer)" >&2
    exit 1
fi

# The targets fuzz the parsers of outside input, so only their folders are built (instrumenting
# the large per-ISA kernel files for the fuzzer would cost most of CI's time for nothing).
# SGLC_ONLY is always passed so that a value cached by an earlier run never sticks.
SGLC_ONLY=${SGLC_ONLY:-base;formats;tokenizer;chat;http}
if ! cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DSGLC_FUZZ=ON -DSGLC_SANITIZE=ON \
        -DSGLC_ONLY="${SGLC_ONLY:-}" -DSGLC_TESTS='^$' >"$build.configure.log" 2>&1; then
    echo "run_fuzz: configure failed, see $build.configure.log" >&2
    tail -20 "$build.configure.log" >&2
    exit 1
fi

targets=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
    targets+=("$name")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "run_fuzz: no fuzz targets in tests/fuzz/" >&2
    exit 1
fi

if ! cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$build/build.log" 2>&1; then
    echo "run_fuzz: build failed, see $build/build.log" >&2
    grep -E "error|Error" "$build/build.log" | head -20 >&2
    exit 1
fi

# UBSan reports are recoverable by default; make them fatal so libFuzzer keeps the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

mkdir -p "$build/artifacts"
failed=0
for name in "${targets[@]}"; do
    bin="$build/$name"
    corpus="$build/corpus/$name"
    seeds="$root/tests/fuzz/seeds/$name"
    log="$build/artifacts/$name.log"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    start=$(date +%s)
    "$bin" -max_total_time="$secs" -timeout="$timeout" -seed="$seed" -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$name-" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    if [ $rc -eq 0 ]; then
        printf '%-24s ok      %8s runs  cov %-6s %4ss\n' "$name" "${runs:-?}" "${cov:-?}" "$took"
    else
        what=$(grep -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z -]+' "$log" | head -1)
        [ -n "$what" ] || what=$(grep -oE 'SUMMARY: [A-Za-z]+: [a-zA-Z -]+' "$log" | head -1)
        art=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //')
        printf '%-24s FAILED  %s  input: %s  log: %s\n' "$name" "${what:-exit $rc}" "${art:-?}" "$log"
        failed=1
    fi
done
exit $failed
