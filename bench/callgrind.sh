#!/usr/bin/env bash
# Counts the user-space instructions a Herald binary executes for one
# scenario, under valgrind's callgrind: a figure that does not move with the
# machine's load, for A/B comparisons of two builds where CPU times are too
# noisy (bench/BENCHMARKS.md, "How the numbers are taken").
#
#   bench/callgrind.sh BINARY UNITS LOADGEN-ARGS...
#   bench/callgrind.sh target/release/herald 3000 notify --users 200 --count 3000
#
# Prints the instructions executed while the generator ran, divided by UNITS
# (the scenario's units of work: notifications, connects, deliveries), and
# leaves the profile in bench/results/callgrind-<time>.out (read it with
# callgrind_annotate). Startup is excluded: counting starts once the server
# answers /healthz, and after CALLGRIND_SETUP when it is set: a generator
# run whose work is not counted, e.g. the notifications a catch-up reads:
#
#   CALLGRIND_SETUP="seed --users 1000 --pending 3" \
#     bench/callgrind.sh target/release/herald 1000 catchup --users 1000 --pending 3
#
# Group commit batches depend on timing, so a scenario that writes to the
# store varies by a few percent between runs. Presence events are off unless HERALD_PRESENCE_AUDIENCE says otherwise, as in
# bench/run.py (every generator client is in one role).
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,24p' "$0" >&2
  exit 2
fi
bin=$(realpath "$1")
units=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
loadgen="$target_dir/release/herald-loadgen"
port=${PORT:-8019}
key=bench-api-key-0123456789abcdef
secret=bench-jwt-secret-0123456789abcdef
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

cd "$data"
env JWT_SECRET=$secret HERALD_API_KEYS=$key HERALD_PORT="$port" HERALD_HOST=127.0.0.1 \
  HERALD_DATA_DIR="$data" HERALD_LOG=warn \
  HERALD_PRESENCE_AUDIENCE="${HERALD_PRESENCE_AUDIENCE:-none}" \
  HERALD_RATE_LIMIT_PER_SECOND=1000000 HERALD_RATE_LIMIT_BURST=1000000 \
  HERALD_API_RATE_LIMIT_PER_SECOND=1000000 HERALD_API_RATE_LIMIT_BURST=1000000 \
  valgrind --tool=callgrind --callgrind-out-file="$data/cg.out" --dump-instr=no "$bin" \
  >"$data/server.log" 2>&1 &
server=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
# Dump (and reset) the counts of the start-up (and set-up), run the load,
# dump again.
if [ -n "${CALLGRIND_SETUP:-}" ]; then
  # shellcheck disable=SC2086 # the set-up is a list of arguments
  "$loadgen" --addr "127.0.0.1:$port" --api-key $key --jwt-secret $secret \
    --timeout 600 $CALLGRIND_SETUP >"$data/setup.json"
fi
callgrind_control -d startup "$server" >/dev/null
"$loadgen" --addr "127.0.0.1:$port" --api-key $key --jwt-secret $secret \
  --server-pid "$server" --timeout 600 "$@" >"$data/loadgen.json"
callgrind_control -d load "$server" >/dev/null
kill "$server"
wait "$server" || true

profile=$(grep -l "^desc: Trigger: Client Request: load\|^desc: Trigger: dump load" "$data"/cg.out.* | head -1)
total=$(awk '/^summary:/ {print $2}' "$profile")
mkdir -p "$root/bench/results"
out="$root/bench/results/callgrind-$(date -u +%Y-%m-%dT%H%M%SZ).out"
cp "$profile" "$out"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('loadgen ok:', d.get('ok'))" "$data/loadgen.json"
echo "instructions: $total in all, $((total / units)) per unit ($units units)"
echo "profile: $out"
