#!/usr/bin/env bash
# Window aggregations, weir vs Apache Spark, on the same machine in one run; prints a markdown table.
#   jobs:   window  (5-min tumbling count+sum(amount) per category)
#           sliding (10-min windows sliding 2 min, per category)
#           session (session windows, 5-min gap, per user_id)
#   all:    watermark event_time 10 minutes, append mode, Parquet file sink, available_now,
#           up to 1000 files per batch (Spark: maxFilesPerTrigger 1000, as spark_job.py has it)
#   inputs: the same events as JSON lines and as Parquet; weir with state_store memory and rocksdb.
# Spark runs /work/shared/bench/spark/spark_job.py (PySpark, local[2]) with .spark-venv/bin/python.
# Every weir output is checked against Spark's (counts equal, sums within 1e-6 relative).
#
# Usage: bench/windows.sh [EVENTS]      default 10000000; data is generated once under bench/data/
# Environment:
#   SKIP_WEIR=1     data generation and Spark only (no cargo build, no weir runs)
#   SKIP_SPARK=1    weir only (no comparison of outputs)
#   SKIP_BUILD=1    use the weir binary as it is (no cargo build);  WEIR=target/release/weir
#   JOBS="window sliding session"  FORMATS="json parquet"  STORES="memory rocksdb"   subsets
#   FILES=100       files the events are split into;  SPARK_CORES=2
#   SPARK_JOB=/work/shared/bench/spark/spark_job.py   SPARK_PY=.spark-venv/bin/python
# Run it on a quiet machine: the figures are from one run each.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-${EVENTS:-10000000}}
FILES=${FILES:-100}
SPARK_PY=${SPARK_PY:-.spark-venv/bin/python}
SPARK_JOB=${SPARK_JOB:-/work/shared/bench/spark/spark_job.py}
WEIR=${WEIR:-target/release/weir}
export EVENTS WEIR FILES SPARK_PY SPARK_JOB
export SKIP_WEIR=${SKIP_WEIR:-} SKIP_SPARK=${SKIP_SPARK:-}
export JOBS=${JOBS:-window sliding session} FORMATS=${FORMATS:-json parquet} STORES=${STORES:-memory rocksdb}
export SPARK_CORES=${SPARK_CORES:-2}

if [ ! -x "$SPARK_PY" ] || ! "$SPARK_PY" -c 'import pyspark, pyarrow, pandas' 2>/dev/null; then
  echo "windows.sh: $SPARK_PY with pyspark, pyarrow and pandas is needed; install it with" >&2
  echo "  python3 -m venv .spark-venv && .spark-venv/bin/pip install pyspark==4.3.0 pyarrow 'pandas<3'" >&2
  exit 1
fi
if [ -z "$SKIP_WEIR" ] && [ -z "${SKIP_BUILD:-}" ]; then
  scripts/host-deps.sh
  cargo build --release -p weir-host --bins
fi
if [ -z "$SKIP_WEIR" ] && [ ! -x "$WEIR" ]; then
  echo "windows.sh: $WEIR is missing (cargo build --release -p weir-host --bins)" >&2
  exit 1
fi

# Events, once: JSON lines in $DATA and the same rows as Parquet in ${DATA}_parquet (the generator's
# --parquet keeps every row in memory: about 7 GB at 10M events).
export DATA=bench/data/windows-$EVENTS-$FILES
if [ ! -f "$DATA/.complete" ] || [ ! -f "${DATA}_parquet/.complete" ]; then
  rm -rf "$DATA" "${DATA}_parquet"
  "$SPARK_PY" bench/gen_events.py "$DATA" --events "$EVENTS" --files "$FILES" --parquet
  touch "$DATA/.complete" "${DATA}_parquet/.complete"
fi

exec "$SPARK_PY" - <<'PY'
import json, os, subprocess, sys
import pyarrow.parquet as pq
import pandas as pd

sys.path.insert(0, os.path.abspath("bench"))
from bench_common import measure, tail, us  # noqa: E402

E = os.environ
EVENTS, DATA = int(E["EVENTS"]), E["DATA"]
SKIP_WEIR, SKIP_SPARK = bool(E["SKIP_WEIR"]), bool(E["SKIP_SPARK"])
OUT = os.path.abspath(f"bench/out/windows-{EVENTS}")
SCHEMA = "event_id string, user_id string, event_time timestamp, amount double, category string"
WINDOWS = {  # job -> (group column, weir window)
    "window": ("category", '{ column = "event_time", size = "5 minutes" }'),
    "sliding": ("category", '{ column = "event_time", size = "10 minutes", slide = "2 minutes" }'),
    "session": ("user_id", '{ column = "event_time", gap = "5 minutes" }'),
}


def weir_job(job, fmt, store, d):
    group, window = WINDOWS[job]
    src = DATA if fmt == "json" else DATA + "_parquet"
    text = f'''name = "windows-{job}-{fmt}-{store}"
state_store = "{store}"

[source]
format = "{fmt}"
path = "{os.path.abspath(src)}"
schema = "{SCHEMA}"
max_files_per_trigger = 1000

[watermark]
column = "event_time"
delay = "10 minutes"

[[operator]]
kind = "aggregate"
group_by = ["{group}"]
window = {window}
aggregates = [
  {{ fn = "count", as = "n" }},
  {{ fn = "sum", column = "amount", as = "total" }},
]

[sink]
format = "parquet"
path = "{d}/out"
checkpoint = "{d}/ckpt"
output_mode = "append"
trigger = {{ available_now = true }}
'''
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/job.toml", "w") as f:
        f.write(text)
    return f"{d}/job.toml"


def keyed(df, group):
    return {(int(a), int(b), k): (int(n), float(t)) for a, b, k, n, t in zip(
        us(df["window_start"]), us(df["window_end"]), df[group], df["n"], df["total"])}


def read_weir(out_dir):
    """The files weir's commit log lists (`weir output files OUT`: the latest OUT/_weir_log/<N>.compact
    and the batch files after it), else every data file but the log."""
    files, log = [], os.path.join(out_dir, "_weir_log")
    if os.path.isdir(log):
        listed = subprocess.run([E["WEIR"], "output", "files", out_dir], check=True, capture_output=True, text=True)
        files = [p if os.path.isabs(p) else os.path.join(out_dir, p) for p in listed.stdout.splitlines()]
    else:
        for root, dirs, names in os.walk(out_dir):
            dirs[:] = [x for x in dirs if not x.startswith(("_", "."))]
            files += [os.path.join(root, x) for x in names if x.endswith(".parquet")]
    if not files:
        return pd.DataFrame(columns=["window_start", "window_end", "category", "user_id", "n", "total"])
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def compare(weir_df, spark_csv, group):
    sdf = pd.read_csv(spark_csv)
    need = ["window_start", "window_end", group, "n", "total"]
    if any(c not in weir_df.columns for c in need):
        return len(weir_df), len(sdf), [f"weir's output columns are {list(weir_df.columns)}, expected {need}"]
    w, s = keyed(weir_df, group), keyed(sdf, group)
    diffs = [f"{who} wrote {len(df) - len(k)} rows for a (window, {group}) already written"
             for who, df, k in (("weir", weir_df, w), ("Spark", sdf, s)) if len(df) != len(k)]
    fmt_k = lambda k: (str(pd.Timestamp(k[0], unit="us")), str(pd.Timestamp(k[1], unit="us")), k[2])
    for k in sorted(set(w) | set(s)):
        a, b = w.get(k), s.get(k)
        if a is None or b is None:
            diffs.append(f"{fmt_k(k)}: weir {a}, Spark {b}")
        elif a[0] != b[0] or abs(a[1] - b[1]) > 1e-6 * max(abs(a[1]), abs(b[1]), 1e-300):
            diffs.append(f"{fmt_k(k)}: weir n={a[0]} total={a[1]!r}, Spark n={b[0]} total={b[1]!r}")
    return len(w), len(s), diffs


rows, notes, all_match, failed = [], [], True, False
print(f"## Window aggregations: {EVENTS:,} events in {E['FILES']} files, weir vs Spark "
      f"(PySpark local[{E['SPARK_CORES']}]), one run each", flush=True)
for job in E["JOBS"].split():
    group = WINDOWS[job][0]
    for fmt in E["FORMATS"].split():
        d = f"{OUT}/{job}-{fmt}"
        os.makedirs(d, exist_ok=True)
        spark = None
        if not SKIP_SPARK:
            src = DATA if fmt == "json" else DATA + "_parquet"
            cmd = [E["SPARK_PY"], E["SPARK_JOB"], job, src, f"{d}/spark-out", "--format", fmt,
                   "--cores", E["SPARK_CORES"], "--csv", f"{d}/spark.csv"]
            rc, secs, out, maxrss, tree = measure(cmd, f"{d}/spark.log")
            line = [l for l in out.splitlines() if l.startswith("{")]
            if rc != 0 or not line:
                sys.exit(f"Spark {job} {fmt} failed (exit {rc}), {d}/spark.log:\n{tail(f'{d}/spark.log')}")
            spark = json.loads(line[-1])
            spark.update(wall=secs, maxrss=maxrss, tree=tree)
            if spark["rows_in"] != EVENTS:
                notes.append(f"Spark {job} {fmt} read {spark['rows_in']} rows, not {EVENTS}")
            notes.append(f"Spark {job} {fmt}: query {spark['seconds']} s, JVM+session start "
                         f"{spark['session_start_s']} s, wall {secs:.1f} s; largest single process "
                         f"(wait4 ru_maxrss) {maxrss:.0f} MiB")
        for store in (E["STORES"].split() if not SKIP_WEIR else [None]):
            weir = None
            if store is not None:
                wd = f"{d}/weir-{store}"
                subprocess.run(["rm", "-rf", wd], check=True)
                jobf = weir_job(job, fmt, store, wd)
                rc, secs, _, maxrss, tree = measure(
                    [os.path.abspath(E["WEIR"]), "run", "--quiet", jobf], f"{wd}/weir.log",
                    poll=False)  # one process: its ru_maxrss is exact
                if rc != 0:
                    failed = True
                    notes.append(f"weir {job} {fmt} {store} FAILED (exit {rc}), {wd}/weir.log:\n"
                                 + tail(f"{wd}/weir.log"))
                else:
                    weir = dict(secs=secs, rss=maxrss)
                    n_in = 0
                    prog = f"{wd}/ckpt/progress.jsonl"
                    if os.path.exists(prog):
                        with open(prog) as f:
                            n_in = sum(json.loads(l).get("numInputRows", 0) for l in f if l.strip())
                        if n_in != EVENTS:
                            notes.append(f"weir {job} {fmt} {store}: progress.jsonl counts {n_in} input rows, not {EVENTS}")
                    if spark is not None:
                        nw, ns, diffs = compare(read_weir(f"{wd}/out"), f"{d}/spark.csv", group)
                        if diffs:
                            all_match = False
                            notes.append(f"weir {job} {fmt} {store}: OUTPUTS DIFFER ({nw} weir rows, {ns} Spark rows, "
                                         f"{len(diffs)} differences); first:\n  " + "\n  ".join(diffs[:10]))
                        else:
                            notes.append(f"weir {job} {fmt} {store}: outputs match ({nw} rows)")
            r = [job, fmt, store or "-"]
            r += [f"{EVENTS / weir['secs']:,.0f}", f"{weir['rss']:.0f}"] if weir else ["-", "-"]
            r += [f"{spark['rows_per_s']:,}", f"{spark['tree']:.0f}"] if spark else ["-", "-"]
            r += [f"{EVENTS / weir['secs'] / spark['rows_per_s']:.2f}"] if weir and spark else ["-"]
            rows.append(r)
            print("  done: " + " | ".join(r), file=sys.stderr, flush=True)

print()
print("| job | input | state store | weir rows/s | weir peak RSS MiB | Spark rows/s | Spark peak RSS MiB | ratio (weir/Spark rows/s) |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print()
print("weir rows/s: events / wall seconds of `weir run --quiet` (process start included); peak RSS: its ru_maxrss.")
print("Spark rows/s: spark_job.py's figure (query only: JVM and session start excluded); peak RSS: the")
print("largest summed RSS of python + the JVM (+ any workers), sampled from /proc every 0.1 s.")
print()
for n in notes:
    print("- " + n)
if not SKIP_WEIR and not SKIP_SPARK:
    print()
    print("weir FAILED (see above)" if failed else "outputs match" if all_match else "OUTPUTS DIFFER (see above)")
sys.exit(1 if failed or not all_match else 0)
PY
