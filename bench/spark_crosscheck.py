#!/usr/bin/env python3
"""Run a weir job file's query in real Apache Spark, one micro-batch per input directory, and print
what Spark outputs per batch: a dev tool to check hand-worked expected outputs against Spark.

  .spark-venv/bin/python bench/spark_crosscheck.py JOB.toml BATCHES_DIR [--cores 1] [--verbose]

BATCHES_DIR holds subdirectories 0/, 1/, 2/, ... each with input files (json lines, csv or parquet,
as the job's [source] format says; names starting with '.' or '_' are skipped). The files of batch
k are merged into one file, and the query runs with maxFilesPerTrigger=1 and
trigger(availableNow=True), so batch k is exactly one Spark data micro-batch, in order; Spark's
no-data batches (run when the watermark moves) are shown too. The job's [source].path and the
[sink] (format, path, checkpoint, trigger) are ignored: output is captured with foreachBatch.

Prints, for every Spark micro-batch:
  batch <id>
  progress {"numInputRows": ..., "watermark": ..., "numRowsDroppedByWatermark": ..., "numRowsTotal": ...}
  <one JSON object per output row, sorted by window_start, window_end, group columns>
Timestamps are UTC, 'YYYY-MM-DD HH:MM:SS[.ffffff]'. The stateOperators figures are those of the
first stateful operator (stateOperators[0]); --verbose prints every operator's progress.

Operators translated: aggregate (groupBy/window/session_window + agg) and dedup (dropDuplicates,
or dropDuplicatesWithinWatermark with within_watermark = true); a map plugin has no translation.
Rows without a sort key (dedup output) are sorted by their JSON text.
"""
import argparse, datetime as dt, json, os, shutil, sys, tempfile, time, tomllib


def die(msg):
    sys.exit(f"spark_crosscheck: {msg}")


def batch_dirs(root):
    ks = sorted(int(d) for d in os.listdir(root) if d.isdigit() and os.path.isdir(os.path.join(root, d)))
    if not ks:
        die(f"{root}: no batch subdirectories 0/, 1/, ...")
    if ks != list(range(len(ks))):
        die(f"{root}: batch subdirectories must be 0..{len(ks) - 1} without gaps, found {ks}")
    out = []
    for k in ks:
        d = os.path.join(root, str(k))
        files = sorted(f for f in os.listdir(d)
                       if not f.startswith((".", "_")) and os.path.isfile(os.path.join(d, f)))
        if not files:
            die(f"{d}: no input files (an empty directory would not be a Spark batch)")
        out.append([os.path.join(d, f) for f in files])
    return out


def merge_batch(fmt, files, dest, csv_header):
    """Write the files of one batch as one file (so that one file == one micro-batch)."""
    if fmt == "json":
        with open(dest, "w") as o:
            for f in files:
                text = open(f).read()
                o.write(text if text.endswith("\n") or not text else text + "\n")
    elif fmt == "csv":
        with open(dest, "w") as o:
            for i, f in enumerate(files):
                lines = open(f).read().splitlines(keepends=True)
                if csv_header and i > 0:
                    lines = lines[1:]
                for ln in lines:
                    o.write(ln if ln.endswith("\n") else ln + "\n")
    elif fmt == "parquet":
        import pyarrow as pa, pyarrow.parquet as pq
        pq.write_table(pa.concat_tables([pq.read_table(f) for f in files]), dest)
    else:
        die(f"source format {fmt!r} is not supported (json, csv, parquet)")


def fmt_ts(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    return v


def jsonable(v):
    if isinstance(v, dt.datetime):
        return fmt_ts(v)
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def progress_wm(s):
    """'2026-01-01T00:00:00.000Z' -> '2026-01-01 00:00:00'."""
    if not s:
        return None
    t = dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.isoformat(sep=" ")


def build_query(spark, job, F, input_dir, fmt):
    src = job.get("source", {})
    reader = spark.readStream.format(fmt).option("maxFilesPerTrigger", 1)
    if "schema" in src:
        reader = reader.schema(src["schema"])
    elif fmt != "parquet":
        die("[source].schema is required for json and csv")
    if fmt == "csv":
        reader = reader.option("header", str(src.get("header", True)).lower())
        reader = reader.option("sep", src.get("delimiter", ","))
    df = reader.load(input_dir)

    wm = job.get("watermark")
    if wm is not None:
        df = df.withWatermark(wm["column"], wm["delay"])

    sort_cols = []
    for i, op in enumerate(job.get("operator", [])):
        kind = op.get("kind")
        if kind == "dedup":
            # within_watermark = true is Spark 3.5's dropDuplicatesWithinWatermark.
            if op.get("within_watermark", False):
                df = df.dropDuplicatesWithinWatermark(list(op["keys"]))
            else:
                df = df.dropDuplicates(list(op["keys"]))
        elif kind == "aggregate":
            group_by = list(op.get("group_by", []))
            win = op.get("window")
            keys = []
            if win is not None:
                if "gap" in win:
                    keys.append(F.session_window(win["column"], win["gap"]).alias("_w"))
                elif "slide" in win:
                    keys.append(F.window(win["column"], win["size"], win["slide"]).alias("_w"))
                else:
                    keys.append(F.window(win["column"], win["size"]).alias("_w"))
            keys += [F.col(c) for c in group_by]
            aggs, names = [], []
            for a in op.get("aggregates", []):
                fn, col, name = a["fn"], a.get("column"), a["as"]
                if fn == "count":
                    e = F.count("*") if col is None else F.count(col)
                elif fn in ("sum", "avg", "min", "max"):
                    e = getattr(F, fn)(col)
                elif fn in ("first", "last"):
                    e = getattr(F, fn)(col, ignorenulls=False)
                elif fn == "approx_count_distinct":
                    e = F.approx_count_distinct(col)
                else:
                    die(f"operator {i}: aggregate fn {fn!r} is not translated")
                if col is None and fn != "count":
                    die(f"operator {i}: aggregate {fn!r} needs a column")
                aggs.append(e.alias(name))
                names.append(name)
            if not aggs:
                die(f"operator {i}: aggregate without aggregates")
            df = df.groupBy(*keys).agg(*aggs)
            cols = []
            if win is not None:
                cols += [F.col("_w.start").alias("window_start"), F.col("_w.end").alias("window_end")]
            df = df.select(*cols, *group_by, *names)
            sort_cols = (["window_start", "window_end"] if win is not None else []) + group_by
        elif kind == "map":
            die(f"operator {i}: kind \"map\" (a Wasm plugin) has no Spark translation")
        else:
            die(f"operator {i}: unknown kind {kind!r}")
    return df, sort_cols


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job")
    ap.add_argument("batches")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print every operator's state progress")
    a = ap.parse_args()

    with open(a.job, "rb") as fh:
        job = tomllib.load(fh)
    src = job.get("source", {})
    fmt = src.get("format", "json")
    if fmt not in ("json", "csv", "parquet"):
        die(f"[source].format {fmt!r}: only json, csv, parquet are translated")
    mode = job.get("sink", {}).get("output_mode", "append")
    if mode not in ("append", "update", "complete"):
        die(f"[sink].output_mode {mode!r}")
    batches = batch_dirs(a.batches)

    os.environ["TZ"] = "UTC"  # collect() turns timestamps into naive datetimes in the local zone
    time.tzset()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = tempfile.mkdtemp(prefix="weir-crosscheck-")
    input_dir, ckpt = os.path.join(work, "in"), os.path.join(work, "ckpt")
    os.makedirs(input_dir)
    ext = {"json": "json", "csv": "csv", "parquet": "parquet"}[fmt]
    now = time.time()
    for k, files in enumerate(batches):
        dest = os.path.join(input_dir, f"batch-{k:06d}.{ext}")
        merge_batch(fmt, files, dest, bool(src.get("header", True)))
        t = now - 3600 + k  # strictly increasing mtimes: Spark takes files oldest first
        os.utime(dest, (t, t))

    from pyspark.sql import SparkSession, functions as F
    spark = (SparkSession.builder.master(f"local[{a.cores}]")
             .appName("weir-crosscheck")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(a.cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .config("spark.sql.streaming.numRecentProgressUpdates", "100000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df, sort_cols = build_query(spark, job, F, input_dir, fmt)
        captured = {}

        def sink(bdf, batch_id):
            captured[batch_id] = (bdf.columns, [r.asDict(recursive=True) for r in bdf.collect()])

        q = (df.writeStream.outputMode(mode).option("checkpointLocation", ckpt)
             .trigger(availableNow=True).foreachBatch(sink).start())
        q.awaitTermination()
        if q.exception() is not None:
            die(f"query failed: {q.exception()}")
        # PySpark 4 gives StreamingQueryProgress objects (a dict subclass) with the JVM's JSON in .json
        progress = [json.loads(p.json) if hasattr(type(p), "json") else p for p in q.recentProgress]
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    def key(row):
        return tuple((row.get(c) is None, row.get(c)) for c in sort_cols) + \
            (json.dumps(jsonable(row), sort_keys=True),)

    seen = set()
    for p in sorted(progress, key=lambda p: p["batchId"]):
        bid = p["batchId"]
        if bid in seen:
            continue
        seen.add(bid)
        ops = p.get("stateOperators") or []
        info = {"numInputRows": p.get("numInputRows"),
                "watermark": progress_wm((p.get("eventTime") or {}).get("watermark"))}
        if ops:
            info["numRowsDroppedByWatermark"] = ops[0].get("numRowsDroppedByWatermark")
            info["numRowsTotal"] = ops[0].get("numRowsTotal")
        print(f"batch {bid}")
        print("progress " + json.dumps(info))
        if a.verbose:
            for j, o in enumerate(ops):
                shown = {k: o.get(k) for k in ("operatorName", "numRowsTotal", "numRowsUpdated",
                                               "numRowsRemoved", "numRowsDroppedByWatermark")}
                custom = o.get("customMetrics") or {}
                if "numDroppedDuplicateRows" in custom:  # dedup's own custom metric
                    shown["numDroppedDuplicateRows"] = custom["numDroppedDuplicateRows"]
                print(f"stateOperator[{j}] " + json.dumps(shown))
        cols, rows = captured.get(bid, ([], []))
        for r in sorted(rows, key=key):
            print(json.dumps({c: jsonable(r[c]) for c in (cols or r.keys())}))
    missing = sorted(set(captured) - seen)
    for bid in missing:  # should not happen: foreachBatch ran without a progress record
        print(f"batch {bid} (no progress record)")
        cols, rows = captured[bid]
        for r in sorted(rows, key=key):
            print(json.dumps({c: jsonable(r[c]) for c in cols}))


if __name__ == "__main__":
    main()
