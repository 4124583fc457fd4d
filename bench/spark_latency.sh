#!/usr/bin/env bash
# End-to-end latency per record in Apache Spark 4.3 (PySpark, local mode) for the rate pipeline of
# bench/latency.sh: rate -> select (timestamp, value, lit "v1") -> console, with
# trigger(processingTime="0 seconds") and trigger(continuous="1 second"); prints the same table
# columns as host/benches/latency.rs (bench/spark_latency.py says how it is measured).
# Usage: bench/spark_latency.sh
# Settings (environment): RATES="1000,10000,100000", TRIGGERS="processing_time=0 seconds;continuous=1 second",
# WARMUP=15, MEASURE=15, GRACE=20 (s), PARTITIONS=2, SPARK_CORES=2, SPARK_MEMORY=2g, SPARK_STDERR=FILE,
# SPARK_PY=.spark-venv/bin/python. About 45 s per row (JVM start + WARMUP + MEASURE).
set -euo pipefail
cd "$(dirname "$0")/.."
SPARK_PY=${SPARK_PY:-.spark-venv/bin/python}
if [ ! -x "$SPARK_PY" ] || ! "$SPARK_PY" -c 'import pyspark' 2>/dev/null; then
  echo "spark_latency.sh: $SPARK_PY with pyspark is needed; install it with" >&2
  echo "  python3 -m venv .spark-venv && .spark-venv/bin/pip install pyspark==4.3.0 pyarrow 'pandas<3'" >&2
  exit 1
fi
export GRACE=${GRACE:-20}
exec "$SPARK_PY" bench/spark_latency.py
