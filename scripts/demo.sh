#!/usr/bin/env bash
# The demo: bundled sample events (examples/data) through the `enrich` Wasm plugin into
# Parquet under out/demo, with live progress. No external service needed. Runs from scratch
# each time (it clears out/demo and its checkpoint, which would otherwise say "already done").
#
# It builds only what the demo uses: the host without its optional Kafka and RocksDB parts
# (cargo features, on by default; their C/C++ builds are the slowest part of a fresh build),
# in the same profile as the tests (dependencies optimised, the host not), so the test command
# reuses every dependency this build compiled.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
step() { echo "demo [$(( $(date +%s) - start ))s]: $*" >&2; }

step "Wasm toolchain for the plugin (installed once)"
scripts/wasm-toolchain.sh
step "building weir (a fresh machine compiles ~400 crates, ~10 min on 2 cores; cargo shows progress)"
cargo build -p weir-host --bins --no-default-features
step "building the enrich plugin"
WEIR=target/debug/weir scripts/build-plugins.sh enrich >/dev/null
step "running examples/demo.toml"
rm -rf out/demo out/demo-checkpoint
target/debug/weir run examples/demo.toml
echo
echo "committed output: $(target/debug/weir output files out/demo | wc -l) Parquet files under out/demo/, the first of them:"
target/debug/weir output files out/demo | head -5
echo "progress records: out/demo-checkpoint/progress.jsonl"
step "done"
