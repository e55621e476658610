#!/usr/bin/env bash
# Fuzzes what parses untrusted bytes (fuzz/README.md): each target (every
# one, or those named as arguments) runs for FUZZ_SECONDS (default 20) from
# its seeds and past crashes, under AddressSanitizer. A crash fails the
# run; its input is left in fuzz/artifacts/<target>/ to be turned into a
# regression (fuzz/regressions/).
#
#   bash scripts/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# cargo fuzz needs nightly-only flags (sanitizers); the stable toolchain
# allows them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
seconds="${FUZZ_SECONDS:-20}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$#" -eq 0 ]; then
  # shellcheck disable=SC2046 # one target name per word
  set -- $(cargo fuzz list --fuzz-dir fuzz)
  cargo fuzz build --fuzz-dir fuzz --target-dir "$target_dir"
else
  for target in "$@"; do
    cargo fuzz build --fuzz-dir fuzz --target-dir "$target_dir" "$target"
  done
fi
for target in "$@"; do
  echo "--- fuzz $target for ${seconds}s"
  corpus="$work/$target"
  mkdir -p "$corpus" "fuzz/regressions/$target"
  # New inputs go to the first folder (temporary); seeds and regressions
  # are read, and every regression runs first.
  if ! cargo fuzz run --fuzz-dir fuzz --target-dir "$target_dir" "$target" \
    "$corpus" "fuzz/seeds/$target" "fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$target.log" 2>&1; then
    tail -n 60 "$work/$target.log"
    echo "fuzz target $target failed: its input is in fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/$target.log" || true
done
echo "fuzzing: no crash"
