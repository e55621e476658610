#!/usr/bin/env bash
# Fails unless the engineioxide that Herald builds against is the patched
# copy in vendor/ (vendor/README.md). If an upgrade of socketioxide asks for
# a version the copy does not satisfy, cargo only warns that the
# `[patch.crates-io]` entry is unused and builds against plain upstream:
# the direct websocket, the memory patches and the upgrade fix would be
# gone while every build still passes. This makes CI fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=$(realpath vendor/engineioxide)
# A path dependency is printed with its folder: "engineioxide v0.17.9 (/…)".
# Only cargo's answer on stdout: its notes on stderr (a lock it waits for)
# are not part of it.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
found=$(cargo tree --locked -p herald -i engineioxide -e normal --prefix none --depth 0 2>"$errors") || {
  echo "vendor guard: engineioxide is not in Herald's dependency tree:"
  cat "$errors"
  exit 1
}
if [ "$found" != "engineioxide v$(sed -n 's/^version = "\(.*\)"/\1/p' vendor/engineioxide/Cargo.toml | head -1) ($vendor)" ]; then
  echo "vendor guard: Herald builds against '$found', not the patched copy in $vendor"
  echo "the [patch.crates-io] entry no longer applies; see vendor/README.md"
  exit 1
fi
echo "vendor guard: $found is the patched copy"
