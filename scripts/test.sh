#!/usr/bin/env bash
# Every test Herald has, from a fresh machine: setup, format and lint
# checks, Rust unit and integration tests, end-to-end tests with the real
# socket.io-client and python-socketio, and the benchmark harness smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "=== cargo fmt --check ==="
cargo fmt --all -- --check
echo "=== cargo clippy ==="
cargo clippy -p herald --all-targets -- -D warnings
echo "=== cargo test ==="
cargo test -p herald
echo "=== cargo test: the patched engineioxide (vendor/README.md) ==="
CARGO_TARGET_DIR="$PWD/target/vendor-engineioxide" \
  cargo test --locked --manifest-path vendor/engineioxide/Cargo.toml --features __test_harness --lib --tests
echo "=== e2e ==="
cargo build -p herald --bins
HERALD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/herald" bash e2e/run.sh
echo "=== fuzz: a short run of each target (fuzz/README.md) ==="
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
if [ -f bench/smoke.sh ]; then
  echo "=== bench smoke (no timing assertions) ==="
  bash bench/smoke.sh
fi
echo "=== all tests passed ==="
