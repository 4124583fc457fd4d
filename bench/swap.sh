#!/usr/bin/env bash
# The pause a hot swap causes: a job (rate source, 4000 rows/s, the tagger map plugin, 50 ms
# processing-time trigger) gets SWAPS swaps (alternating two versions) through its admin API;
# from the progress records, the gap between the start of the last batch of the old version and
# the first of the new one, against the gap between ordinary batches. Prints p50/p99 of both.
# Usage: bench/swap.sh [SWAPS]    (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
SWAPS=${1:-50}
scripts/host-deps.sh
cargo build --release -p weir-host --bins
WEIR=target/release/weir
scripts/wasm-toolchain.sh >/dev/null
for v in v1 v2; do
  TAGGER_VERSION=$v "$WEIR" plugin build tests/plugins/tagger --out "target/plugins/tagger-$v.wasm" >/dev/null
done
D=bench/out/swap
rm -rf "$D"; mkdir -p "$D"
cat > "$D/job.toml" <<JOB
[admin]
listen = "127.0.0.1:0"
probation_batches = 1

[source]
format = "rate"
rows_per_second = 4000

[[operator]]
kind = "map"
plugin = "$(pwd)/target/plugins/tagger-v1.wasm"

[sink]
format = "json"
path = "$D/out"
checkpoint = "$D/ckpt"
trigger = { processing_time = "50 milliseconds" }
JOB
"$WEIR" run --quiet "$D/job.toml" 2> "$D/weir.log" &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$D/ckpt/admin-address" ] && break; sleep 0.1; done
addr=$(cat "$D/ckpt/admin-address")
batches() { ls "$D/out/_weir_log" 2>/dev/null | wc -l; }
until [ "$(batches)" -ge 5 ]; do sleep 0.05; done
for i in $(seq "$SWAPS"); do
  v=$([ $((i % 2)) -eq 1 ] && echo v2 || echo v1)
  "$WEIR" plugin swap --job "$D/ckpt" --operator 0 "target/plugins/tagger-$v.wasm" > /dev/null
  n=$(batches); until [ "$(batches)" -ge $((n + 3)) ]; do sleep 0.02; done
done
kill -INT $pid; wait $pid || true; trap - EXIT
python3 - "$D/ckpt/progress.jsonl" "$SWAPS" <<'PY'
import json, sys, datetime as dt
recs = [json.loads(l) for l in open(sys.argv[1])]
ts = {r["batchId"]: dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() * 1000 for r in recs}
swap_at = {e["first_batch"] for r in recs for e in r.get("pluginEvents", []) if e["event"] == "swap"}
gaps = {b: ts[b] - ts[b - 1] for b in ts if b - 1 in ts}
swap = sorted(g for b, g in gaps.items() if b in swap_at)
normal = sorted(g for b, g in gaps.items() if b not in swap_at and b - 1 not in swap_at)
pct = lambda xs, p: xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
print(f"## Hot swap pause: {len(swap)} swaps (asked {sys.argv[2]}), {len(normal)} ordinary batch gaps, 50 ms trigger, one run")
print()
print("| gap between batch starts | p50 ms | p99 ms |")
print("|---|---:|---:|")
print(f"| ordinary | {pct(normal, 50):.1f} | {pct(normal, 99):.1f} |")
print(f"| across a swap | {pct(swap, 50):.1f} | {pct(swap, 99):.1f} |")
print(f"| added by the swap | {pct(swap, 50) - pct(normal, 50):.1f} | {pct(swap, 99) - pct(normal, 99):.1f} |")
PY
