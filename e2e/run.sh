#!/usr/bin/env bash
# Runs Herald's e2e suites (node socket.io-client + python-socketio) against $HERALD_BIN (default
# debug/herald under $CARGO_TARGET_DIR, else under target/; a relative CARGO_TARGET_DIR is taken from the
# repository root, as cargo run there takes it); builds nothing.
set -uo pipefail
cd "$(dirname "$0")"
E2E_DIR="$(pwd)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(cd .. && pwd)/$target_dir" ;; esac
export HERALD_BIN="${HERALD_BIN:-$target_dir/debug/herald}"

if [ ! -x "$HERALD_BIN" ]; then
  echo "e2e: no server binary at $HERALD_BIN (build it first, or set HERALD_BIN)" >&2
  exit 2
fi

# --- node deps ---
if ! command -v node >/dev/null 2>&1; then
  echo "e2e: node is required" >&2
  exit 2
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error || exit 2
else
  npm install --no-audit --no-fund --loglevel=error || exit 2
fi

# --- python deps (venv at e2e/.venv) ---
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  rm -rf .venv
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    # Debian without python3-venv: install it, then retry
    if command -v apt-get >/dev/null 2>&1; then
      ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      (apt-get update -qq && apt-get install -y -qq "python${ver}-venv" || apt-get install -y -qq python3-venv) >/dev/null 2>&1
    fi
    rm -rf .venv
    "$PY" -m venv .venv || exit 2
  fi
fi
.venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt || exit 2

status=0

# Every server's log and every secret the tests used go to one folder per run; the last step scans it.
if [ -z "${HERALD_E2E_LOG_DIR:-}" ]; then
  # the five latest runs' folders are kept; older ones go
  ls -dt "$E2E_DIR"/logs/run-* 2>/dev/null | tail -n +5 | xargs -r rm -rf
  HERALD_E2E_LOG_DIR="$E2E_DIR/logs/run-$(date -u +%Y%m%dT%H%M%SZ)-$$"
fi
export HERALD_E2E_LOG_DIR
mkdir -p "$HERALD_E2E_LOG_DIR"
echo "e2e: server logs in $HERALD_E2E_LOG_DIR"

echo "=== e2e: node --test (socket.io-client) ==="
node --test --test-concurrency="${E2E_CONCURRENCY:-4}" test/ || status=1

echo "=== e2e: pytest (python-socketio) ==="
.venv/bin/python -m pytest -q -p no:cacheprovider python/
rc=$?
if [ "$rc" -ne 0 ]; then status=1; fi

echo "=== e2e: no token, API key or notification text in any server log ==="
node scan-logs.mjs --self-test || status=1
node scan-logs.mjs "$HERALD_E2E_LOG_DIR" || status=1

exit "$status"
