#!/usr/bin/env bash
# The CPU kernel tests under Valgrind memcheck: the engine's unit tests of its unsafe CPU code
# (convolution tiles, the block transpose, the direct convolution and its packing, scratch
# buffers) and the forward/backward references of conv (im2col and direct), matmul, pooling and
# BatchNorm. Any memcheck error (invalid read or write, use of uninitialised memory, a definite
# leak) fails the script. Not part of scripts/test.sh: it takes several minutes.
#
# Vector paths: valgrind 3.19 executes SSE to AVX2 and FMA but not AVX-512, and the CPUID it
# reports has no AVX-512, so kiln's own AVX-512 code (the convolution tile and the block
# transpose, engine/src/cpu/conv_tile.rs and transpose.rs) is not run here: their tests return
# early and convolutions take the im2col + gemm path. gemm picks its kernels by CPUID, so its
# AVX2+FMA kernels are the ones checked. KILN_NO_AVX512=1 (set below, honoured by
# conv_tile::available) makes the same choice explicit and works on a native run too.
# Those AVX-512 paths are checked natively instead, under AddressSanitizer (a nightly toolchain:
# the engine's cpu:: unit tests with -Zsanitizer=address), when `cargo +nightly` is there.
# Last run (2 shared cores): lib 9 s, gradcheck 112 s, reference 668 s; no memcheck error;
# AddressSanitizer: the 5 cpu:: tests (AVX-512 tile and transpose included) clean.
#
# Usage: scripts/memcheck.sh [extra valgrind args]
set -euo pipefail
cd "$(dirname "$0")/.."

valgrind=${VALGRIND:-/usr/bin/valgrind}
tests=(--lib --test reference --test gradcheck)

echo "== building the engine's tests (release, with debug info)"
bins=$(cargo test --release -p kiln-engine "${tests[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')

status=0
for bin in $bins; do
    name=$(basename "$bin")
    echo "== memcheck $name"
    start=$SECONDS
    # One test thread: memcheck serializes threads anyway, and errors are easier to attribute.
    if ! KILN_NO_AVX512=1 "$valgrind" --tool=memcheck --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes \
        --quiet "$@" "$bin" --test-threads=1 -q; then
        echo "!! $name: memcheck reported errors (or a test failed)"
        status=1
    fi
    echo "   $name: $((SECONDS - start)) s"
done
if cargo +nightly --version >/dev/null 2>&1; then
    echo "== AddressSanitizer on the AVX-512 paths (native, nightly)"
    if ! RUSTFLAGS="-Zsanitizer=address" cargo +nightly test --release -q \
        --target-dir "${ASAN_TARGET_DIR:-target/asan}" --target x86_64-unknown-linux-gnu \
        -p kiln-engine --lib -- cpu::; then
        echo "!! AddressSanitizer reported errors (or a test failed)"
        status=1
    fi
else
    echo "== no nightly toolchain: the AVX-512 paths are not checked"
fi
exit $status
