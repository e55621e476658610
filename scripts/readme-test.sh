#!/usr/bin/env bash
# The README's commands on a fresh clone of the committed HEAD: runs the
# server command ("Run the server") in the clone with no configuration,
# checks /healthz, the try-it page and the README's curl example, then stops
# it. The test command ("Run the tests") is not run (it would run this
# script again); the script checks instead that it is the one CI runs.
# Shares CARGO_TARGET_DIR, so only Herald's own crates are rebuilt.
#
# One setting is made: HERALD_PORT, a free port, because other tests on the
# machine may hold 8001. That 8001 is the default is checked with the
# clone's `herald check-config` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export CARGO_TARGET_DIR="$target_dir"
repo=$PWD

say() { echo "readme-test: $*"; }
fail() { echo "readme-test: FAIL: $*" >&2; exit 1; }

# The lines of the first ```sh block after the heading "## $1".
readme_block() {
  awk -v heading="## $1" '
    $0 == heading { found = 1; next }
    found && /^## / { exit }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
  ' README.md
}

server_cmd=$(readme_block "Run the server")
test_cmd=$(readme_block "Run the tests")
[ "$server_cmd" = "cargo run --release" ] || fail "the README's server command is '$server_cmd'"
[ -n "$test_cmd" ] || fail "the README has no test command"
grep -qxF "$test_cmd" .ci/run || fail "CI (.ci/run) does not run the README's test command '$test_cmd'"
say "test command '$test_cmd' is what CI runs"
# The README's notification example (its KEY=... and curl lines).
curl_example=$(awk '/^```sh$/ { inside = 1; block = ""; next }
  inside && /^```$/ { inside = 0; if (block ~ /curl .*notifications/) { print block; exit } next }
  inside { block = block $0 "\n" }' README.md)
[ -n "$curl_example" ] || fail "the README has no curl notification example"

work=$(mktemp -d)
server_pgid=""
cleanup() {
  set +e
  if [ -n "$server_pgid" ]; then
    kill -TERM -- "-$server_pgid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 -- "-$server_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server_pgid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet "$repo" "$work/herald"
cd "$work/herald"
say "cloned $(git rev-parse --short HEAD) into a temporary folder"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$work/server.log"
say "running '$server_cmd' (HERALD_PORT=$port)"
# Its own process group, so that cargo and the server it started stop together.
HERALD_PORT=$port setsid bash -c "$server_cmd" >"$log" 2>&1 &
server_pgid=$!

base="http://127.0.0.1:$port"
# The first run compiles Herald's own crates in release mode: minutes.
deadline=$((SECONDS + 1800))
until curl -fsS "$base/healthz" >/dev/null 2>&1; do
  kill -0 "$server_pgid" 2>/dev/null || fail "the server command exited: $(tail -n 20 "$log")"
  [ "$SECONDS" -lt "$deadline" ] || fail "no /healthz within 30 minutes: $(tail -n 20 "$log")"
  sleep 0.5
done
curl -fsS "$base/healthz" | grep -q '"ok"' || fail "/healthz"
say "/healthz: ok"
grep -qi 'development' "$log" || fail "no warning about development credentials in the log"

try=$(curl -fsS "$base/try") || fail "/try is not 200"
grep -q 'socket.io.min.js' <<<"$try" || fail "/try is not the try-it page"
say "/try: the try-it page"

# The README's example as written, but for the port: data/dev-api-key in
# the clone (the data directory it promises), the notification accepted.
[ -s data/dev-api-key ] || fail "no data/dev-api-key in the clone"
answer=$(bash -c "${curl_example//localhost:8001/127.0.0.1:$port}") || fail "the curl example failed"
grep -q '"notification"' <<<"$answer" || fail "the curl example answered: $answer"
say "the README's curl example: notification accepted"

# "With nothing configured, Herald listens on port 8001": the clone's own
# binary, the same resolution as serve, without the port setting.
config=$(cargo run --release -q -- check-config) || fail "check-config"
grep -q 'port: 8001' <<<"$config" || fail "the default port is not 8001"
say "default port 8001 (check-config)"

kill -TERM -- "-$server_pgid"
for _ in $(seq 1 150); do kill -0 -- "-$server_pgid" 2>/dev/null || break; sleep 0.1; done
kill -0 -- "-$server_pgid" 2>/dev/null && fail "the server did not stop on SIGTERM"
server_pgid=""
grep -q 'stopped' "$log" || fail "no 'stopped' line: $(tail -n 5 "$log")"
say "stopped; ok"
