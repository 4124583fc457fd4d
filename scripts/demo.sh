#!/usr/bin/env bash
# The demo: bundled sample events (examples/data) through the `enrich` Wasm plugin into
# Parquet under out/demo, with live progress. No external service needed. Runs from scratch
# each time (it clears out/demo and its checkpoint, which would otherwise say "already done").
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/host-deps.sh
scripts/wasm-toolchain.sh
cargo build --release -p weir-host --bins
WEIR=target/release/weir scripts/build-plugins.sh
rm -rf out/demo out/demo-checkpoint
target/release/weir run examples/demo.toml
echo
echo "committed output: $(target/release/weir output files out/demo | wc -l) Parquet files under out/demo/, the first of them:"
target/release/weir output files out/demo | head -5
echo "progress records: out/demo-checkpoint/progress.jsonl"
