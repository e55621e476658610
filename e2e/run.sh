#!/usr/bin/env bash
# Runs Herald's e2e suites (node socket.io-client + python-socketio) against $HERALD_BIN (default $CARGO_TARGET_DIR/debug/herald, else target/debug/herald); builds nothing.
set -uo pipefail
cd "$(dirname "$0")"
E2E_DIR="$(pwd)"
export HERALD_BIN="${HERALD_BIN:-${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}/debug/herald}"

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

echo "=== e2e: node --test (socket.io-client) ==="
node --test --test-concurrency="${E2E_CONCURRENCY:-4}" test/ || status=1

echo "=== e2e: pytest (python-socketio) ==="
.venv/bin/python -m pytest -q -p no:cacheprovider python/
rc=$?
if [ "$rc" -ne 0 ]; then status=1; fi

exit "$status"
