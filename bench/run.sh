#!/usr/bin/env bash
# The benchmark suite in one command: installs wrk if missing, builds the release binaries and
# the example plugins, then runs every scenario against its baseline (same run, interleaved,
# server on core 0, wrk on core 1), prints the table and writes bench/results/<date>.json.
#   bench/run.sh            full run (3 interleaved rounds of 5 s per side)
#   bench/run.sh --quick    one round of 2 s, to check the set-up
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release --locked -p crm-users -p crm-users-bench
cargo build --release --locked --target wasm32-wasip2 --manifest-path plugins/Cargo.toml

# Lay the plugins out as the host loads them: <name>/plugin.toml next to its component.
plugins="$target/bench-plugins"
rm -rf "$plugins"
for manifest in plugins/*/plugin.toml; do
    name=$(basename "$(dirname "$manifest")")
    wasm=$(sed -n 's/^wasm *= *"\(.*\)"/\1/p' "$manifest")
    mkdir -p "$plugins/$name"
    cp "$manifest" "$plugins/$name/"
    cp "plugins/target/wasm32-wasip2/release/$wasm" "$plugins/$name/"
done

exec "$target/release/crm-users-bench" run --crm-users "$target/release/crm-users" --plugins "$plugins" "$@"
