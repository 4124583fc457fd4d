#!/usr/bin/env bash
# Plugins in four languages, one run (bench/run.sh calls this; it can run alone after it):
#   1. per language, the enrich plugin: component size, build time, cold start (empty
#      compiled-code cache: weir compiles the component) and cached start (a 1-row job);
#   2. enrich over EVENTS events at 8192-row batches (one JSON file per batch) -> Parquet:
#      end-to-end rows/s, and the plugin's own rows/s (the time weir spent in the plugin, from
#      the progress records), with its ratio to Rust-Wasm;
#   3. sessionize (stateful, event-time timeout) over the same events: the same columns.
# Native Rust (enrich compiled into the host) is the map_overhead bench's row (bench/run.sh).
# Usage: bench/languages.sh [EVENTS]  (default 1000000; data under bench/data/)
# Needs target/release/weir and the plugins in target/plugins (bench/run.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
WEIR=${WEIR:-target/release/weir}
OUT=bench/out/languages
rm -rf "$OUT"; mkdir -p "$OUT/tiny"
LANGS=("Rust|" "Python|-py" "JavaScript|-js" "C|-c")

for l in "${LANGS[@]}"; do
  IFS='|' read -r _ suffix <<<"$l"
  for p in enrich sessionize; do
    [ -f "target/plugins/$p$suffix.wasm" ] || { echo "languages: target/plugins/$p$suffix.wasm is missing: run scripts/build-plugins.sh" >&2; exit 1; }
  done
done

secs_since() { echo "$(date +%s.%N) - $1" | bc; }

# 1. Size, build, cold and cached start.
printf '%s\n' '{"event_id":"e1","user_id":"alice","amount":10.5}' > "$OUT/tiny/a.json"
start() { # wasm, log -> seconds for a 1-row job
  local d=$OUT/start; rm -rf "$d"; mkdir -p "$d"
  printf '[source]\nformat = "json"\npath = "%s"\nschema = "event_id string, user_id string, amount double"\n[[operator]]\nkind = "map"\nplugin = "%s"\n[sink]\nformat = "json"\npath = "%s/out"\ncheckpoint = "%s/ckpt"\ntrigger = { available_now = true }\n' \
    "$OUT/tiny" "$1" "$d" "$d" > "$d/job.toml"
  local a; a=$(date +%s.%N); "$WEIR" run --quiet "$d/job.toml" 2>"$2"; secs_since "$a"
}
echo "## enrich per language: component, build, start ($(basename "$WEIR") build of weir)"
echo "| language | component KiB | build s | cold start s | compile ms | cached start s |"
echo "|---|---:|---:|---:|---:|---:|"
for l in "${LANGS[@]}"; do
  IFS='|' read -r lang suffix <<<"$l"
  dir=plugins/enrich$suffix wasm=$OUT/enrich$suffix.wasm
  # Rust: the crate's own code again (dependencies stay built), as after an edit.
  [ -f "$dir/Cargo.toml" ] && touch "$dir/src/lib.rs"
  a=$(date +%s.%N); "$WEIR" plugin build "$dir" --out "$wasm" >/dev/null; build=$(secs_since "$a")
  export WEIR_CACHE_DIR=$OUT/cache-$lang; rm -rf "$WEIR_CACHE_DIR"
  cold=$(start "$wasm" "$OUT/cold-$lang.log")
  ms=$(grep -o 'compiled in [0-9]* ms' "$OUT/cold-$lang.log" | grep -o '[0-9]*' | head -1 || true)
  warm=$(start "$wasm" "$OUT/warm-$lang.log")
  printf '| %s | %d | %.1f | %.2f | %s | %.2f |\n' "$lang" $(( $(stat -c %s "$wasm") / 1024 )) "$build" "$cold" "${ms:-<100}" "$warm"
done

DATA=bench/data/events-$EVENTS-8192
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"; python3 bench/gen_events.py "$DATA" --events "$EVENTS" --files $(( (EVENTS + 8191) / 8192 )) >/dev/null
  touch "$DATA/.complete"
fi

TINY=$OUT/tiny-events
mkdir -p "$TINY"
printf '%s\n' '{"event_id":"e1","user_id":"u1","event_time":"2026-01-01T00:00:00Z","amount":1.0,"category":"c"}' > "$TINY/a.json"

job() { # dir, data, operator block
  { printf '[source]\nformat = "json"\npath = "%s"\n' "$2"
    echo 'schema = "event_id string, user_id string, event_time timestamp, amount double, category string"'
    echo "max_files_per_trigger = 1"
    printf '%s\n' "$3"
    printf '[sink]\nformat = "parquet"\npath = "%s/out"\ncheckpoint = "%s/ckpt"\ntrigger = { available_now = true }\n' "$1" "$1"
  } > "$1/job.toml"
}

run() { # name, operator block -> "seconds plugin_seconds batches"
  local d=$OUT/run-$1 w=$OUT/warm-$1; rm -rf "$d" "$w"; mkdir -p "$d" "$w"
  # The same job over one event first: the component is compiled into the cache there, so the
  # timed run below measures the job, not the compile (checked: its log must not say "compiled").
  job "$w" "$TINY" "$2"
  "$WEIR" run --quiet "$w/job.toml" 2>"$w/log" || { cat "$w/log" >&2; exit 1; }
  job "$d" "$DATA" "$2"
  local a; a=$(date +%s.%N)
  "$WEIR" run --quiet "$d/job.toml" 2>"$d/log" || { cat "$d/log" >&2; exit 1; }
  local secs; secs=$(secs_since "$a")
  if grep -q "compiled in" "$d/log"; then echo "languages: $1 was compiled in the timed run" >&2; exit 1; fi
  python3 - "$d/ckpt/progress.jsonl" "$secs" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
plugin = sum(p["timeMs"] for r in rows for p in r.get("plugins", [])) / 1000
print(sys.argv[2], plugin, len(rows))
PY
}

table() { # plugin base name, operator block with PLUGIN for the component
  local base=$1 block=$2 rust_rate=""
  echo "| language | batches | seconds | rows/s | plugin s | plugin rows/s | plugin time ÷ Rust-Wasm's |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for l in "${LANGS[@]}"; do
    IFS='|' read -r lang suffix <<<"$l"
    export WEIR_CACHE_DIR=$OUT/cache-$lang
    read -r secs plugin batches <<<"$(run "$base$suffix" "${block//PLUGIN/target/plugins/$base$suffix.wasm}")"
    [ -z "$rust_rate" ] && rust_rate=$(python3 -c "print($EVENTS / $plugin)")
    python3 -c "
events, secs, plugin, rust = $EVENTS, $secs, $plugin, $rust_rate
rate = events / plugin
print(f'| $lang | $batches | {secs:.1f} | {events / secs:,.0f} | {plugin:.2f} | {rate:,.0f} | {rust / rate:.1f}x |')"
  done
}

echo
echo "## enrich, $EVENTS events in 8192-row batches, JSON lines -> Parquet"
table enrich $'[[operator]]\nkind = "map"\nplugin = "PLUGIN"\nconfig = "tax_rate=0.2"'
echo
echo "## sessionize (gap 30 min, event-time timeout), $EVENTS events in 8192-row batches"
table sessionize $'[watermark]\ncolumn = "event_time"\ndelay = "10 minutes"\n[[operator]]\nkind = "stateful"\nplugin = "PLUGIN"\ngroup_by = ["user_id"]\ntimeout = "event_time"\nconfig = "gap_minutes=30"'
