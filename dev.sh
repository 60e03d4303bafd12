#!/usr/bin/env bash
# dev.sh - the README's two commands: set up a fresh Debian 12 machine,
# build, and run either the main demo or every test.
#
#   ./dev.sh demo    install deps, build, run examples/distributed_compute.py
#   ./dev.sh test    install deps, build, run every test (plain, then ASan+UBSan)
#   ./dev.sh build   install deps and build only
set -euo pipefail
cd "$(dirname "$0")"

DEBS=(build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-socket
      libevent-dev libjansson-dev libseccomp-dev python3 python3-pytest
      python3-prometheus-client nats-server libnats-dev)
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
# `ip netns` puts each manager of the cluster tests in its own network
# namespace (tests/python/clusterenv.py); without it they run unisolated
DEBS+=(iproute2)
# the cluster's TLS, nkey and .creds tests make their certificates and keys
# with it (tests/python/natsauth.py)
DEBS+=(openssl)

install_deps() {
    local missing=()
    for p in "${DEBS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

build() {   # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S . -B "$dir" -DBIOXEN_PYTHON="$PY" "$@" >/dev/null
    cmake --build "$dir" -j"$JOBS"
}

run_tests() {   # run_tests DIR
    ctest --test-dir "$1" --output-on-failure --timeout 1500
}

case "${1:-}" in
    demo)
        install_deps
        build build
        BIOXEN_MANAGER="$PWD/build/manager/bioxen-manager" "$PY" examples/distributed_compute.py
        ;;
    test)
        install_deps
        build build
        run_tests build
        echo "== again under AddressSanitizer + UndefinedBehaviorSanitizer"
        build build-asan -DBIOXEN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
        # Sanitizer reports from the manager and nodes (whose stderr pytest
        # swallows) go to files; any file at all fails the run.
        sanlog=$(mktemp -d /tmp/bioxen-sanitizers.XXXXXX)
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=$sanlog/asan \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$sanlog/ubsan \
            run_tests build-asan
        if [ -n "$(ls -A "$sanlog")" ]; then
            # ls too: a file left empty still names the pid that began a report
            echo "== sanitizer reports:"; ls -l "$sanlog"; cat "$sanlog"/*; exit 1
        fi
        rm -rf "$sanlog"
        echo "== fuzzing every parser the outside world reaches"
        DEBS=(clang libclang-rt-14-dev); install_deps
        tests/fuzz/run.sh "${BIOXEN_FUZZ_SECONDS:-60}"
        ;;
    build)
        install_deps
        build build
        ;;
    *)
        echo "usage: $0 demo|test|build" >&2
        exit 2
        ;;
esac
