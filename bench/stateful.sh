#!/usr/bin/env bash
# Sessionization with per-key state and event-time timeouts, weir vs Apache Spark, on the same machine
# in one run; prints a markdown table.
#   job:    per user_id, events closer than 30 minutes form a session, written when it closes (a
#           later event beyond the gap, or the event-time timeout at last event + gap once the
#           watermark passes it): user_id, session_start, session_end, events, total(amount).
#   weir:   a `stateful` operator running the Rust plugin (target/plugins/sessionize.wasm) and its
#           Python twin (target/plugins/sessionize-py.wasm); Spark: bench/spark_sessionize.py,
#           applyInPandasWithState with GroupStateTimeout.EventTimeTimeout (PySpark, local[2]).
#   all:    watermark event_time 10 minutes, append mode, Parquet file sink, available_now, up to
#           1000 files per batch.
# Every weir output is checked against Spark's (the same sessions; totals within 1e-6 relative).
#
# Usage: bench/stateful.sh [EVENTS]      default 10000000; data is generated once under bench/data/
# Environment:
#   USERS=...       distinct user_ids (default EVENTS/100: 100000 at 10M events); event time advances
#                   1e6/USERS ms per event (10 ms at 100k users), so a user's events are ~1000 s apart
#                   on average, whatever EVENTS is, and sessions do close
#   SKIP_WEIR=1     data generation and Spark only (no cargo build, no weir runs)
#   SKIP_SPARK=1    weir only (no comparison of outputs)
#   SKIP_BUILD=1    use the weir binary and plugins as they are;  WEIR=target/release/weir
#   PLUGINS="sessionize sessionize-py"  FORMATS="json"  STORES="memory"   subsets / supersets
#                   (FORMATS="json parquet" also writes the events as Parquet: the generator keeps
#                   every row in memory then, about 7 GB at 10M events)
#   FILES=100       files the events are split into;  SPARK_CORES=2;  SPARK_PY=.spark-venv/bin/python
# Run it on a quiet machine: the figures are from one run each.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-${EVENTS:-10000000}}
USERS=${USERS:-$(( EVENTS / 100 > 0 ? EVENTS / 100 : 1 ))}
FILES=${FILES:-100}
MS_PER_EVENT=$(python3 -c "print(1e6 / $USERS)")
SPARK_PY=${SPARK_PY:-.spark-venv/bin/python}
WEIR=${WEIR:-target/release/weir}
export EVENTS USERS FILES MS_PER_EVENT WEIR SPARK_PY
export SKIP_WEIR=${SKIP_WEIR:-} SKIP_SPARK=${SKIP_SPARK:-}
export PLUGINS=${PLUGINS:-sessionize sessionize-py} FORMATS=${FORMATS:-json} STORES=${STORES:-memory}
export SPARK_CORES=${SPARK_CORES:-2}

if [ ! -x "$SPARK_PY" ] || ! "$SPARK_PY" -c 'import pyspark, pyarrow, pandas' 2>/dev/null; then
  echo "stateful.sh: $SPARK_PY with pyspark, pyarrow and pandas is needed; install it with" >&2
  echo "  python3 -m venv .spark-venv && .spark-venv/bin/pip install pyspark==4.3.0 pyarrow 'pandas<3'" >&2
  exit 1
fi
if [ -z "$SKIP_WEIR" ] && [ -z "${SKIP_BUILD:-}" ]; then
  scripts/host-deps.sh
  cargo build --release -p weir-host --bins
  scripts/wasm-toolchain.sh >&2
  for p in $PLUGINS; do
    if [ ! -d "plugins/$p" ]; then
      echo "stateful.sh: plugins/$p does not exist" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2086
  WEIR=$WEIR scripts/build-plugins.sh $PLUGINS >/dev/null
fi
if [ -z "$SKIP_WEIR" ]; then
  if [ ! -x "$WEIR" ]; then
    echo "stateful.sh: $WEIR is missing (cargo build --release -p weir-host --bins)" >&2
    exit 1
  fi
  for p in $PLUGINS; do
    if [ ! -f "target/plugins/$p.wasm" ]; then
      echo "stateful.sh: target/plugins/$p.wasm is missing (scripts/build-plugins.sh $p)" >&2
      exit 1
    fi
  done
fi

# Events, once: JSON lines in $DATA (and the same rows as Parquet in ${DATA}_parquet when asked).
export DATA=bench/data/stateful-$EVENTS-$USERS-$FILES
want_parquet=
case " $FORMATS " in *" parquet "*) want_parquet=1 ;; esac
if [ ! -f "$DATA/.complete" ] || { [ -n "$want_parquet" ] && [ ! -f "${DATA}_parquet/.complete" ]; }; then
  rm -rf "$DATA" "${DATA}_parquet"
  "$SPARK_PY" bench/gen_events.py "$DATA" --events "$EVENTS" --files "$FILES" --users "$USERS" \
    --ms-per-event "$MS_PER_EVENT" ${want_parquet:+--parquet}
  touch "$DATA/.complete"
  if [ -n "$want_parquet" ]; then touch "${DATA}_parquet/.complete"; fi
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
OUT = os.path.abspath(f"bench/out/stateful-{EVENTS}-{E['USERS']}")
SCHEMA = "event_id string, user_id string, event_time timestamp, amount double, category string"
COLUMNS = ["user_id", "session_start", "session_end", "events", "total"]


def weir_job(plugin, fmt, store, d, src=None):
    src = src or (DATA if fmt == "json" else DATA + "_parquet")
    text = f'''name = "sessionize-{plugin}-{fmt}-{store}"
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
kind = "stateful"
plugin = "{os.path.abspath(f'target/plugins/{plugin}.wasm')}"
group_by = ["user_id"]
timeout = "event_time"
config = "gap_minutes=30"

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


def sessions(df):
    """{(user_id, session_start µs): (session_end µs, events, total)}."""
    return {(u, int(a)): (int(b), int(n), float(t)) for u, a, b, n, t in zip(
        df["user_id"], us(df["session_start"]), us(df["session_end"]), df["events"], df["total"])}


def read_weir(out_dir):
    """The committed files, as `weir output files` lists them (paths relative to out_dir or absolute)."""
    r = subprocess.run([os.path.abspath(E["WEIR"]), "output", "files", out_dir], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"weir output files {out_dir}: {r.stderr.strip()}")
    files = [f if os.path.isabs(f) else os.path.join(out_dir, f) for f in r.stdout.splitlines() if f]
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def compare(weir_df, spark_csv):
    sdf = pd.read_csv(spark_csv)
    if list(weir_df.columns) != COLUMNS:
        return len(weir_df), len(sdf), [f"weir's output columns are {list(weir_df.columns)}, expected {COLUMNS}"]
    w, s = sessions(weir_df), sessions(sdf)
    diffs = [f"{who} wrote {len(df) - len(k)} sessions twice (same user_id and session_start)"
             for who, df, k in (("weir", weir_df, w), ("Spark", sdf, s)) if len(df) != len(k)]
    fmt_k = lambda k: (k[0], str(pd.Timestamp(k[1], unit="us")))
    for k in sorted(set(w) | set(s)):
        a, b = w.get(k), s.get(k)
        if a is None or b is None:
            diffs.append(f"{fmt_k(k)}: weir {a}, Spark {b}")
        elif a[:2] != b[:2] or abs(a[2] - b[2]) > 1e-6 * max(abs(a[2]), abs(b[2]), 1e-300):
            diffs.append(f"{fmt_k(k)}: weir end={pd.Timestamp(a[0], unit='us')} events={a[1]} total={a[2]!r}, "
                         f"Spark end={pd.Timestamp(b[0], unit='us')} events={b[1]} total={b[2]!r}")
    return len(w), len(s), diffs


def warm_up(plugin):
    """One untimed run over 100 events, so the timed runs find the component compiled in weir's
    cache (Cranelift takes ~10 s on a Python component) as Spark's figure excludes its JVM start."""
    d = f"{OUT}/warm-{plugin}"
    subprocess.run(["rm", "-rf", d], check=True)
    os.makedirs(f"{d}/in")
    first = sorted(f for f in os.listdir(DATA) if f.endswith(".json"))[0]
    with open(f"{DATA}/{first}") as fin, open(f"{d}/in/part-00000.json", "w") as fout:
        fout.writelines(l for _, l in zip(range(100), fin))
    subprocess.run([os.path.abspath(E["WEIR"]), "run", "--quiet", weir_job(plugin, "json", "memory", d, f"{d}/in")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if not SKIP_WEIR:
    for plugin in E["PLUGINS"].split():
        warm_up(plugin)

rows, notes, all_match, failed = [], [], True, False
print(f"## Sessionization (stateful, 30-min gap): {EVENTS:,} events, {int(E['USERS']):,} users, {E['FILES']} files, "
      f"weir vs Spark (PySpark local[{E['SPARK_CORES']}] applyInPandasWithState), one run each", flush=True)
for fmt in E["FORMATS"].split():
    d = f"{OUT}/{fmt}"
    os.makedirs(d, exist_ok=True)
    src = DATA if fmt == "json" else DATA + "_parquet"
    spark = None
    if not SKIP_SPARK:
        cmd = [E["SPARK_PY"], "bench/spark_sessionize.py", src, f"{d}/spark-out", "--format", fmt,
               "--cores", E["SPARK_CORES"], "--csv", f"{d}/spark.csv"]
        rc, secs, out, maxrss, tree = measure(cmd, f"{d}/spark.log")
        line = [l for l in out.splitlines() if l.startswith("{")]
        if rc != 0 or not line:
            sys.exit(f"Spark {fmt} failed (exit {rc}), {d}/spark.log:\n{tail(f'{d}/spark.log')}")
        spark = json.loads(line[-1])
        spark.update(wall=secs, maxrss=maxrss, tree=tree)
        if spark["rows_in"] != EVENTS:
            notes.append(f"Spark {fmt} read {spark['rows_in']} rows, not {EVENTS}")
        notes.append(f"Spark {fmt}: {spark['rows_out']:,} sessions; query {spark['seconds']} s, JVM+session start "
                     f"{spark['session_start_s']} s, wall {secs:.1f} s; largest single process "
                     f"(wait4 ru_maxrss) {maxrss:.0f} MiB")
    for plugin in (E["PLUGINS"].split() if not SKIP_WEIR else [None]):
        for store in (E["STORES"].split() if plugin else [None]):
            weir = None
            if plugin is not None:
                wd = f"{d}/weir-{plugin}-{store}"
                subprocess.run(["rm", "-rf", wd], check=True)
                jobf = weir_job(plugin, fmt, store, wd)
                rc, secs, _, maxrss, tree = measure([os.path.abspath(E["WEIR"]), "run", "--quiet", jobf],
                                                    f"{wd}/weir.log")
                if rc != 0:
                    failed = True
                    notes.append(f"weir {plugin} {fmt} {store} FAILED (exit {rc}), {wd}/weir.log:\n"
                                 + tail(f"{wd}/weir.log"))
                else:
                    weir = dict(secs=secs, rss=maxrss, tree=tree)
                    prog = f"{wd}/ckpt/progress.jsonl"
                    if os.path.exists(prog):
                        with open(prog) as f:
                            n_in = sum(json.loads(l).get("numInputRows", 0) for l in f if l.strip())
                        if n_in != EVENTS:
                            notes.append(f"weir {plugin} {fmt} {store}: progress.jsonl counts {n_in} input rows, "
                                         f"not {EVENTS}")
                    if spark is not None:
                        nw, ns, diffs = compare(read_weir(f"{wd}/out"), f"{d}/spark.csv")
                        if diffs:
                            all_match = False
                            notes.append(f"weir {plugin} {fmt} {store}: OUTPUTS DIFFER ({nw} weir sessions, {ns} "
                                         f"Spark sessions, {len(diffs)} differences); first:\n  "
                                         + "\n  ".join(diffs[:10]))
                        else:
                            notes.append(f"weir {plugin} {fmt} {store}: outputs match ({nw:,} sessions)")
            r = [plugin or "-", fmt, store or "-"]
            r += [f"{EVENTS / weir['secs']:,.0f}", f"{max(weir['rss'], weir['tree']):.0f}"] if weir else ["-", "-"]
            r += [f"{spark['rows_per_s']:,}", f"{spark['tree']:.0f}"] if spark else ["-", "-"]
            r += [f"{EVENTS / weir['secs'] / spark['rows_per_s']:.2f}"] if weir and spark else ["-"]
            rows.append(r)
            print("  done: " + " | ".join(r), file=sys.stderr, flush=True)

print()
print("| weir plugin | input | state store | weir rows/s | weir peak RSS MiB | Spark rows/s | Spark peak RSS MiB | ratio (weir/Spark rows/s) |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
print()
print("weir rows/s: events / wall seconds of `weir run --quiet` (process start included; the plugin's compiled")
print("code comes from weir's cache, filled by an untimed 100-event run first);")
print("peak RSS: its ru_maxrss (or the sampled tree sum, if larger).")
print("Spark rows/s: spark_sessionize.py's figure (query only: JVM and session start excluded); peak RSS: the")
print("largest summed RSS of python + the JVM + pandas workers, sampled from /proc every 0.1 s.")
print()
for n in notes:
    print("- " + n)
if not SKIP_WEIR and not SKIP_SPARK:
    print()
    print("weir FAILED (see above)" if failed else "outputs match" if all_match else "OUTPUTS DIFFER (see above)")
sys.exit(1 if failed or not all_match else 0)
PY
