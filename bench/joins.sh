#!/usr/bin/env bash
# Joins, weir vs Apache Spark 4.3 (local[2]), on the same Parquet files in one run; prints a markdown
# table (issue 12's benchmark).
#   stream-stream: clicks (left) inner / left_outer join impressions (right) on ad_id, with
#           impression_time <= click_time <= impression_time + 1 hour, watermarks 3 h on clicks and
#           2 h on impressions (bench/joins/stream_stream_{inner,left_outer}.toml);
#   stream-static: events left_outer join the users table on user_id
#           (bench/joins/stream_static_left_outer.toml).
#   weir:   `weir run --quiet` on those job files with state_store memory and rocksdb (the
#           stream-static join keeps no state: memory only); Spark: bench/spark_joins.py (the same job
#           file through bench/spark_crosscheck.py's translation, Parquet file sink).
#   both:   one file per source per micro-batch (max_files_per_trigger = 1 / maxFilesPerTrigger 1, as
#           the job files say: 100 data batches), trigger available_now / availableNow, append mode.
# Every weir output is compared with Spark's as a multiset of rows (all columns, timestamps as µs).
#
# Usage: bench/joins.sh [SCALE]   default 1: 10M impressions + 1M clicks, 10M events + 1M users
#        (bench/joins_data.py, generated once under bench/data/joins-SCALE-FILES/)
# Environment:
#   FILES=100             files per stream (micro-batches)
#   JOBS="stream_stream_inner stream_stream_left_outer stream_static_left_outer"   a subset
#   STORES="memory rocksdb"   weir state stores for the stream-stream joins
#   SKIP_WEIR=1 / SKIP_SPARK=1 / SKIP_BUILD=1 (use $WEIR as it is; default target/release/weir)
#   SPARK_CORES=2  SPARK_MEMORY=4g (spark.driver.memory)  SPARK_PY=.spark-venv/bin/python
# Run it on a quiet machine: the figures are from one run each.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-${SCALE:-1}}
FILES=${FILES:-100}
SPARK_PY=${SPARK_PY:-.spark-venv/bin/python}
WEIR=${WEIR:-target/release/weir}
export SCALE FILES WEIR SPARK_PY
export SKIP_WEIR=${SKIP_WEIR:-} SKIP_SPARK=${SKIP_SPARK:-}
export JOBS=${JOBS:-stream_stream_inner stream_stream_left_outer stream_static_left_outer}
export STORES=${STORES:-memory rocksdb} SPARK_CORES=${SPARK_CORES:-2} SPARK_MEMORY=${SPARK_MEMORY:-4g}

if [ ! -x "$SPARK_PY" ] || ! "$SPARK_PY" -c 'import pyspark, pyarrow, pandas' 2>/dev/null; then
  echo "joins.sh: $SPARK_PY with pyspark, pyarrow and pandas is needed; install it with" >&2
  echo "  python3 -m venv .spark-venv && .spark-venv/bin/pip install pyspark==4.3.0 pyarrow 'pandas<3'" >&2
  exit 1
fi
if [ -z "$SKIP_WEIR" ] && [ -z "${SKIP_BUILD:-}" ]; then
  scripts/host-deps.sh
  cargo build --release -p weir-host --bins
fi
if [ ! -x "$WEIR" ]; then  # weir also lists the output files for the comparison
  echo "joins.sh: $WEIR is missing (cargo build --release -p weir-host --bins)" >&2
  exit 1
fi

# Input, once: bench/joins_data.py's Parquet files (streams: FILES files each; users: one file).
export DATA=bench/data/joins-$SCALE-$FILES
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"
  "$SPARK_PY" bench/joins_data.py "$DATA" --scale "$SCALE" --files "$FILES"
  touch "$DATA/.complete"
fi

exec "$SPARK_PY" - <<'PY'
import json, os, re, subprocess, sys, threading, time, warnings
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, os.path.abspath("bench"))
from bench_common import PAGE, tail  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # pyarrow's null_placement in SortOptions
E = os.environ
DATA, WEIR = os.path.abspath(E["DATA"]), os.path.abspath(E["WEIR"])
SKIP_WEIR, SKIP_SPARK = bool(E["SKIP_WEIR"]), bool(E["SKIP_SPARK"])
OUT = os.path.abspath(f"bench/out/joins-{E['SCALE']}-{E['FILES']}")
with open(f"{DATA}/manifest.json") as f:
    COUNTS = json.load(f)["counts"]


def weir_job(name, store, d):
    """bench/joins/<name>.toml with absolute input paths, its sink in d, and the state store; with a
    [watermark] (the first source's column and delay) if this weir still asks for one."""
    text = open(f"bench/joins/{name}.toml").read()
    text = re.sub(r'(?m)^path = "(\w+)"$', lambda m: f'path = "{DATA}/{m.group(1)}"', text)
    text = re.sub(r'(?m)^path = "out/[^"]*"$', f'path = "{d}/out"', text)
    text = re.sub(r'(?m)^checkpoint = "[^"]*"$', f'checkpoint = "{d}/ckpt"', text)
    text = re.sub(r'(?m)^(name = "[^"]*")$', rf'\1\nstate_store = "{store}"', text, count=1)
    job = f"{d}/job.toml"
    os.makedirs(d, exist_ok=True)
    with open(job, "w") as f:
        f.write(text)
    if subprocess.run([WEIR, "check", job], capture_output=True).returncode != 0:
        col = re.search(r'(?m)^watermark_column = "([^"]*)"$', text)
        delay = re.search(r'(?m)^watermark_delay = "([^"]*)"$', text)
        if col and delay and "[watermark]" not in text:
            with open(job, "a") as f:
                f.write(f'\n[watermark]\ncolumn = "{col.group(1)}"\ndelay = "{delay.group(1)}"\n')
    r = subprocess.run([WEIR, "check", job], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"joins.sh: weir check {job} fails:\n{r.stderr}")
    return job


def weir_files(out_dir):
    r = subprocess.run([WEIR, "output", "files", out_dir], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"weir output files {out_dir}: {r.stderr.strip()}")
    return [f if os.path.isabs(f) else os.path.join(out_dir, f) for f in r.stdout.splitlines() if f]


def spark_files(out_dir):
    return sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir)
                  if f.endswith(".parquet") and not f.startswith((".", "_")))


def canonical(files):
    """The rows of files as one table, columns in file order, timestamps as int64 µs (UTC), integers as
    int64, sorted by every column (nulls last): equal tables <=> equal multisets of rows."""
    t = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default") if files else None
    if t is None:
        return None
    cols = []
    for c in t.columns:
        c = c.combine_chunks()
        if pa.types.is_timestamp(c.type):
            c = pc.cast(c.cast(pa.timestamp("us", c.type.tz)), pa.int64())
        elif pa.types.is_integer(c.type):
            c = c.cast(pa.int64())
        elif pa.types.is_large_string(c.type) or pa.types.is_string_view(c.type):
            c = c.cast(pa.string())
        cols.append(c)
    t = pa.table(cols, names=t.column_names)
    return t.take(pc.sort_indices(t, sort_keys=[(n, "ascending") for n in t.column_names], null_placement="at_end"))


def compare(wt, st):
    """[] when equal, else what differs (columns, counts, up to 10 rows only in one of them)."""
    if wt is None or st is None:
        return [f"no output files (weir {wt is not None}, Spark {st is not None})"]
    if wt.column_names != st.column_names:
        return [f"columns differ: weir {wt.column_names}, Spark {st.column_names}"]
    if wt.num_rows == st.num_rows and all(wt.column(i).equals(st.column(i)) for i in range(wt.num_columns)):
        return []
    import pandas as pd
    w, s = wt.to_pandas(), st.to_pandas()
    for df in (w, s):
        df["_n"] = df.groupby(list(wt.column_names), dropna=False).cumcount()
    m = w.merge(s, how="outer", on=list(w.columns), indicator=True)
    only_w, only_s = m[m["_merge"] == "left_only"], m[m["_merge"] == "right_only"]
    out = [f"{len(w):,} weir rows, {len(s):,} Spark rows; {len(only_w):,} only in weir, {len(only_s):,} only in Spark"]
    out += ["only weir:  " + r.drop(["_n", "_merge"]).to_json() for _, r in only_w.head(10).iterrows()]
    out += ["only Spark: " + r.drop(["_n", "_merge"]).to_json() for _, r in only_s.head(10).iterrows()]
    return out


def weir_progress(ckpt):
    rows = batches = dropped = 0
    path = f"{ckpt}/progress.jsonl"
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    p = json.loads(line)
                    batches += 1
                    rows += p.get("numInputRows", 0)
                    dropped += sum(o.get("numRowsDroppedByWatermark", 0) for o in p.get("stateOperators") or []
                                   if o.get("operatorName") == "symmetricHashJoin")
    return rows, batches, dropped


def input_rows(name):
    if name.startswith("stream_stream"):
        return COUNTS["impressions"] + COUNTS["clicks"]
    return COUNTS["events"]


def expected_rows(name):
    """Output rows known in advance: a left_outer stream-static join writes every event once. (The
    stream-stream counts depend on which late clicks the watermark really drops and which unmatched
    clicks are still in state at the end; the generator's counts are printed below the table.)"""
    if name == "stream_static_left_outer":
        return COUNTS["events"]
    return None


def tree_rss(root):
    """Summed RSS (bytes) of root and its descendants, from /proc, leaving out a process that runs its
    parent's executable (a fork before its exec: e.g. the JVM spawning `chmod` or `ls` for Hadoop's
    local file system shares the JVM's pages, and its RSS would count them a second time); and the
    largest single RSS among them."""
    kids, rss, exe = {}, {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * PAGE
            try:
                exe[int(d)] = os.readlink(f"/proc/{d}/exe")
            except OSError:
                exe[int(d)] = None
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    total, largest, todo = 0, 0, [(root, None)]
    while todo:
        p, parent = todo.pop()
        if parent is None or exe.get(p) is None or exe.get(p) != exe.get(parent):
            total += rss.get(p, 0)
            largest = max(largest, rss.get(p, 0))
        todo += [(k, p) for k in kids.get(p, [])]
    return total, largest


def measure(cmd, log):
    """Run cmd (stderr to log); return (exit code, wall seconds, stdout, peak summed RSS MiB of the
    process tree, peak RSS MiB of its largest process), RSS sampled every 0.1 s (tree_rss)."""
    t = time.monotonic()
    # The command runs under /usr/bin/time, which reports its child's peak RSS (%M): a child forked
    # straight from this process would start with this process's own peak in its ru_maxrss (Linux
    # keeps the pre-exec high-water mark), and this process holds Spark's output tables.
    maxrss_file = log + ".maxrss"
    with open(log, "w") as errf:
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", maxrss_file] + cmd, stdout=subprocess.PIPE,
                             stderr=errf, text=True)
        peak, done = [0, 0], threading.Event()

        def sample():
            while not done.is_set():
                total, largest = tree_rss(p.pid)
                peak[0], peak[1] = max(peak[0], total), max(peak[1], largest)
                done.wait(0.1)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out = p.stdout.read()
        _, status, _ = os.wait4(p.pid, 0)
        secs = time.monotonic() - t
        done.set()
        th.join()
    # The child's ru_maxrss (KiB): the largest process among it and those it reaped (weir: weir
    # itself; Spark: the JVM).
    try:
        with open(maxrss_file) as f:
            maxrss = int(f.read().split()[-1]) * 1024
    except (OSError, ValueError, IndexError):
        maxrss = 0
    return os.waitstatus_to_exitcode(status), secs, out, max(peak[0], maxrss) / 2**20, peak[1] / 2**20


def load():
    """The 1-minute load average (the machine has 2 cores: above 2, something else competed)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def mib(x):
    return f"{x:,.0f}"


results, notes, all_match, failed = [], [], True, False
for name in E["JOBS"].split():
    n_in = input_rows(name)
    d = f"{OUT}/{name}"
    spark, spark_tab = None, None
    if not SKIP_SPARK:
        sd = f"{d}/spark"
        subprocess.run(["rm", "-rf", sd], check=True)
        os.makedirs(sd)
        cmd = [E["SPARK_PY"], "bench/spark_joins.py", f"bench/joins/{name}.toml", DATA, sd,
               "--cores", E["SPARK_CORES"], "--driver-memory", E["SPARK_MEMORY"]]
        print(f"  {name}: Spark ...", file=sys.stderr, flush=True)
        load0 = load()
        rc, secs, out, tree, largest = measure(cmd, f"{sd}/spark.log")
        line = [l for l in out.splitlines() if l.startswith("{")]
        if rc != 0 or not line:
            sys.exit(f"Spark {name} failed (exit {rc}), {sd}/spark.log:\n{tail(f'{sd}/spark.log')}")
        spark = json.loads(line[-1])
        spark.update(wall=secs, rss=tree, out_files=spark_files(f"{sd}/out"))
        spark_tab = canonical(spark["out_files"])
        spark["rows_out"] = spark_tab.num_rows if spark_tab is not None else 0
        if spark["rows_in"] != n_in:
            notes.append(f"{name}: Spark read {spark['rows_in']:,} rows, not {n_in:,}")
        notes.append(f"{name}: Spark wall {secs:.1f} s = JVM+session start {spark['session_start_s']} s + query "
                     f"{spark['seconds']} s ({n_in / spark['seconds']:,.0f} rows/s for the query alone) + stop; "
                     f"{spark['batches']} micro-batches; late rows dropped {spark['dropped_late']:,}; "
                     f"the JVM alone (largest process) {largest:,.0f} MiB; load average {load0} before, {load()} after")
        results.append(dict(job=name, engine="Spark", store="-", wall=secs, rss=spark["rss"],
                            rows_out=spark["rows_out"], dropped=spark["dropped_late"], batches=spark["batches"],
                            query=spark["seconds"]))
        print(f"  {name}: Spark {secs:.1f} s, {spark['rss']:,.0f} MiB", file=sys.stderr, flush=True)
    stores = E["STORES"].split() if name.startswith("stream_stream") else ["memory"]
    for store in ([] if SKIP_WEIR else stores):
        wd = f"{d}/weir-{store}"
        subprocess.run(["rm", "-rf", wd], check=True)
        job = weir_job(name, store, wd)
        print(f"  {name}: weir {store} ...", file=sys.stderr, flush=True)
        load0 = load()
        rc, secs, _, tree, _ = measure([WEIR, "run", "--quiet", job], f"{wd}/weir.log")
        notes.append(f"{name}: weir {store}: load average {load0} before, {load()} after")
        if rc != 0:
            failed = True
            notes.append(f"{name}: weir {store} FAILED (exit {rc}), {wd}/weir.log:\n" + tail(f"{wd}/weir.log"))
            continue
        rows, batches, dropped = weir_progress(f"{wd}/ckpt")
        if rows != n_in:
            notes.append(f"{name}: weir {store}: progress.jsonl counts {rows:,} input rows, not {n_in:,}")
        wt = canonical(weir_files(f"{wd}/out"))
        r = dict(job=name, engine="weir", store=store, wall=secs, rss=tree,
                 rows_out=wt.num_rows if wt is not None else 0, dropped=dropped, batches=batches)
        if spark is not None:
            diffs = compare(wt, spark_tab)
            r["equal"] = not diffs
            if diffs:
                all_match = False
                notes.append(f"{name}: weir {store}: OUTPUT DIFFERS from Spark's:\n  " + "\n  ".join(diffs))
        results.append(r)
        del wt
        print(f"  {name}: weir {store} {secs:.1f} s, {r['rss']:,.0f} MiB", file=sys.stderr, flush=True)
    del spark_tab

print()
print(f"## Joins: weir vs Spark 4.3 (PySpark, local[{E['SPARK_CORES']}], spark.driver.memory {E['SPARK_MEMORY']}), "
      f"scale {E['SCALE']} ({COUNTS.get('impressions', 0):,} impressions + {COUNTS.get('clicks', 0):,} clicks; "
      f"{COUNTS.get('events', 0):,} events + {COUNTS.get('users', 0):,} users), {E['FILES']} files per stream, "
      f"one run each")
print()
print("| join | engine | state store | input rows | wall s | rows/s | peak RSS MiB | batches | late rows dropped "
      "| output rows (expected) | weir/Spark rows/s | weir/Spark rows/s, Spark query only | weir/Spark RSS "
      "| output = Spark's |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
spark_of = {r["job"]: r for r in results if r["engine"] == "Spark"}
for r in results:
    n_in, s = input_rows(r["job"]), spark_of.get(r["job"])
    exp = expected_rows(r["job"])
    cells = [r["job"].replace("_", " "), r["engine"], r["store"], f"{n_in:,}", f"{r['wall']:.1f}",
             f"{n_in / r['wall']:,.0f}", mib(r["rss"]), str(r["batches"]), f"{r['dropped']:,}",
             f"{r['rows_out']:,}" + (f" ({exp:,})" if exp is not None else "")]
    if r["engine"] == "weir" and s is not None:
        cells += [f"{s['wall'] / r['wall']:.1f}×", f"{s['query'] / r['wall']:.1f}×", f"{r['rss'] / s['rss']:.2f}",
                  "yes" if r.get("equal") else "NO"]
    else:
        cells += ["-", "-", "-", "-"]
    print("| " + " | ".join(cells) + " |")
print()
print("rows/s: input rows (both streams for stream-stream; the events for stream-static, the 1M-row table")
print("not counted) / wall seconds of the whole process (weir: `weir run --quiet`; Spark: the PySpark")
print("driver, JVM start and stop included). Peak RSS: the largest summed RSS of the process tree (Spark:")
print("python driver + its JVM; a forked child that has not exec'd yet shares its parent's pages and is left")
print("out), sampled from /proc every 0.1 s, or the child's ru_maxrss (by /usr/bin/time) if larger.")
print("\"Spark query only\": Spark's time from start() to the end of the query (JVM and session start and")
print("stop excluded), against weir's whole wall time.")
print("Late rows dropped: numRowsDroppedByWatermark of the symmetricHashJoin, summed over the batches.")
print()
print("- generator (manifest.json): " + ", ".join(f"{k} {v:,}" for k, v in COUNTS.items()))
for n in notes:
    print("- " + n)
if not SKIP_WEIR and not SKIP_SPARK:
    print()
    print("weir FAILED (see above)" if failed else "outputs equal" if all_match else "OUTPUTS DIFFER (see above)")
sys.exit(1 if failed or not all_match else 0)
PY
