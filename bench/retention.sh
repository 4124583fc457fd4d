#!/usr/bin/env bash
# Retention on long-running jobs: start time and `weir output files` time against the number of
# batches a job has run (1k, 10k, 100k by default).
#
# How the checkpoints are made: running 100k batches through weir takes too long here, and the
# formats are simple, so a Python snippet writes, for N batches of a rate-source job with a
# json file sink, exactly what a weir without retention leaves behind: CHECKPOINT/metadata,
# offsets/0..N-1 (rate ranges of one row each), commits/0..N-1, OUT/_weir_log/0..N-1 (one entry
# per batch; 100 of them name a data file, the others none, so that the number of committed
# files stays the same at every N and only the number of batches grows), and those 100 data
# files. Then weir itself runs 150 more batches on it (1 ms trigger), which purges the
# checkpoint's logs past min_batches_to_retain (default 100) and compacts the file sink's logs
# (and writes _spark_metadata). Measured after that, median of 3:
#   start   `weir run` with trigger = once on the checkpoint (start, restore, one batch, exit)
#   files   `weir output files OUT`
# and, for contrast, `weir output files` on the un-compacted log, which is what it read before
# retention (one file per batch). "entries" counts the checkpoint's offsets+commits files a
# start reads; "log files" the _weir_log files a listing reads.
#
# Usage: bench/retention.sh [BATCHES...]   (default: 1000 10000 100000)
#   WEIR=target/debug/weir (the debug build; the machines are shared, no release builds here)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("${@:-1000 10000 100000}")
# shellcheck disable=SC2206
SIZES=(${SIZES[*]})
WEIR=${WEIR:-target/debug/weir}
[ -x "$WEIR" ] || cargo build -p weir-host --bins
ROOT=bench/out/retention
rm -rf "$ROOT"; mkdir -p "$ROOT"

now_ms() { date +%s%3N; }
# Median wall time (ms) of 3 runs of a command.
median_ms() {
  local ts=()
  for _ in 1 2 3; do
    local t0; t0=$(now_ms)
    "$@" > /dev/null 2>&1
    ts+=($(( $(now_ms) - t0 )))
  done
  printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p
}
count() { find "$1" -maxdepth 1 -type f ! -name '.*' | wc -l; }
# The _weir_log files a listing reads: the latest compact file and the batch files after it.
log_files_read() {
  python3 - "$1" <<'PY'
import os, sys
names = [n for n in os.listdir(sys.argv[1]) if not n.startswith(".") and n.split(".")[0].isdigit()]
ids = sorted((int(n.split(".")[0]), n.endswith(".compact")) for n in names)
compacts = [i for i, (_, c) in enumerate(ids) if c]
print(len(ids) - (compacts[-1] if compacts else 0))
PY
}

job_file() { # DIR TRIGGER
  cat > "$1/job.toml" <<JOB
[source]
format = "rate"
rows_per_second = 1000

[sink]
format = "json"
path = "$(pwd)/$1/out"
checkpoint = "$(pwd)/$1/ckpt"
trigger = $2
JOB
}

rows=()
for N in "${SIZES[@]}"; do
  D=$ROOT/$N
  mkdir -p "$D"
  python3 - "$D" "$N" <<'PY'
import json, os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
qid = "00000000-0000-4000-8000-%012d" % n
now_us = int(time.time() * 1e6)
start_us = now_us - n * 1000          # 1000 rows/s: one row per ms, one row per batch
ck, out = os.path.join(d, "ckpt"), os.path.join(d, "out")
for sub in ("offsets", "commits"):
    os.makedirs(os.path.join(ck, sub), exist_ok=True)
os.makedirs(os.path.join(out, "_weir_log"), exist_ok=True)
dump = lambda obj, f: f.write(json.dumps(obj, separators=(",", ":")))   # as weir writes them
dump({"id": qid}, open(os.path.join(ck, "metadata"), "w"))
every = max(1, n // 100)
for b in range(n):
    with open(os.path.join(ck, "offsets", str(b)), "w") as f:
        dump({"batch_id": b, "timestamp_ms": (start_us + b * 1000) // 1000,
                   "source": {"start": b, "end": b + 1, "start_time_micros": start_us},
                   "watermark_micros": 0, "late_watermark_micros": 0}, f)
    with open(os.path.join(ck, "commits", str(b)), "w") as f:
        dump({"batch_id": b, "plugins": [], "next_watermark_micros": 0}, f)
    files = []
    if b % every == 0:
        rel = "part-%05d-0000-000000000000.json" % b
        text = json.dumps({"timestamp": "2026-01-01T00:00:00.000Z", "value": b}, separators=(",", ":")) + "\n"
        open(os.path.join(out, rel), "w").write(text)
        files.append({"path": rel, "rows": 1, "bytes": len(text)})
    with open(os.path.join(out, "_weir_log", str(b)), "w") as f:
        dump({"batch_id": b, "writer": qid, "files": files}, f)
PY
  committed=$("$WEIR" output files "$D/out" | wc -l)
  legacy_log=$(log_files_read "$D/out/_weir_log")
  legacy_entries=$(( $(count "$D/ckpt/offsets") + $(count "$D/ckpt/commits") ))
  legacy_files_ms=$(median_ms "$WEIR" output files "$D/out")
  # weir runs 150 batches on it: retention purges and compacts.
  job_file "$D" '{ processing_time = "1 millisecond" }'
  "$WEIR" run --quiet "$D/job.toml" 2> "$D/weir.log" &
  pid=$!
  target=$((N + 150))
  until [ -f "$D/ckpt/commits/$target" ] || [ -f "$D/ckpt/commits/$((target + 1))" ]; do
    kill -0 $pid 2>/dev/null || { echo "weir stopped early; see $D/weir.log" >&2; exit 1; }
    sleep 0.05
  done
  kill -INT $pid; wait $pid || true
  job_file "$D" '{ once = true }'
  entries=$(( $(count "$D/ckpt/offsets") + $(count "$D/ckpt/commits") ))
  log=$(log_files_read "$D/out/_weir_log")
  start_ms=$(median_ms "$WEIR" run --quiet "$D/job.toml")
  files_ms=$(median_ms "$WEIR" output files "$D/out")
  now_committed=$("$WEIR" output files "$D/out" | wc -l)
  rows+=("| $N | $legacy_entries → $entries | $start_ms | $legacy_log → $log | $legacy_files_ms → $files_ms | $committed → $now_committed |")
done

echo "## Retention: start and \`weir output files\` against batches run ($WEIR, median of 3, $(nproc) cores)"
echo
echo "| batches | checkpoint entries a start reads (before → after retention) | start ms | _weir_log files a listing reads (before → after) | output files ms (before → after) | committed files |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
