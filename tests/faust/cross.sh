#!/usr/bin/env bash
# Cross-language test: livecheck and Faust LiveCheck (faust-streaming 0.15.3) sharing topics on a
# real broker (tansu 0.6.0), both ways, 100 tests each:
#
#   (a) a Faust service triggers tests and sends signals (records, a keyword argument);
#       a livecheck worker (--codec json) runs them;
#   (b) a livecheck service (json codec, #[livecheck::faust_record] values) triggers tests and
#       sends signals; a Faust LiveCheck worker runs them, checking it got records, not dicts.
#
# Each direction passes when every one of its tests has a PASS report on the report topic, read
# back and decoded with Faust's own TestReport model. Prints the counts; exits non-zero otherwise.
# Bounded: the whole run is given $LIVECHECK_FAUST_CROSS_TIMEOUT seconds (default 300). Every
# process it starts is stopped by its PID on exit.
#
#     tests/faust/cross.sh              # also what `cargo test -p livecheck-tests --test faust_cross` runs
#
# Environment:
#   TANSU                        tansu binary (else PATH, ~/.cargo/bin, ~/.cache/livecheck/tansu-0.6.0;
#                                installed into that cache when missing)
#   LIVECHECK_FAUST_VENV         Python venv (default target/faust-venv, shared with bench/faust)
#   LIVECHECK_FAUST_CROSS_BIN    the livecheck-faust-cross binary (default: cargo build it)
#   LIVECHECK_FAUST_CROSS_TESTS  tests per direction (100)
#   PYTHON                       python3 used to make the venv
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tests="${LIVECHECK_FAUST_CROSS_TESTS:-100}"
budget="${LIVECHECK_FAUST_CROSS_TIMEOUT:-300}"
partitions=4
started=$SECONDS

say() { echo "faust-cross: $*" >&2; }
left() {
    local rest=$((budget - (SECONDS - started)))
    if [ "$rest" -le 0 ]; then
        say "out of time (${budget}s)"
        exit 1
    fi
    echo "$rest"
}
# The report reader's own deadline: before its timeout, so that it still prints its counts.
reader_deadline() { echo $(($(left) > 10 ? $(left) - 5 : 5)); }

pids=()
workdir="$(mktemp -d "${TMPDIR:-/tmp}/faust-cross.XXXXXX")"
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for log in "$workdir"/*.log; do
            [ -e "$log" ] || continue
            echo "---- last lines of $(basename "$log")" >&2
            tail -n 30 "$log" >&2
        done
    fi
    rm -rf "$workdir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- the Python side: a venv with faust-streaming (bench/faust's requirements)
venv="${LIVECHECK_FAUST_VENV:-$root/target/faust-venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    say "creating a venv in $venv"
    "$python" -m venv "$venv"
fi
timeout "$(left)" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$root/bench/faust/requirements.txt" >&2
py=("$venv/bin/python" "$here/cross.py")

# -- the broker
tansu="${TANSU:-}"
if [ -z "$tansu" ]; then
    for candidate in "$(command -v tansu || true)" "$HOME/.cargo/bin/tansu" \
        "$HOME/.cache/livecheck/tansu-0.6.0/bin/tansu"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            tansu="$candidate"
            break
        fi
    done
fi
if [ -z "$tansu" ]; then
    say "installing tansu 0.6.0 into ~/.cache/livecheck/tansu-0.6.0 (about 10 minutes, once)"
    cargo install tansu --version 0.6.0 --locked --no-default-features \
        --features dynostore,libsql --root "$HOME/.cache/livecheck/tansu-0.6.0" >&2
    tansu="$HOME/.cache/livecheck/tansu-0.6.0/bin/tansu"
fi

# -- the livecheck side
bin="${LIVECHECK_FAUST_CROSS_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --quiet -p livecheck-tests --bin livecheck-faust-cross >&2)
    bin="$root/target/debug/livecheck-faust-cross"
fi

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
brokers="127.0.0.1:$port"
# tansu reads a .env from its directory and parents, and two OTEL/registry variables: keep it
# apart (tests/src/broker.rs does the same).
(cd "$workdir" && exec env -u OTEL_EXPORTER_OTLP_ENDPOINT -u SCHEMA_REGISTRY "$tansu" broker \
    --listener-url "tcp://$brokers" --advertised-listener-url "tcp://$brokers" \
    --storage-engine memory://tansu/ >"$workdir/tansu.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do
    if "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
say "tansu on $brokers"

run="r$(date +%s)-$$"
a="cross-$run-a"
b="cross-$run-b"
timeout "$(left)" "${py[@]}" topics --brokers "$brokers" --partitions "$partitions" \
    "$a-tests" "$a-bus" "$a-report" "$b-tests" "$b-bus" "$b-report"

# -- (a) Faust service -> livecheck worker
say "(a) Faust service, livecheck worker: $tests tests"
"$bin" --brokers "$brokers" --codec json --no-web --case cross.faust_service \
    --tests-topic "$a-tests" --bus-topic "$a-bus" --report-topic "$a-report" \
    --group-id "$a-group" --partitions "$partitions" >"$workdir/a-livecheck-worker.log" 2>&1 &
pids+=($!)
timeout "$(left)" "${py[@]}" service --brokers "$brokers" --prefix "$a" --run "$run-a" \
    --partitions "$partitions" --tests "$tests" >"$workdir/a-faust-service.log" 2>&1
a_ok=0
a_result="$(timeout "$(left)" "${py[@]}" reports --brokers "$brokers" --topic "$a-report" \
    --case cross.faust_service --run "$run-a" --expect "$tests" --deadline "$(reader_deadline)")" || a_ok=$?
echo "(a) Faust service -> livecheck worker: $a_result"

# -- (b) livecheck service -> Faust worker
say "(b) livecheck service, Faust worker: $tests tests"
"${py[@]}" worker --brokers "$brokers" --prefix "$b" --partitions "$partitions" \
    >"$workdir/b-faust-worker.log" 2>&1 &
pids+=($!)
timeout "$(left)" "$bin" service --brokers "$brokers" --prefix "$b" --run "$run-b" \
    --tests "$tests" >"$workdir/b-livecheck-service.log" 2>&1
b_ok=0
b_result="$(timeout "$(left)" "${py[@]}" reports --brokers "$brokers" --topic "$b-report" \
    --case cross.livecheck_service --run "$run-b" --expect "$tests" --deadline "$(reader_deadline)")" || b_ok=$?
echo "(b) livecheck service -> Faust worker: $b_result"

say "done in $((SECONDS - started)) s"
if [ "$a_ok" -ne 0 ] || [ "$b_ok" -ne 0 ]; then
    say "FAILED"
    exit 1
fi
echo "faust-cross: PASS both ways ($tests + $tests tests)"
