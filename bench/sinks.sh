#!/usr/bin/env bash
# Issue 14's sink benchmark: ROWS rows (default 10M, in FILES Parquet files, one micro-batch each)
# into each sink, weir's sink against the library a Python user would reach for; one run each;
# rows/s and the peak RSS of the process tree. Prints a markdown table.
#   postgres: weir's postgres sink (append: binary COPY, a transaction per batch) vs. psycopg's
#             binary COPY of the same rows (the floor), on scripts/postgres.sh's server
#             (bench/sinks_postgres.py);
#   delta:    weir's delta sink vs. PyPI deltalake's write_deltalake (bench/sinks_delta.py).
# Usage: bench/sinks.sh [ROWS]
# Environment: FILES=10, SINKS="postgres delta", SKIP_BUILD=1 (use $WEIR as it is; default
# target/release/weir). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-${ROWS:-10000000}}
FILES=${FILES:-10}
SINKS=${SINKS:-postgres delta}
PY=${PY:-.spark-venv/bin/python}
WEIR=${WEIR:-target/release/weir}
export ROWS FILES WEIR

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -p weir-host --bin weir
fi
if ! "$PY" -c 'import pyarrow' 2>/dev/null; then
    python3 -m venv .spark-venv
    "$PY" -m pip install --quiet pyarrow 'pandas<3'
fi

echo "| sink | writer | rows | time | rows/s | peak RSS | vs. the other |"
echo "|---|---|---:|---:|---:|---:|---:|"
for sink in $SINKS; do
    case "$sink" in
    postgres)
        "$PY" -c 'import psycopg' 2>/dev/null || "$PY" -m pip install --quiet 'psycopg[binary]'
        PG_ENV=$(scripts/postgres.sh start)
        eval "$PG_ENV"
        data="bench/data/sinks-postgres-$ROWS-$FILES"
        [ -d "$data" ] || "$PY" bench/sinks_postgres.py gen "$data" "$ROWS" "$FILES"
        "$PY" bench/sinks_postgres.py run "$data"
        ;;
    delta)
        "$PY" -c 'import deltalake' 2>/dev/null || "$PY" -m pip install --quiet deltalake==1.6.6
        "$PY" bench/sinks_delta.py
        ;;
    *)
        echo "sinks.sh: unknown sink $sink (postgres, delta)" >&2
        exit 2
        ;;
    esac
done
