#!/usr/bin/env bash
# What CI runs for the benchmarks: the --quick harness (a few hundred
# connections) against Herald and the Node.js reference. No timing
# assertions: exits 0 when every scenario ran, non-zero when one could not.
# Extra arguments go to run.py (e.g. --debug to reuse a debug build).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
exec python3 bench/run.py --quick "$@"
