#!/usr/bin/env bash
# Every test Herald has, from a fresh machine: setup, format and lint
# checks, Rust unit and integration tests, end-to-end tests with the real
# socket.io-client and python-socketio, the benchmark harness smoke run, the
# Debian package and the README's commands on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts the binaries: CARGO_TARGET_DIR when set (relative to the
# repository root, as cargo takes it from here), else target/.
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac

bash scripts/setup.sh

echo "=== cargo fmt --check ==="
cargo fmt --all -- --check
echo "=== the patched engineioxide is the one built (vendor/README.md) ==="
bash scripts/vendor-guard.sh
echo "=== layers: no upward import, no cycle (src/lib.rs, Layout) ==="
python3 scripts/layers.py
echo "=== cargo clippy ==="
cargo clippy -p herald --all-targets -- -D warnings
echo "=== cargo test ==="
cargo test -p herald
echo "=== cargo test: the patched engineioxide (vendor/README.md) ==="
CARGO_TARGET_DIR="$target_dir/vendor-engineioxide" \
  cargo test --locked --manifest-path vendor/engineioxide/Cargo.toml --features __test_harness --lib --tests
echo "=== e2e ==="
cargo build -p herald --bins
HERALD_BIN="$target_dir/debug/herald" bash e2e/run.sh
if [ -f bench/smoke.sh ]; then
  echo "=== bench smoke (no timing assertions) ==="
  bash bench/smoke.sh
  echo "=== files bench smoke: a 2 MiB upload and download on each store, hash checked ==="
  python3 bench/files.py --stores sqlite,postgres --sizes 2 --runs 1
fi
# After the benchmark smoke run, whose release build they reuse.
echo "=== Debian package: install, run as a service, purge ==="
bash scripts/deb-test.sh
echo "=== the README's commands on a fresh clone ==="
bash scripts/readme-test.sh
echo "=== fuzz: a short run of each target (fuzz/README.md) ==="
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" bash scripts/fuzz.sh
echo "=== all tests passed ==="
