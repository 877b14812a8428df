#!/usr/bin/env bash
# The Faust LiveCheck baseline of livecheck-bench: makes a Python venv with faust-streaming 0.15.3
# (once; target/faust-venv, or $LIVECHECK_FAUST_VENV), then runs bench_faust.py with the given
# arguments. livecheck-bench (`cargo run --release -p bench`) calls it with the broker it started;
# by hand:
#
#     bench/faust/run.sh --brokers 127.0.0.1:9092 [--tests 3000] [--samples 300]
#
# Progress goes to stderr; the last line on stdout is `FAUST_RESULT {json}`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${LIVECHECK_FAUST_VENV:-$root/target/faust-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "faust: creating a venv in $venv" >&2
    "$python" -m venv "$venv"
fi
# Quick when already satisfied; pip's output goes to stderr so stdout stays the result.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" 1>&2
exec "$venv/bin/python" "$here/bench_faust.py" "$@"
