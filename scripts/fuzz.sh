#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ for FUZZ_SECONDS (default 30) with
# cargo fuzz (libFuzzer). cargo fuzz wants a nightly compiler; the stable
# one is told to act as one (RUSTC_BOOTSTRAP=1). A crash fails the run and
# leaves its input in fuzz/artifacts/<target>/: make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# Its own target directory: the sanitizer build shares nothing with the server's.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}/fuzz"
seconds="${FUZZ_SECONDS:-30}"
cargo fuzz build -O
for target in $(cargo fuzz list); do
  echo "=== fuzz: $target for ${seconds}s ==="
  mkdir -p "corpus/$target"
  cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1
done
echo "=== fuzz: no crash ==="
