#!/usr/bin/env bash
# Reruns every join scenario in real Spark (bench/spark_crosscheck.py, one at a time, local[1]):
# stream-static, stream-stream, null-keys, stream-stream-window (every */*/job.toml),
# and writes each case's expected.txt, or with --check compares instead and fails on a difference.
#   tests/joins/regen.sh [--check] [SCENARIO/CASE ...]      (from the repository root)
# Needs the Spark venv: SPARK_PY (default /work/main/.spark-venv/bin/python, else .spark-venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${SPARK_PY:-/work/main/.spark-venv/bin/python}
[ -x "$py" ] || py=.spark-venv/bin/python
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
if [ $# -gt 0 ]; then cases=("$@"); else
  mapfile -t cases < <(cd tests/joins && ls -d */*/job.toml | sed 's#/job.toml##' | sort)
fi
status=0
for c in "${cases[@]}"; do
  scenario=${c%%/*}
  out=$(mktemp)
  "$py" bench/spark_crosscheck.py "tests/joins/$c/job.toml" "tests/joins/$scenario/in" --verbose >"$out" 2>"$out.err" \
    || { echo "FAIL $c (spark_crosscheck exited $?)"; tail -5 "$out.err"; status=1; rm -f "$out" "$out.err"; continue; }
  if [ $check = 1 ]; then
    if diff -u "tests/joins/$c/expected.txt" "$out"; then echo "ok   $c"; else echo "DIFF $c"; status=1; fi
  else
    mv "$out" "tests/joins/$c/expected.txt"; echo "wrote tests/joins/$c/expected.txt"
  fi
  rm -f "$out" "$out.err"
done
exit $status
