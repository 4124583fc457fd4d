#!/usr/bin/env python3
"""End-to-end latency per record in Apache Spark (PySpark, local mode): the rate pipeline of
host/benches/latency.rs, so weir's figures can be given as ratios measured on the same machine.

  .spark-venv/bin/python bench/spark_latency.py        (or bench/spark_latency.sh)

Pipeline: Spark's `rate` source (rowsPerSecond = R, numPartitions = PARTITIONS) -> a projection
(timestamp, value, lit("v1") AS version: the shape of weir's tagger output) -> console sink
(truncate false, numRows large enough to print every row of a batch), with
trigger(processingTime="0 seconds") and trigger(continuous="1 second").

For each (trigger, rate) the query runs in a child process (this script with --child), so the
JVM's start is outside the measurement. This process reads the child's stdout line by line, stamps
each printed row when its line is read, and takes latency = stamp - the row's `timestamp` column
(the time the rate source made the row due; printed in UTC: spark.sql.session.timeZone = UTC).
Rows due in the first WARMUP seconds after the first printed row's timestamp are not counted; the
next MEASURE seconds are. "records measured / sent" compares the rows that came back with R x
MEASURE. If Spark falls behind, the measurement stops GRACE seconds after the window's end (wall
clock): rows not printed by then are missing from the count, and the last column says how far
behind the last printed row was.

Where Spark's rate source makes rows available (Spark's own code, RateStreamMicroBatchStream and
RateStreamContinuousStream):
  - micro-batch: latestOffset() is the number of whole seconds since the query started, so the
    rows of second s (timestamps spread over that second) become readable only when second s ends;
    the last column gives also the latency from that moment ("since readable").
  - continuous: each partition's reader sleeps until a row is due and stamps it with that time;
    the console sink prints an epoch's rows when the epoch commits (the driver prints what the
    writers sent at commit), so that is when they are visible.

Settings (environment): RATES (default "1000,10000,100000"), TRIGGERS (default
"processing_time=0 seconds;continuous=1 second"), WARMUP (s, default 15), MEASURE (s, default 15),
GRACE (s, default 10), PARTITIONS (rate source numPartitions, default 2; continuous: at least
rate / 1000, see partitions()), SPARK_CORES (local[N], default 2; continuous: at least the
partitions), SPARK_MEMORY (spark.driver.memory, default 2g), SPARK_STDERR (a file for the
children's stderr; default discarded).
"""
import calendar
import os
import signal
import subprocess
import sys
import threading
import time


def child(rate, trigger, partitions, cores, memory):
    """Run the query; its console sink prints to this process's stdout (the JVM's)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession, functions as F

    spark = (SparkSession.builder.master(f"local[{cores}]")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", str(cores))
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", memory)
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    src = (spark.readStream.format("rate")
           .option("rowsPerSecond", rate).option("numPartitions", partitions).load())
    out = src.select("timestamp", "value", F.lit("v1").alias("version"))
    kind, _, arg = trigger.partition("=")
    w = (out.writeStream.format("console").option("truncate", "false")
         .option("numRows", 100_000_000).outputMode("append"))
    w = w.trigger(processingTime=arg) if kind == "processing_time" else w.trigger(continuous=arg)
    print("STARTED", flush=True)
    w.start().awaitTermination()


_minute_cache = {}


def row_micros(line):
    """A console row's first cell (`2026-11-27 20:00:00.123`, trailing zeros of the fraction
    dropped, UTC) as µs since the epoch; None for any other line."""
    if not line.startswith("|2"):
        return None
    cell = line[1:line.index("|", 1)].strip()
    if len(cell) < 19 or cell[4] != "-" or cell[13] != ":":
        return None
    head = cell[:16]  # YYYY-MM-DD HH:MM
    base = _minute_cache.get(head)
    if base is None:
        base = calendar.timegm(time.strptime(head, "%Y-%m-%d %H:%M")) * 1_000_000
        _minute_cache[head] = base
    sec = cell[17:19]
    frac = cell[20:] if len(cell) > 20 else ""
    return base + int(sec) * 1_000_000 + (int(frac.ljust(6, "0")[:6]) if frac else 0)


def row_value(line):
    return int(line.split("|")[2])


def stop(p):
    """Kill the child's process group (the Python driver and its JVM), started by measure()."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def partitions(rate, trigger, set_):
    """The rate source's numPartitions and local[N] for a row. Continuous: Spark's reader paces a
    partition with readTimeIncrement = (long) (1000.0 / rows per partition per second) ms, which is
    0 (no pacing: rows as fast as the CPU makes them, all stamped alike, until the heap is full)
    above 1000 rows/s per partition; so at least rate / 1000 partitions, each needing its own task
    slot for the whole query (local[N] with N >= partitions)."""
    parts = set_["partitions"]
    if trigger.startswith("continuous"):
        parts = max(parts, -(-rate // 1000))
        return parts, max(set_["cores"], parts)
    return parts, set_["cores"]


def q(xs, p):
    n = len(xs)
    i = min(max(int(-(-p * n // 1)), 1), n) - 1  # ceil(p*n), as latency.rs
    return xs[i] / 1000.0


def measure(rate, trigger, set_):
    warmup, meas, grace = set_["warmup"] * 1_000_000, set_["measure"] * 1_000_000, set_["grace"]
    err = open(set_["stderr"], "ab") if set_["stderr"] else subprocess.DEVNULL
    parts, cores = partitions(rate, trigger, set_)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(rate), trigger,
           str(parts), str(cores), set_["memory"]]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, bufsize=1 << 20,
                         start_new_session=True)  # its own group: the JVM is stopped with it
    lat, readable, first, earliest, last = [], [], None, None, None
    batches, batch_ids, creation = 0, set(), None
    state = {"deadline": None, "timed_out": False}

    def watchdog():
        # stop reading if Spark falls behind: GRACE s after the window's end, or 120 s in all
        start = time.time()
        while p.poll() is None:
            d = state["deadline"]
            if (d is not None and time.time() > d) or time.time() - start > 120 + warmup / 1e6 + meas / 1e6:
                state["timed_out"] = True
                stop(p)
                return
            time.sleep(0.2)

    threading.Thread(target=watchdog, daemon=True).start()
    cur_batch, past_end = None, False
    for raw in p.stdout:
        now = time.time_ns() // 1000
        line = raw.decode("utf-8", "replace")
        if line.startswith("Batch: "):
            if past_end:  # a batch / epoch printed after one with rows past the window
                break
            cur_batch = line[7:].strip()
            continue
        ts = row_micros(line)
        if ts is None:
            continue
        if first is None:
            first = ts
            state["deadline"] = (first + warmup + meas) / 1e6 + grace
        if ts >= first + warmup + meas:
            # a batch (an epoch: each partition's rows in turn) is not printed in timestamp
            # order: rows of the window may still follow in this one
            past_end = True
            continue
        if ts >= first + warmup:
            lat.append(now - ts)
            if earliest is None or ts < earliest[1]:
                earliest = (now, ts)
            if last is None or ts > last[1]:
                last = (now, ts)
            batch_ids.add(cur_batch)
            if trigger.startswith("processing_time"):
                v = row_value(line)
                # RateStreamMicroBatchStream: value v is in second v // R (no ramp-up); that
                # second's rows are readable when it ends: creation + (v // R + 1) s
                if creation is None:
                    creation = ts - (v // rate) * 1_000_000 - round((v % rate) * 1000 / rate) * 1000
                readable.append(now - (creation + (v // rate + 1) * 1_000_000))
    stop(p)
    p.wait()
    if err is not subprocess.DEVNULL:
        err.close()
    expected = rate * set_["measure"]
    note = f"{len(batch_ids)} batches/epochs printed"
    if readable:
        readable.sort()
        note += f"; since readable p50 {q(readable, 0.5):.1f} p99 {q(readable, 0.99):.1f}"
    if last:
        note += (f"; latency of the window's first row {(earliest[0] - earliest[1]) / 1e3:.0f} ms, "
                 f"of its last {(last[0] - last[1]) / 1e3:.0f} ms")
    if state["timed_out"]:
        note += f"; stopped {grace} s after the window's end (wall clock): Spark fell behind"
    if not lat:
        return dict(count=0, expected=expected, note=note or "no rows printed")
    lat.sort()
    return dict(count=len(lat), expected=expected, p50=q(lat, 0.5), p99=q(lat, 0.99),
                p999=q(lat, 0.999), max=lat[-1] / 1000.0, note=note)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
        return
    env = os.environ.get
    set_ = dict(warmup=int(env("WARMUP", "15")), measure=int(env("MEASURE", "15")),
                grace=int(env("GRACE", "10")), partitions=int(env("PARTITIONS", "2")),
                cores=int(env("SPARK_CORES", "2")), memory=env("SPARK_MEMORY", "2g"),
                stderr=env("SPARK_STDERR", ""))
    rates = [int(r) for r in env("RATES", "1000,10000,100000").split(",")]
    triggers = [t.strip() for t in env("TRIGGERS", "processing_time=0 seconds;continuous=1 second").split(";")]
    print(f"## Apache Spark (PySpark {spark_version()}): end-to-end latency per record (ms), one run each; warm-up "
          f"{set_['warmup']} s not counted, then {set_['measure']} s measured")
    print()
    print("| pipeline | trigger | records/s | visible when | records measured / sent | p50 | p99 | p99.9 | max | Spark's batches in the window |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    for trigger in triggers:
        kind, _, arg = trigger.partition("=")
        shown = f'{kind} = "{arg}"'
        for rate in rates:
            r = measure(rate, trigger, set_)
            parts, cores = partitions(rate, trigger, set_)
            head = (f"| Spark: rate ({parts} partitions, local[{cores}]) → select → console | {shown} | "
                    f"{rate} | printed |")
            if r["count"] == 0:
                print(f"{head} n/a | | | | | {r['note']} |", flush=True)
            else:
                print(f"{head} {r['count']} / {r['expected']} | {r['p50']:.1f} | {r['p99']:.1f} | "
                      f"{r['p999']:.1f} | {r['max']:.1f} | {r['note']} |", flush=True)


def spark_version():
    try:
        import pyspark
        return pyspark.__version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    main()
