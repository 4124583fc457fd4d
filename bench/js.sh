#!/usr/bin/env bash
# JS plugin spike (issue 16 section 1), one run: the enrich plugin in JavaScript (componentize-js)
# vs Rust. Component size, build time, cold compile (empty compiled-code cache), cached start,
# then rows/s end to end (JSON lines -> [enrich] -> Parquet, available_now) at 8192-row batches
# (one file per batch) and at ~100k-row batches (10 files per batch).
# Usage: bench/js.sh [EVENTS]  (default 999424 = 122 x 8192; data under bench/data/)
# Needs target/release/weir and target/plugins/enrich.wasm (bench/run.sh builds both).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-999424}
WEIR=${WEIR:-target/release/weir}
scripts/js-toolchain.sh
OUT=bench/out/js; rm -rf "$OUT"; mkdir -p "$OUT"

t0=$(date +%s.%N)
scripts/js-toolchain.sh build plugins/enrich-js "$OUT/enrich-js.wasm" >/dev/null
t1=$(date +%s.%N)
echo "## enrich in JS vs Rust ($(basename "$WEIR") build of weir)"
echo "| plugin | component KiB | build s | cold start s | compile ms (weir's log) | cached start s |"
echo "|---|---:|---:|---:|---:|---:|"
mkdir -p "$OUT/tiny"
printf '%s\n' '{"event_id":"e1","user_id":"alice","amount":10.5}' > "$OUT/tiny/a.json"
start() { # plugin, name -> one run of a 1-row job; prints seconds, and weir's compile line to $OUT/$name.log
  local d=$OUT/start-$2; rm -rf "$d"; mkdir -p "$d"
  cat > "$d/job.toml" <<JOB
[source]
format = "json"
path = "$OUT/tiny"
schema = "event_id string, user_id string, amount double"
[[operator]]
kind = "map"
plugin = "$1"
[sink]
format = "json"
path = "$d/out"
checkpoint = "$d/ckpt"
trigger = { available_now = true }
JOB
  local a b; a=$(date +%s.%N); "$WEIR" run --quiet "$d/job.toml" 2>"$OUT/$2.log"; b=$(date +%s.%N)
  echo "$b - $a" | bc
}
for p in "Rust|target/plugins/enrich.wasm|-" "JS (componentize-js)|$OUT/enrich-js.wasm|$(echo "scale=1; ($t1 - $t0) / 1" | bc)"; do
  IFS='|' read -r name wasm build <<<"$p"
  export WEIR_CACHE_DIR=$OUT/cache-${name%% *}; rm -rf "$WEIR_CACHE_DIR"
  cold=$(start "$wasm" cold-${name%% *}); ms=$(grep -o 'compiled in [0-9]* ms' "$OUT/cold-${name%% *}.log" | grep -o '[0-9]*' || echo "<100")
  warm=$(start "$wasm" warm-${name%% *})
  printf '| %s | %d | %s | %.2f | %s | %.2f |\n' "$name" $(( $(stat -c %s "$wasm") / 1024 )) "$build" "$cold" "$ms" "$warm"
done
# The runs below start from a warm cache (both plugins compiled into it first): rows/s without
# the compiles.
export WEIR_CACHE_DIR=$OUT/cache-JS
start target/plugins/enrich.wasm warm-rust-in-js-cache >/dev/null

run() { # data, files per trigger, name, plugin (empty: none)
  local d=$OUT/run-$3; rm -rf "$d"; mkdir -p "$d"
  { echo "[source]"; echo "format = \"json\""; echo "path = \"$1\""
    echo 'schema = "event_id string, user_id string, event_time timestamp, amount double, category string"'
    echo "max_files_per_trigger = $2"
    [ -n "$4" ] && printf '[[operator]]\nkind = "map"\nplugin = "%s"\n' "$4"
    printf '[sink]\nformat = "parquet"\npath = "%s/out"\ncheckpoint = "%s/ckpt"\ntrigger = { available_now = true }\n' "$d" "$d"
  } > "$d/job.toml"
  local a b; a=$(date +%s.%N); "$WEIR" run --quiet "$d/job.toml" 2>"$d/log" || { cat "$d/log"; exit 1; }; b=$(date +%s.%N)
  if grep -q "compiled in" "$d/log"; then echo "$3: the plugin was compiled, not taken from the cache" >&2; exit 1; fi
  python3 - "$d/ckpt/progress.jsonl" "$EVENTS" "$(echo "$b - $a" | bc)" "$3" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n, secs, name = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
plugin = sum(p["timeMs"] for r in rows for p in r.get("plugins", [])) / 1000
mem = max([p["peakMemoryBytes"] for r in rows for p in r.get("plugins", [])] or [0]) >> 20
print(f"| {name} | {len(rows)} | {secs:.1f} | {n / secs:,.0f} | {plugin:.2f} | {n / plugin if plugin else 0:,.0f} | {mem} |")
PY
}
for files in 1 10; do
  DATA=bench/data/events-$EVENTS-8192
  if [ ! -f "$DATA/.complete" ]; then
    rm -rf "$DATA"; python3 bench/gen_events.py "$DATA" --events "$EVENTS" --files $((EVENTS / 8192)) >/dev/null; touch "$DATA/.complete"
  fi
  echo; echo "## $EVENTS events, JSON lines -> Parquet, $files file(s) of 8192 rows per batch"
  echo "| job | batches | seconds | rows/s | plugin s | plugin rows/s | plugin peak MiB |"; echo "|---|---:|---:|---:|---:|---:|---:|"
  run "$DATA" $files "none-$files" ""
  run "$DATA" $files "rust-$files" target/plugins/enrich.wasm
  run "$DATA" $files "js-$files" "$OUT/enrich-js.wasm"
done
