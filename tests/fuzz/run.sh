#!/usr/bin/env bash
# run.sh - build every libFuzzer target with clang (ASan+UBSan) and run each
# for a bounded time on a scratch copy of its seed corpus. Fails on any crash,
# leak or sanitizer report. Usage: tests/fuzz/run.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-45}
out=$(mktemp -d /tmp/bioxen-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT

CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -D_GNU_SOURCE -Inet -Ivmnode $(pkg-config --cflags jansson lua5.4))
LIBS=($(pkg-config --libs jansson lua5.4) -lm)

# target name → its sources (besides tests/fuzz/fuzz_<name>.c)
declare -A SRCS=(
    [frame]="net/frame.c"
    [proto]="net/frame.c net/proto.c"
)
if [ -f tests/fuzz/fuzz_convert.c ]; then
    SRCS[convert]="net/frame.c net/proto.c $(ls vmnode/*.c | grep -v '/main\.c$' | tr '\n' ' ')"
fi

for t in "${!SRCS[@]}"; do
    echo "== fuzz_$t: building"
    # shellcheck disable=SC2086
    clang "${CFLAGS[@]}" "tests/fuzz/fuzz_$t.c" ${SRCS[$t]} "${LIBS[@]}" -o "$out/fuzz_$t"
    mkdir -p "$out/corpus_$t"
    cp -r "tests/fuzz/corpus/$t/." "$out/corpus_$t/" 2>/dev/null || true
    echo "== fuzz_$t: running ${secs}s"
    if ! "$out/fuzz_$t" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$out/" "$out/corpus_$t" > "$out/log_$t" 2>&1; then
        tail -60 "$out/log_$t"
        echo "fuzz_$t FAILED; reproducer(s):"; ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* 2>/dev/null || true
        exit 1
    fi
    tail -1 "$out/log_$t"
done
echo "fuzz: all targets clean"
