#!/usr/bin/env bash
# The whole test suite on any machine, fresh or not: makes the Wasm toolchain available,
# builds the host and every plugin, then runs the unit tests and the end-to-end tests (real
# `weir` processes on real files and Wasm components).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
step() { echo "test.sh [$(( $(date +%s) - start ))s]: $*" >&2; }
trap 'rc=$?; step "finished (exit $rc)"' EXIT

step "toolchains and services (each installed once, skipped when present)"
scripts/host-deps.sh
scripts/wasm-toolchain.sh
# componentize-js, for the JavaScript plugins (tools/js, npm ci once, skipped when installed).
scripts/js-toolchain.sh
# clang, wasi-libc and wit-bindgen, for the C plugins (skipped when installed; a few minutes once).
scripts/c-toolchain.sh
# The Kafka-protocol broker the Kafka tests start (tansu; installed once, ~14 min).
WEIR_TANSU=$(scripts/kafka-broker.sh install)
export WEIR_TANSU
# PySpark, for the test that reads weir's output with Spark (tests/e2e/retention.rs): installed
# once into .spark-venv (~1 min, ~450 MB), skipped when it is there.
if ! .spark-venv/bin/python -c 'import pyspark' 2>/dev/null; then
    python3 -m venv .spark-venv
    .spark-venv/bin/pip install --quiet pyspark==4.3.0 pyarrow 'pandas<3'
fi
# prometheus_client's parser, for the test that reads GET /metrics (tests/e2e/metrics.rs).
if ! .spark-venv/bin/python -c 'import prometheus_client' 2>/dev/null; then
    .spark-venv/bin/pip install --quiet prometheus-client==0.26.0
fi
# PyPI's deltalake (delta-rs), the reader no one here wrote that tests/e2e/delta.rs reads the Delta
# sink's tables with (installed once, skipped when present).
if ! .spark-venv/bin/python -c 'import deltalake' 2>/dev/null; then
    .spark-venv/bin/pip install --quiet deltalake==1.6.6
fi
# Debian's chromium and tests/ui's playwright-core, for the web UI's browser test (tests/e2e/ui.rs).
scripts/ui-deps.sh
# A private PostgreSQL server for the postgres sink's tests (tests/e2e/postgres.rs): its data in
# target/pg (initdb once), port 55432; exports WEIR_PG_URL and WEIR_PG_PASSWORD. Stopped at exit.
PG_ENV=$(scripts/postgres.sh start)
eval "$PG_ENV"
trap 'rc=$?; scripts/postgres.sh stop || true; step "finished (exit $rc)"' EXIT
step "building the host (a fresh machine: every dependency, or after scripts/demo.sh only Kafka, RocksDB and the host)"
cargo build -p weir-host --bins
step "building the plugins (Rust, Python, JavaScript, C; unchanged ones are skipped)"
scripts/build-plugins.sh
step "unit and end-to-end tests"
cargo test -p weir-host
# The build scripts/demo.sh makes (no kafka, no rocksdb) still compiles, and refuses jobs that
# need them (host/src/features.rs; only the host crate is compiled again).
cargo test -p weir-host --lib --no-default-features features::
# The SDK and the example plugins' logic, natively (the export macro is inert off Wasm).
for crate in guest-sdk plugins/enrich plugins/filter plugins/sessionize plugins/fraud plugins/router; do
    (cd "$crate" && cargo test)
done
# The Python SDK's stateful and batch-sink worlds, sessionize-py and router-py, against a
# simulated host.
.venv-plugins/bin/python guest-sdk/python/tests/test_stateful.py
.venv-plugins/bin/python guest-sdk/python/tests/test_batch_sink.py
# The C SDK (guest-sdk/c), natively with the host's cc (messages checked word for word).
make -s -C guest-sdk/c test
