#!/usr/bin/env bash
# Benchmarks, printed as tables to paste into a note. Measures on this machine, in one run:
#   1. the enrich plugin as Wasm vs. the same logic native, by batch size (cargo bench);
#   2. end to end: N events of JSON lines -> [enrich plugin] -> Parquet, rows/s and peak RSS,
#      with and without the plugin;
#   3. plugins in Rust, Python, JavaScript and C (bench/languages.sh): component size, build,
#      cold and cached start, enrich and sessionize over LANG_EVENTS events (default 1M) in
#      8192-row batches, each against Rust-Wasm.
# Usage: bench/run.sh [EVENTS]   (default 10000000; data is generated once under bench/data/)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
FILES=${FILES:-100}

scripts/host-deps.sh
scripts/wasm-toolchain.sh >/dev/null
cargo build --release -p weir-host --bins
WEIR=target/release/weir scripts/build-plugins.sh >/dev/null

echo "## Wasm map vs native (rows/s)"
cargo bench -p weir-host --bench map_overhead 2>/dev/null

DATA=bench/data/events-$EVENTS
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"
  python3 bench/gen_events.py "$DATA" --events "$EVENTS" --files "$FILES"
  touch "$DATA/.complete"
fi
BYTES=$(du -sb "$DATA" | cut -f1)

run_job() { # name, operator block
  local name=$1 ops=$2 dir=bench/out/$1
  rm -rf "$dir"; mkdir -p "$dir"
  cat > "$dir/job.toml" <<JOB
[source]
format = "json"
path = "$DATA"
schema = "event_id string, user_id string, event_time timestamp, amount double, category string"
max_files_per_trigger = 10
$ops
[sink]
format = "parquet"
path = "$dir/out"
checkpoint = "$dir/ckpt"
trigger = { available_now = true }
JOB
  python3 - "$dir/job.toml" "$EVENTS" "$BYTES" "$name" <<'PY'
import resource, subprocess, sys, time
job, events, nbytes, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = time.monotonic()
r = subprocess.run(["target/release/weir", "run", "--quiet", job], stderr=subprocess.PIPE, text=True)
if r.returncode != 0:
    sys.exit(f"{name}: weir failed:\n{r.stderr}")
secs = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"| {name} | {events:,} | {secs:.1f} | {events/secs:,.0f} | {nbytes/secs/2**20:.0f} | {rss:.0f} |")
PY
}

echo
echo "## End to end: $EVENTS events, JSON lines -> Parquet, available_now, 10 files per batch"
echo "| job | rows | seconds | rows/s | input MiB/s | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
run_job "no plugin" ""
run_job "enrich (Rust Wasm)" $'[[operator]]\nkind = "map"\nplugin = "target/plugins/enrich.wasm"'

echo
WEIR=target/release/weir bench/languages.sh "${LANG_EVENTS:-1000000}"
