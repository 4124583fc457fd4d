#!/usr/bin/env python3
"""A weir join job file run in Apache Spark (local mode) as a streaming query with a Parquet file sink:
the Spark side of bench/joins.sh.

  spark_joins.py JOB.toml DATA_DIR OUT_DIR [--cores 2] [--driver-memory 4g]

Reads every streaming [[source]] from DATA_DIR/<its path> with spark.readStream (the files' own
schema, maxFilesPerTrigger = the source's max_files_per_trigger, withWatermark from its
watermark_column / watermark_delay or [watermark]) and every `static = true` source with
spark.read; the join operators become DataFrame joins with bench/spark_crosscheck.py's translation
(build_join: USING keys, key pairs, time_range as `right + from <= left <= right + to`). Output
mode append, trigger availableNow, Parquet in OUT_DIR/out, checkpoint OUT_DIR/ckpt (both emptied
first). spark.sql.shuffle.partitions = --cores, as a local run should have; every other setting
is Spark's default.

Prints one JSON line: rows_in (numInputRows summed over the micro-batches), batches (data and
no-data), dropped_late (numRowsDroppedByWatermark of the join, summed), seconds (the query, from
start() to its end), session_start_s (JVM and session start), rows_per_s (rows_in / seconds).
"""
import argparse, json, os, shutil, sys, time, tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spark_crosscheck import build_join, with_watermark  # noqa: E402


def die(msg):
    sys.exit(f"spark_joins: {msg}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--driver-memory", default="4g")
    a = ap.parse_args()
    with open(a.job, "rb") as fh:
        job = tomllib.load(fh)
    sources = job.get("source")
    if not isinstance(sources, list):
        die(f"{a.job}: expected [[source]] tables (a join job)")
    mode = job.get("sink", {}).get("output_mode", "append")

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    t0 = time.time()
    from pyspark.sql import SparkSession, functions as F
    spark = (SparkSession.builder.master(f"local[{a.cores}]")
             .appName(job.get("name", "weir-join-bench"))
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(a.cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .config("spark.driver.memory", a.driver_memory)
             .config("spark.sql.streaming.numRecentProgressUpdates", "100000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    session_start = time.time() - t0

    frames = {}
    for s in sources:
        name, fmt = s["name"], s.get("format", "json")
        path = os.path.join(a.data, s["path"])
        if s.get("static", False):
            r = spark.read.format(fmt)
            frames[name] = (r.schema(s["schema"]) if "schema" in s else r).load(path)
            continue
        r = spark.readStream.format(fmt)
        r = r.schema(s["schema"] if "schema" in s else spark.read.format(fmt).load(path).schema)
        if "max_files_per_trigger" in s:
            r = r.option("maxFilesPerTrigger", int(s["max_files_per_trigger"]))
        frames[name] = with_watermark(r.load(path), job, s)

    operators = job.get("operator", [])
    joined = {op.get("left", op.get("right")) for op in operators if op.get("kind") == "join"}
    main_ = [frames[s["name"]] for s in sources if not s.get("static", False) and s["name"] not in joined]
    if not main_:
        die("no streaming source is left for the stream")
    df = main_[0]
    for other in main_[1:]:
        df = df.union(other)
    for i, op in enumerate(operators):
        if op.get("kind") != "join":
            die(f"operator {i}: only joins are translated here (kind {op.get('kind')!r})")
        other = op.get("right", op.get("left"))
        df = build_join(F, i, op, df, frames[other])

    out, ckpt = os.path.join(a.out, "out"), os.path.join(a.out, "ckpt")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(ckpt, ignore_errors=True)
    tq = time.time()
    q = (df.writeStream.outputMode(mode).option("checkpointLocation", ckpt).trigger(availableNow=True)
         .format("parquet").option("path", out).start())
    q.awaitTermination()
    secs = time.time() - tq
    if q.exception() is not None:
        die(f"the query failed: {q.exception()}")
    progress = {}
    for p in q.recentProgress:
        p = json.loads(p.json) if hasattr(type(p), "json") else p
        progress[p["batchId"]] = p
    rows_in = sum(p.get("numInputRows", 0) for p in progress.values())
    dropped = sum(o.get("numRowsDroppedByWatermark", 0) for p in progress.values()
                  for o in p.get("stateOperators") or [] if o.get("operatorName") == "symmetricHashJoin")
    print(json.dumps({"job": job.get("name"), "cores": a.cores, "rows_in": rows_in, "batches": len(progress),
                      "dropped_late": dropped, "seconds": round(secs, 2),
                      "session_start_s": round(session_start, 2),
                      "rows_per_s": round(rows_in / secs) if secs else None}), flush=True)
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
