#!/usr/bin/env bash
# Does watching a job slow it? A rate-source job with tiny batches (processing_time 0, a json
# file sink) runs for SECONDS twice: alone, then with a scraper asking its API for
# GET /metrics, GET /query and GET /progress once a second (what Prometheus and a dashboard
# do). Batches per second from the progress records, one run each, printed as a table.
#
# Usage: bench/monitoring.sh [SECONDS]   (default 60)
#   WEIR=target/release/weir (built when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-60}
WEIR=${WEIR:-target/release/weir}
[ -x "$WEIR" ] || cargo build --release -p weir-host --bins
ROOT=bench/out/monitoring
rm -rf "$ROOT"; mkdir -p "$ROOT"

run() { # NAME SCRAPE(0|1)
  local dir=$ROOT/$1
  mkdir -p "$dir"
  cat > "$dir/job.toml" <<JOB
name = "monitoring-$1"
[source]
format = "rate"
rows_per_second = 1000
[sink]
format = "json"
path = "$dir/out"
checkpoint = "$dir/ckpt"
trigger = { processing_time = "0 seconds" }
JOB
  WEIR_RUNTIME_DIR=$dir/run "$WEIR" run --quiet "$dir/job.toml" > /dev/null 2>&1 &
  local pid=$!
  while [ ! -s "$dir/ckpt/admin-address" ]; do sleep 0.1; done
  local scraped=0
  local end=$(( $(date +%s) + SECONDS_RUN ))
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ "$2" = 1 ]; then
      local addr token
      addr=$(cat "$dir/ckpt/admin-address"); token=$(cat "$dir/ckpt/admin-token")
      for path in /metrics /query /progress; do
        curl -sf -o /dev/null -H "Authorization: Bearer $token" "http://$addr$path" && scraped=$((scraped + 1))
      done
    fi
    sleep 1
  done
  kill -INT "$pid"; wait "$pid" || true
  python3 - "$dir/ckpt/progress.jsonl" "$1" "$scraped" <<'PY'
import json, sys, datetime as dt
recs = [json.loads(l) for l in open(sys.argv[1])]
t = lambda r: dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
# The first second is start-up; count the batches after it.
recs = [r for r in recs if t(r) >= t(recs[0]) + 1]
span = t(recs[-1]) - t(recs[0])
ms = sorted(r["batchDuration"] for r in recs)
print(f"| {sys.argv[2]} | {len(recs)} | {span:.1f} | {len(recs) / span:.1f} | {ms[len(ms) // 2]} | {ms[int(len(ms) * 0.99)]} | {sys.argv[3]} |")
PY
}

echo "## Watching a job: batches/s with and without scraping its API once a second ($SECONDS_RUN s each, one run, $(basename "$WEIR"))"
echo
echo "| run | batches | seconds | batches/s | median batch ms | p99 batch ms | API requests answered |"
echo "|---|---:|---:|---:|---:|---:|---:|"
run alone 0
run scraped 1
