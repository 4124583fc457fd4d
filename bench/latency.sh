#!/usr/bin/env bash
# End-to-end latency per record (p50 / p99 / p99.9 / max, ms) at paced input rates, for
# Kafka -> filter plugin -> Kafka (exactly-once; read_committed and read_uncommitted consumers)
# and rate -> tagger plugin -> console, with each trigger. Prints a table (host/benches/latency.rs;
# docs/latency.md says what is measured and how).
# Usage: bench/latency.sh
# Settings (environment): RATES="1000,10000,100000", TRIGGERS="processing_time=0 seconds;continuous=1 second",
# PIPELINES="kafka,rate", WARMUP=3, MEASURE=10 (seconds per row: WARMUP + MEASURE + a few).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/host-deps.sh
cargo build --release -p weir-host --bins
scripts/wasm-toolchain.sh >/dev/null
WEIR=target/release/weir scripts/build-plugins.sh filter tagger >/dev/null
WEIR=$(pwd)/target/release/weir PLUGINS=$(pwd)/target/plugins cargo bench -p weir-host --bench latency 2>/dev/null
