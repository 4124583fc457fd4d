#!/usr/bin/env python3
"""Sessionization in Apache Spark (local mode) with applyInPandasWithState: the Spark twin of
plugins/sessionize (Rust) and plugins/sessionize-py, for bench/stateful.sh.

  spark_sessionize.py INPUT OUT [--format json|parquet] [--csv result.csv] [--cores 2] [--gap-minutes 30]

Reads INPUT (bench/gen_events.py's events) with a declared schema and maxFilesPerTrigger 1000,
watermark event_time 10 minutes, groups by user_id, and per group keeps the open session
(start, last, events, total) in state with GroupStateTimeout.EventTimeTimeout; output mode append,
trigger availableNow, Parquet files in OUT. Per call:
- timed out: write (start, last + gap, events, total) and remove the state;
- otherwise the group's rows ordered by event_time (stable: ties keep arrival order); for each
  event t (a null amount counts 0.0): when a session is open and t > last + gap, write it and open
  {t, t, 1, amount}; when one is open, extend it (start = min, last = max, events + 1,
  total + amount); else open {t, t, 1, amount}. Then store it, timeout at last + gap (in ms).
Times are kept in microseconds, as weir does. Spark drops rows at or before the watermark before
the function sees them (event-time timeout with a watermark).

Prints one JSON line: job, format, cores, rows_in, rows_out, seconds (the query only),
session_start_s, rows_per_s. --csv writes the output sorted (user_id, session_start, ...).
"""
import argparse, json, os, shutil, sys, tempfile, time

OUTPUT_SCHEMA = "user_id string, session_start timestamp, session_end timestamp, events long, total double"
STATE_SCHEMA = "start long, last long, events long, total double"


def make_update(gap_us):
    import numpy as np
    import pandas as pd

    def frame(user, starts, ends, events, totals):
        return pd.DataFrame({
            "user_id": [user] * len(starts),
            "session_start": pd.to_datetime(np.array(starts, dtype="int64"), unit="us"),
            "session_end": pd.to_datetime(np.array(ends, dtype="int64"), unit="us"),
            "events": np.array(events, dtype="int64"),
            "total": np.array(totals, dtype="float64"),
        })

    def update(key, pdfs, state):
        user = key[0]
        if state.hasTimedOut:
            start, last, events, total = state.get
            state.remove()
            yield frame(user, [start], [last + gap_us], [events], [total])
            return
        pdf = pd.concat(list(pdfs), ignore_index=True)
        times = pdf["event_time"]
        if times.isna().any():
            raise ValueError(f"user {user}: a row has a null event_time")
        ts = times.to_numpy(dtype="datetime64[us]").astype("int64")
        amounts = pdf["amount"].fillna(0.0).to_numpy(dtype="float64")
        order = np.argsort(ts, kind="stable")  # ties keep arrival order
        ts, amounts = ts[order].tolist(), amounts[order].tolist()
        starts, ends, counts, totals = [], [], [], []
        if state.exists:
            start, last, events, total = state.get
            is_open = True
        else:
            start = last = events = 0
            total = 0.0
            is_open = False
        for t, a in zip(ts, amounts):
            if is_open:
                if t > last + gap_us:
                    starts.append(start); ends.append(last + gap_us); counts.append(events); totals.append(total)
                    start, last, events, total = t, t, 1, a
                else:
                    if t < start:
                        start = t
                    if t > last:
                        last = t
                    events += 1
                    total += a
            else:
                start, last, events, total = t, t, 1, a
                is_open = True
        state.update((start, last, events, total))
        state.setTimeoutTimestamp((last + gap_us) // 1000)  # ms; fires once the watermark passes it
        if starts:
            yield frame(user, starts, ends, counts, totals)

    return update


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--format", default="json", choices=["json", "parquet"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--gap-minutes", type=int, default=30)
    ap.add_argument("--csv")
    a = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this interpreter's pandas
    t0 = time.time()
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming.state import GroupStateTimeout
    spark = (SparkSession.builder.master(f"local[{a.cores}]")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(a.cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .config("spark.driver.memory", "4g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    session_start = time.time() - t0

    schema = "event_id string, user_id string, event_time timestamp, amount double, category string"
    src = spark.readStream.format(a.format).schema(schema).option("maxFilesPerTrigger", 1000).load(a.input)
    res = (src.withWatermark("event_time", "10 minutes")
           .groupBy("user_id")
           .applyInPandasWithState(make_update(a.gap_minutes * 60_000_000), OUTPUT_SCHEMA, STATE_SCHEMA,
                                   "append", GroupStateTimeout.EventTimeTimeout))

    shutil.rmtree(a.out, ignore_errors=True)
    ckpt = tempfile.mkdtemp(prefix="spark-ckpt-")
    q = (res.writeStream.option("checkpointLocation", ckpt).trigger(availableNow=True).outputMode("append")
         .format("parquet").option("path", a.out).start())
    tq = time.time()
    q.awaitTermination()
    secs = time.time() - tq
    if q.exception() is not None:
        sys.exit(f"spark_sessionize: the query failed: {q.exception()}")
    rows_in = sum(p["numInputRows"] for p in q.recentProgress)
    out = spark.read.schema(OUTPUT_SCHEMA).parquet(a.out)
    rows_out = out.count()
    if a.csv:
        out.orderBy(*out.columns).toPandas().to_csv(a.csv, index=False)
    print(json.dumps({"job": "sessionize", "format": a.format, "cores": a.cores, "rows_in": rows_in,
                      "rows_out": rows_out, "seconds": round(secs, 2),
                      "session_start_s": round(session_start, 2),
                      "rows_per_s": round(rows_in / secs) if secs else None}))
    spark.stop()
    shutil.rmtree(ckpt, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
