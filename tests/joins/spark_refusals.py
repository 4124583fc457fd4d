#!/usr/bin/env python3
"""Captures Spark's exact refusal messages for the joins weir must refuse before start, and
writes them with the PySpark snippet that produced each to tests/joins/spark_refusals.txt.

  /work/main/.spark-venv/bin/python tests/joins/spark_refusals.py [OUT]

Every snippet builds the query on file sources (empty directories, explicit schemas) and calls
writeStream...start(); Spark's UnsupportedOperationChecker raises an AnalysisException there,
before any batch runs. A snippet that Spark accepts is reported as ACCEPTED (not a refusal).
Some windowed-join cases are accepted by start() and fail only when their first batch is planned;
those get one row per source and run (see ROWS below), and what the batch raised is shown.
"""
import os, re, shutil, sys, tempfile

os.environ["TZ"] = "UTC"
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
from pyspark.sql import SparkSession, functions as F  # noqa: E402
from pyspark.errors import AnalysisException, StreamingQueryException  # noqa: E402

# Each case: (title, snippet). A snippet sees spark, F, clicks, impressions, events, users, sink
# and ends in an expression that starts the query.
PRELUDE = """\
clicks = (spark.readStream.schema("ad_id string, click_time timestamp")
          .json(f"{d}/clicks"))
impressions = (spark.readStream.schema("ad_id string, impression_time timestamp")
               .json(f"{d}/impressions"))
events = (spark.readStream.schema("user_id string, amount double, event_time timestamp")
          .json(f"{d}/events"))
users = spark.read.schema("user_id string, country string").json(f"{d}/users")
wc = clicks.withWatermark("click_time", "10 minutes")
wi = impressions.withWatermark("impression_time", "10 minutes")
in_range = F.expr("impression_time + INTERVAL 0 seconds <= click_time AND "
                  "click_time <= impression_time + INTERVAL 1 hour")
def start(df, mode="append"):
    return (df.writeStream.outputMode(mode).option("checkpointLocation", f"{d}/ckpt")
            .foreachBatch(lambda b, i: None).start())
"""

CASES = [
    ("stream-stream left_anti (watermarks and range condition)",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="left_anti"))'),
    ("stream-stream left_anti without watermarks (USING key)",
     'start(clicks.join(impressions, on=["ad_id"], how="left_anti"))'),
    ("stream-stream left_outer without watermarks or range condition",
     'start(clicks.join(impressions, on=["ad_id"], how="left_outer"))'),
    ("stream-stream left_outer with watermarks but without a range condition",
     'start(wc.join(wi, on=["ad_id"], how="left_outer"))'),
    ("stream-stream right_outer without watermarks or range condition",
     'start(clicks.join(impressions, on=["ad_id"], how="right_outer"))'),
    ("stream-stream full_outer without watermarks or range condition",
     'start(clicks.join(impressions, on=["ad_id"], how="full_outer"))'),
    ("stream-stream full_outer with watermarks but without a range condition",
     'start(wc.join(wi, on=["ad_id"], how="full_outer"))'),
    ("stream-stream left_semi without watermarks or range condition",
     'start(clicks.join(impressions, on=["ad_id"], how="left_semi"))'),
    ("stream-stream left_outer with a range condition but no watermark on the right (nullable) side",
     'start(wc.alias("c").join(impressions.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="left_outer"))'),
    ("stream-stream inner join (watermarks and range condition) in update mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="inner"), "update")'),
    ("stream-stream inner join (watermarks and range condition) in complete mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="inner"), "complete")'),
    ("stream-stream left_outer join (watermarks and range condition) in update mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="left_outer"), "update")'),
    ("stream-stream right_outer join (watermarks and range condition) in update mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="right_outer"), "update")'),
    ("stream-stream full_outer join (watermarks and range condition) in update mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="full_outer"), "update")'),
    ("stream-stream left_semi join (watermarks and range condition) in update mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="left_semi"), "update")'),
    ("stream-stream left_outer join (watermarks and range condition) in complete mode",
     'start(wc.alias("c").join(wi.alias("i"), on=(F.col("c.ad_id") == F.col("i.ad_id")) & in_range, how="left_outer"), "complete")'),
    ("stream-stream inner join without watermarks in update mode",
     'start(clicks.join(impressions, on=["ad_id"], how="inner"), "update")'),
    ("stream-static full_outer, stream on the left",
     'start(events.join(users, on=["user_id"], how="full_outer"))'),
    ("stream-static full_outer, stream on the right",
     'start(users.join(events, on=["user_id"], how="full_outer"))'),
    ("stream-static left_outer, stream on the right",
     'start(users.join(events, on=["user_id"], how="left_outer"))'),
    ("stream-static right_outer, stream on the left",
     'start(events.join(users, on=["user_id"], how="right_outer"))'),
    ("stream-static left_semi, stream on the right",
     'start(users.join(events, on=["user_id"], how="left_semi"))'),
    ("stream-static left_anti, stream on the right",
     'start(users.join(events, on=["user_id"], how="left_anti"))'),
    ("stream-static inner join in update mode",
     'start(events.join(users, on=["user_id"], how="inner"), "update")'),
    ("stream-stream left_outer on ad_id and a 10-minute window, no watermark on either side",
     'start(clicks.withColumn("window", F.window("click_time", "10 minutes")).join(impressions.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))'),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermark on the left (clicks) only",
     'start(wc.withColumn("window", F.window("click_time", "10 minutes")).join(impressions.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))'),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermark on the right (impressions, nullable side) only",
     'start(clicks.withColumn("window", F.window("click_time", "10 minutes")).join(wi.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))'),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermarks on both sides, "
     "one row per source (the first batch runs)",
     'start(wc.withColumn("window", F.window("click_time", "10 minutes")).join(wi.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))',
     True),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermark on the left only, "
     "one row per source (the first batch runs)",
     'start(wc.withColumn("window", F.window("click_time", "10 minutes")).join(impressions.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))',
     True),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermarks on both sides, the "
     "time columns re-aliased without their watermark mark after the window is derived "
     "(bench/spark_crosscheck.py's translation), one row per source (the first batch runs)",
     'start(wc.withColumn("window", F.window("click_time", "10 minutes")).withColumn("click_time", F.col("click_time").alias("click_time", metadata={})).join(wi.withColumn("window", F.window("impression_time", "10 minutes")).withColumn("impression_time", F.col("impression_time").alias("impression_time", metadata={})), on=["ad_id", "window"], how="left_outer"))',
     True),
    ("stream-stream left_outer on ad_id and a 10-minute window, watermark on the left (clicks) only, "
     "its time column re-aliased without the watermark mark after the window is derived, "
     "one row per source (the first batch runs)",
     'start(wc.withColumn("window", F.window("click_time", "10 minutes")).withColumn("click_time", F.col("click_time").alias("click_time", metadata={})).join(impressions.withColumn("window", F.window("impression_time", "10 minutes")), on=["ad_id", "window"], how="left_outer"))',
     True),
]

# A case with a third element True also gets one row in clicks/ and impressions/ before start(),
# and then runs its available batches (processAllAvailable): what a query that start() accepts
# raises when its first batch is planned.
# Its start() collects each batch (a foreachBatch that reads nothing leaves the join's state
# stores uncommitted, which Spark 4.3 fails as STATE_STORE_COMMIT_VALIDATION_FAILED).
RUN_START = """\
def start(df, mode="append"):
    return (df.writeStream.outputMode(mode).option("checkpointLocation", f"{d}/ckpt")
            .foreachBatch(lambda b, i: b.collect()).start())
"""
ROWS = {"clicks": '{"ad_id":"a1","click_time":"2026-01-01T00:02:00Z"}\n',
        "impressions": '{"ad_id":"a1","impression_time":"2026-01-01T00:05:00Z"}\n'}


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "spark_refusals.txt")
    spark = (SparkSession.builder.master("local[1]").appName("weir-join-refusals")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    lines = [f"# Spark {spark.version}: refusals of stream joins, written by tests/joins/spark_refusals.py",
             "# Each case: the PySpark snippet (after the prelude below), then what start() raised:",
             "# the error class (getCondition()) and the message exactly: str(exception) up to the ';' after",
             "# which Spark appends the logical plan (shown below it, temp directory as <d>, UUIDs as <uuid>).", "",
             "## prelude (d is an empty temporary directory)", "```python", PRELUDE.rstrip(), "```", ""]
    try:
        for title, snippet, *run in CASES:
            run = bool(run and run[0])
            d = tempfile.mkdtemp(prefix="weir-refusal-")
            for sub in ("clicks", "impressions", "events", "users"):
                os.makedirs(os.path.join(d, sub))
            if run:
                for sub, text in ROWS.items():
                    with open(os.path.join(d, sub, "rows.json"), "w") as f:
                        f.write(text)
            env = {"spark": spark, "F": F, "d": d}
            exec(PRELUDE, env)
            if run:
                exec(RUN_START, env)
            lines += [f"## {title}", "```python", snippet, "```"]
            if run:
                lines.append("(with one row in clicks/ and impressions/, start() collecting each batch, "
                             "then processAllAvailable())")
            try:
                q = eval(snippet, env)
                failed = None
                if run:
                    try:
                        q.processAllAvailable()
                    except StreamingQueryException as e:
                        failed = e
                q.stop()
                lines += ["ACCEPTED (Spark started the query)"]
                if failed is not None:
                    cond = failed.getCondition() if hasattr(failed, "getCondition") else failed.getErrorClass()
                    msg = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>",
                                 str(failed).replace(d, "<d>")).split("\n")[0].rstrip()
                    lines += ["then the first batch failed:", f"error class: {cond}", "message:", msg]
                elif run:
                    lines += ["and ran its batches without error"]
                lines.append("")
            except AnalysisException as e:
                cond = e.getCondition() if hasattr(e, "getCondition") else e.getErrorClass()
                msg, _, plan = str(e).partition(";\n")
                plan = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>",
                              plan.replace(d, "<d>")).rstrip()
                lines += [f"error class: {cond}", "message:", msg]
                if plan:
                    lines += ["(then ';' and the logical plan:)", plan]
                lines.append("")
            print(f"{title}: done", file=sys.stderr)
            shutil.rmtree(d, ignore_errors=True)
    finally:
        spark.stop()
    with open(out_path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
