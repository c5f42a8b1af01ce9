#!/usr/bin/env bash
# Runs kiln's fuzz targets (fuzz/: cargo-fuzz and libFuzzer, on a nightly toolchain) for a set
# number of executions each, coverage-guided, with debug assertions (overflow checks) on.
#
# Usage: scripts/fuzz.sh [RUNS] [TARGET...]
#   RUNS     executions per target (default 1000000); FUZZ_SECONDS caps each target's time too.
#   TARGET   targets to run (default: all, as `cargo fuzz list` gives them).
#   FUZZ_TIMEOUT: seconds one input may take before it counts as a hang (default 60: on a
#   busy shared machine a nice 19 process can stall for seconds).
# Each target starts from fuzz/seeds/<target> (valid inputs, made by
# scripts/fixtures/make_fuzz_seeds.py) and fuzz/regressions/<target> (past crash inputs), grows its
# corpus in fuzz/corpus/<target> (not committed), and saves a crash, hang or out-of-memory input
# in fuzz/artifacts/<target>. A summary line per target gives its executions and the result; the
# script fails if any target found something. Run it under `nice -n 19` on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

runs=${1:-1000000}
shift || true
seconds=${FUZZ_SECONDS:-0}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
# Release, overflow checks on; no sanitizer: the readers are safe Rust, and the emulator's unsafe
# copies are bounds-checked before they run (memory errors in unsafe code: scripts/memcheck.sh).
flags=(-O -a -s none)

cargo "+$toolchain" fuzz build "${flags[@]}"
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo "+$toolchain" fuzz list); fi

failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    inputs=("corpus/$t")
    for d in "seeds/$t" "regressions/$t"; do [ -d "$d" ] && inputs+=("$d"); done
    log="artifacts/$t/last-run.log"
    echo "== fuzz $t: $runs runs${seconds:+ (at most ${seconds}s)}"
    status=0
    # The emulator reports each refused module on stderr; those lines are dropped from the log.
    cargo "+$toolchain" fuzz run "${flags[@]}" "$t" "${inputs[@]}" -- \
        -runs="$runs" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-60}" -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="artifacts/$t/" 2>&1 |
        grep -v '^kiln-cuda-emu: ' >"$log" || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo "?")
    if grep -qE '^==[0-9]+== ERROR|deadly signal|panicked at|Timeout|out-of-memory' "$log"; then
        failed=1
        summary+=("$t: $execs executions, FOUND: $(ls -t "artifacts/$t" | grep -v last-run | head -1)")
    else
        summary+=("$t: $execs executions in ${secs}s, no crash, hang or panic")
    fi
    tail -3 "$log"
done
printf '%s\n' "== summary" "${summary[@]}"
exit $failed
