#!/usr/bin/env bash
# Prepares a fresh machine for Herald's tests: system packages, then the
# local PostgreSQL and Redis services if they are down. Idempotent.
set -euo pipefail

need=()
command -v cargo >/dev/null || { echo "setup: the Rust toolchain (cargo) is required" >&2; exit 1; }
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3 python3-pip python3-venv)
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl)
# the cluster e2e tests: a private redis-server per file, psql to create their databases, nginx for the
# tested example in docs/nginx/
command -v redis-server >/dev/null || need+=(redis-server)
command -v psql >/dev/null || need+=(postgresql-client)
# e2e/test/faults.test.mjs runs a private PostgreSQL server (initdb, pg_ctl) that it may crash
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v nginx >/dev/null || need+=(nginx-light)
# the TLS e2e test makes its self-signed certificate with the openssl tool
command -v openssl >/dev/null || need+=(openssl)
# the page tests (e2e/browser.mjs) drive Debian's Chromium with playwright-core
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Services the cluster tests use; started only when present and down.
if command -v redis-server >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || echo "setup: could not start redis" >&2
fi
if command -v pg_ctlcluster >/dev/null && ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || echo "setup: could not start postgresql" >&2
fi
echo "setup: ok"
