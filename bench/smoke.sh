#!/usr/bin/env bash
# What CI runs for the benchmarks: the --quick harness (a few hundred
# connections) against Herald and the Node.js reference, and the quick
# cluster scenarios (three and two Herald nodes on a private redis-server
# and a fresh PostgreSQL database, which scripts/setup.sh provides). No
# timing assertions: exits 0 when every scenario ran, non-zero when one
# could not. Extra arguments go to run.py (e.g. --debug to reuse a debug
# build).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
exec python3 bench/run.py --quick --cluster "$@"
