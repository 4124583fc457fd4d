#!/usr/bin/env bash
# Kafka -> JSON decode -> 5-minute tumbling window count -> Kafka (exactly-once), rows/s on this
# machine with a local broker, beside the time a plain librdkafka consumer needs to read the same
# records (the broker-bound share). Prints a table (host/benches/kafka.rs).
# Usage: bench/kafka.sh [EVENTS]    (default 200000: the mock cluster keeps ~40k records per
# partition, older ones leave the log, so larger runs cannot be read back whole)
# Spark's Kafka connector (spark-sql-kafka) is not on PyPI and Maven is not reachable from these
# machines, so there is no Spark column here.
set -euo pipefail
cd "$(dirname "$0")/.."
export EVENTS=${1:-${EVENTS:-200000}}
scripts/host-deps.sh
cargo build --release -p weir-host --bins
WEIR=$(pwd)/target/release/weir cargo bench -p weir-host --bench kafka 2>/dev/null
