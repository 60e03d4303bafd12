#!/usr/bin/env bash
# run.sh - build every libFuzzer target with clang (ASan+UBSan) and run each
# for a bounded time on a scratch copy of its seed corpus. Fails on any crash,
# leak or sanitizer report.
# Usage: tests/fuzz/run.sh [seconds-per-target [target...]]  (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-45}
shift || true
out=$(mktemp -d /tmp/bioxen-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT

# -Werror as in the main build; clang (unlike gcc) flags the zero-filled
# fields of libseccomp's SCMP_A* macros, hence -Wno-missing-field-initializers
CFLAGS=(-g -O1 -Wall -Wextra -Werror -Wno-missing-field-initializers -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -D_GNU_SOURCE -DBX_VALUE_BYTES_MAX=262144 -Inet -Ivmnode -Imanager $(pkg-config --cflags jansson lua5.4 libevent libseccomp))
LIBS=($(pkg-config --libs jansson lua5.4 libevent libseccomp) -lm)

# target name → its sources (besides tests/fuzz/fuzz_<name>.c)
declare -A SRCS=(
    [frame]="net/frame.c"
    [proto]="net/frame.c net/proto.c net/modmatch.c"
)
# the node's modules without its main(): the real conversion, sandbox, limits
NODE_SRCS="$(ls vmnode/*.c | grep -v -e '/main\.c$' -e '/testhooks\.c$' | tr '\n' ' ')"
SRCS[convert]="net/frame.c net/proto.c net/modmatch.c $NODE_SRCS"
# the manager's pure checks and op table: the one list manager/CMakeLists.txt
# builds into bxcheck (linked by the manager), so a fuzzer runs what it runs
CHECK_SRCS="$(sed -n 's/^set(BX_CHECK_SRCS \(.*\))$/\1/p' manager/CMakeLists.txt | tr ' ' '\n' | sed 's|^|manager/|' | tr '\n' ' ')"
[ -n "$CHECK_SRCS" ] || { echo "run.sh: no BX_CHECK_SRCS line in manager/CMakeLists.txt"; exit 2; }
# the manager's framing and every op's check, plus the node's init-limits parser
SRCS[request]="net/frame.c net/proto.c net/modmatch.c manager/linebuf.c $CHECK_SRCS $NODE_SRCS"
# the manager's policy validator and path checker (pure: no file system)
SRCS[policy]="net/frame.c net/proto.c net/modmatch.c $CHECK_SRCS"

# the envelopes of forwarding over NATS (fwdcheck.c), and the request inside
SRCS[cluster]="net/frame.c net/proto.c net/modmatch.c $CHECK_SRCS"
# what another host's manager sends to the mail subjects (mailremote.c)
SRCS[mail]="net/frame.c net/proto.c net/modmatch.c $CHECK_SRCS"

# what hosts.c and names.c believe of a heartbeat, a names message, a
# record and a bucket key (manager/namescheck.c, in the pure checks)
SRCS[names]="net/frame.c net/proto.c net/modmatch.c $CHECK_SRCS"

# what the manager believes of a node's listening address, and the node's
# own address normal form and grants (vmnode/reachaddr.c)
SRCS[reach]="net/frame.c net/proto.c net/modmatch.c manager/reachcheck.c vmnode/reachaddr.c"

# netlib.c includes net_lua.h, lua/net.lua as bytes (as vmnode/CMakeLists.txt makes it)
{ echo "static const unsigned char net_lua[] = {"
  od -An -v -tx1 lua/net.lua | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'
  echo "};"; } > "$out/net_lua.h"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${!SRCS[@]}")
for t in "${targets[@]}"; do
    [ -n "${SRCS[$t]:-}" ] || { echo "no fuzz target '$t'"; exit 2; }
    echo "== fuzz_$t: building"
    # shellcheck disable=SC2086
    clang "${CFLAGS[@]}" -I"$out" "tests/fuzz/fuzz_$t.c" ${SRCS[$t]} "${LIBS[@]}" -o "$out/fuzz_$t"
    mkdir -p "$out/corpus_$t"
    cp -r "tests/fuzz/corpus/$t/." "$out/corpus_$t/" 2>/dev/null || true
    echo "== fuzz_$t: running ${secs}s"
    if ! "$out/fuzz_$t" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$out/" "$out/corpus_$t" > "$out/log_$t" 2>&1; then
        tail -60 "$out/log_$t"
        keep=$(mktemp -d /tmp/bioxen-fuzz-fail.XXXXXX)   # $out goes away on exit
        cp "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$keep"/ 2>/dev/null || true
        echo "fuzz_$t FAILED; reproducer(s) (rerun: fuzz_$t FILE):"; ls "$keep"/*
        exit 1
    fi
    tail -1 "$out/log_$t"
done
echo "fuzz: all targets clean"
