#!/usr/bin/env python3
"""Run a weir job file's query in real Apache Spark, one micro-batch per input directory, and print
what Spark outputs per batch: a dev tool to check hand-worked expected outputs against Spark.

  .spark-venv/bin/python bench/spark_crosscheck.py JOB.toml BATCHES_DIR [--cores 1] [--verbose]

One source (`[source]`): BATCHES_DIR holds subdirectories 0/, 1/, 2/, ... each with input files
(json lines, csv or parquet, as the job's [source] format says; names starting with '.' or '_' are
skipped).

Several sources (`[[source]]`, each with a `name`): BATCHES_DIR/<name>/ per source.
  - a streaming source reads BATCHES_DIR/<name>/0/, 1/, ...; batch k of EVERY streaming source is
    Spark micro-batch k (lock-step). A source with no rows in batch k needs an empty file there
    (e.g. <name>/k/empty.json, 0 bytes: git keeps no empty directory); a source with fewer batch
    directories than another simply adds nothing to the later batches.
  - a `static = true` source is a table: every file directly in BATCHES_DIR/<name>/, read once with
    spark.read (format and schema of the job), as Spark reads a static DataFrame.
  Streaming sources not named by a join (`left =` / `right =`) are unioned into "the stream so
  far"; each streaming source gets withWatermark(watermark_column, watermark_delay) from its own
  keys, else from [watermark] (column, delay); `multiple_watermark_policy` is Spark's
  spark.sql.streaming.multipleWatermarkPolicy. Each progress line then also holds "sources":
  numInputRows per source (Spark counts the rows its file scan returns: after the filters it pushes
  into the scan, e.g. the `user_id IS NOT NULL` an inner join infers, so rows with a null key are
  not counted there). The run checks in Spark's checkpoint (the file sources' logs, which name the
  files of each micro-batch) that batch k of every source was read in micro-batch k, and fails
  otherwise.

The files of one source's batch k are merged into one file, and the query runs with
maxFilesPerTrigger=1 and trigger(availableNow=True), so batch k is exactly one Spark data
micro-batch, in order; Spark's no-data batches (run when the watermark moves, only after the last
data batch since data is always available before) are shown too. The job's source paths and the
[sink] (format, path, checkpoint, trigger) are ignored: output is captured with foreachBatch.

Prints, for every Spark micro-batch:
  batch <id>
  progress {"numInputRows": ..., "watermark": ..., "numRowsDroppedByWatermark": ..., "numRowsTotal": ...}
  <one JSON object per output row, sorted>
Timestamps are UTC, 'YYYY-MM-DD HH:MM:SS[.ffffff]'. The stateOperators figures are those of the
first stateful operator in Spark's plan, top down (stateOperators[0]: after a join and an
aggregation, the aggregation's); --verbose prints every operator's progress (a symmetricHashJoin
with all its customMetrics).

Operators translated: aggregate (groupBy/window/session_window + agg), dedup (dropDuplicates, or
dropDuplicatesWithinWatermark with within_watermark = true) and join (below); a map plugin has no
translation. Aggregate output is sorted by window_start, window_end, group columns; join output by
its columns in order (nulls last); other rows (dedup output) by their JSON text.

A join (`[[operator]] kind = "join"`, syntax of tests/joins/README.md) becomes
left.join(right, on=[...], how=type) for USING keys (`on = ["k"]`, Spark's own output columns),
and otherwise a join on a condition: the key pairs (`on = [{ left = "a", right = "b" }]`, all left
columns then all right columns) and `time_range = { left, right, from, to }` as
`right + INTERVAL from <= left AND left <= right + INTERVAL to`; USING keys with a time_range give
the USING output columns (left key; right key for right_outer; coalesce for full_outer).
`left_prefix` / `right_prefix` rename every column of that side except USING keys before the
join; key pairs and time_range name the columns as the sources have them (before prefixes).
`window = { left, right, size }` (USING keys only) adds `window` = window(<time column>, size) to
each side after its watermark and joins on the USING keys plus "window" (Spark's USING output:
keys, window, left others, right others); the time columns lose their watermark mark (see
build_join), and the printed rows show the window struct as window_start, window_end at its
position. No operator after such a join is translated.
"""
import argparse, datetime as dt, json, os, shutil, sys, tempfile, time, tomllib

JOIN_TYPES = ("inner", "left_outer", "right_outer", "full_outer", "left_semi", "left_anti")


def die(msg):
    sys.exit(f"spark_crosscheck: {msg}")


def batch_dirs(root, allow_empty=False):
    """The input files of each batch directory root/0, root/1, ... in order."""
    if not os.path.isdir(root):
        die(f"{root}: no such directory (expected batch subdirectories 0/, 1/, ...)")
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
            hint = (" (for a batch without rows of this source, put an empty file there, e.g. "
                    f"{d}/empty.json)") if allow_empty else ""
            die(f"{d}: no input files (an empty directory would not be a Spark batch){hint}")
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


def count_rows(fmt, path, csv_header):
    """Rows of one merged batch file, as Spark should count them (the lock-step check)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return pq.ParquetFile(path).metadata.num_rows
    lines = [ln for ln in open(path).read().splitlines() if ln.strip()]
    return len(lines) - (1 if fmt == "csv" and csv_header and lines else 0)


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


class Source:
    """One input of the job: its spec, and where its (merged) files are for Spark."""

    def __init__(self, name, spec):
        self.name, self.spec = name, spec
        self.fmt = spec.get("format", "json")
        self.static = bool(spec.get("static", False))
        self.header = bool(spec.get("header", True))
        if self.fmt not in ("json", "csv", "parquet"):
            die(f"source {name!r}: format {self.fmt!r}: only json, csv, parquet are translated")
        if "schema" not in spec and self.fmt != "parquet":
            die(f"source {name!r}: schema is required for json and csv")
        self.spark_dir = None    # the directory Spark reads
        self.batch_rows = []     # rows of batch k (streaming sources)

    def reader(self, r):
        r = r.format(self.fmt)
        if "schema" in self.spec:
            r = r.schema(self.spec["schema"])
        if self.fmt == "csv":
            r = r.option("header", str(self.header).lower()).option("sep", self.spec.get("delimiter", ","))
        return r


def stage_inputs(sources, batches_root, work, legacy):
    """Copies each source's input into `work`: batch k of a stream as its k-th file (oldest mtime
    first, one file per trigger), a static table as its files."""
    now = time.time()
    for s in sources:
        s.spark_dir = os.path.join(work, "in", s.name)
        os.makedirs(s.spark_dir)
        src_dir = batches_root if legacy else os.path.join(batches_root, s.name)
        if s.static:
            if not os.path.isdir(src_dir):
                die(f"static source {s.name!r}: no table directory {src_dir}")
            files = sorted(f for f in os.listdir(src_dir)
                           if not f.startswith((".", "_")) and os.path.isfile(os.path.join(src_dir, f)))
            if not files:
                die(f"static source {s.name!r}: no files in {src_dir}")
            for f in files:
                shutil.copy(os.path.join(src_dir, f), os.path.join(s.spark_dir, f))
            continue
        for k, files in enumerate(batch_dirs(src_dir, allow_empty=not legacy)):
            dest = os.path.join(s.spark_dir, f"batch-{k:06d}.{s.fmt}")
            merge_batch(s.fmt, files, dest, s.header)
            t = now - 3600 + k  # strictly increasing mtimes: Spark takes files oldest first
            os.utime(dest, (t, t))
            s.batch_rows.append(count_rows(s.fmt, dest, s.header))


def with_watermark(df, job, spec):
    default = job.get("watermark") or {}
    column = spec.get("watermark_column", default.get("column"))
    delay = spec.get("watermark_delay", default.get("delay"))
    if column is None and delay is None:
        return df
    if column is None or delay is None:
        die(f"source {spec.get('name')!r}: a watermark needs a column and a delay "
            "(watermark_column / watermark_delay, or [watermark] column / delay)")
    return df.withWatermark(column, delay)


def interval(text, where):
    t = str(text).strip()
    if not t or "'" in t or ";" in t:
        die(f"{where}: {text!r} is not an interval like \"10 minutes\"")
    return f"INTERVAL {t}"


def build_join(F, i, op, stream, other):
    """`stream JOIN other` (or `other JOIN stream` with `left =`) as the job's join operator says."""
    if ("left" in op) == ("right" in op):
        die(f"operator {i}: a join names its other input with exactly one of `left =` / `right =`")
    left, right = (stream, other) if "right" in op else (other, stream)
    how = op.get("type", "inner")
    if how not in JOIN_TYPES:
        die(f"operator {i}: join type {how!r}; allowed: {', '.join(JOIN_TYPES)}")
    on = op.get("on") or []
    using = [k for k in on if isinstance(k, str)]
    pairs = [(k["left"], k["right"]) for k in on if isinstance(k, dict)]
    if not on or (using and pairs):
        die(f"operator {i}: `on` is a list of USING column names or of {{ left, right }} pairs, not both")
    win = op.get("window")
    if win is not None:
        # Both sides windowed on the same tumbling window, joined on it as one more USING key
        # (Spark: df.withColumn("window", window(time, size)) on each side, then USING [..., "window"]).
        # withColumn comes after withWatermark (the sources' frames carry it), so the window column
        # inherits the time column's watermark mark and is a watermarked join key: Spark evicts
        # both sides' state by `window.end <= watermark` and accepts outer joins. Spark 4.3 then
        # fails the first batch with MULTIPLE_EVENT_TIME_COLUMNS (time column and window both
        # marked on one side), unless spark.sql.streaming.statefulOperator.allowMultiple=false
        # (which also judges late rows by the current batch's watermark). So the time column is
        # re-aliased without the mark (values unchanged; the source's watermark is still computed
        # from it below): the window is each side's one event-time column, and a row is late when
        # its window's end <= the previous batch's watermark (tests/joins/README.md).
        if pairs:
            die(f"operator {i}: a join `window` goes with USING keys (`on = [\"k\", ...]`), not key pairs")
        if not isinstance(win, dict) or set(win) != {"left", "right", "size"}:
            die(f"operator {i}: window = {{ left = <left time column>, right = <right time column>, "
                f"size = \"10 minutes\" }}, got {win!r}")
        for side, df, col in (("left", left, win["left"]), ("right", right, win["right"])):
            if col not in df.columns:
                die(f"operator {i}: window.{side} = {col!r} is not a column of the {side} input "
                    f"({', '.join(df.columns)})")
            if "window" in df.columns:
                die(f"operator {i}: the {side} input already has a column named 'window'")
        left = left.withColumn("window", F.window(win["left"], win["size"]))
        right = right.withColumn("window", F.window(win["right"], win["size"]))
        left = left.withColumn(win["left"], F.col(win["left"]).alias(win["left"], metadata={}))
        right = right.withColumn(win["right"], F.col(win["right"]).alias(win["right"], metadata={}))
        using = using + ["window"]
    lp, rp = op.get("left_prefix", ""), op.get("right_prefix", "")

    def prefixed(df, p):
        return df.withColumnsRenamed({c: p + c for c in df.columns if c not in using}) if p else df

    def lname(c):
        return c if c in using else lp + c

    def rname(c):
        return c if c in using else rp + c

    left, right = prefixed(left, lp), prefixed(right, rp)
    tr = op.get("time_range")
    if using and tr is None:
        out = left.join(right, on=using, how=how)  # Spark's own USING join
    else:
        lcols, rcols = list(left.columns), list(right.columns)
        L, R = left.alias("_l"), right.alias("_r")
        cond = [F.col(f"_l.`{k}`") == F.col(f"_r.`{k}`") for k in using]
        cond += [F.col(f"_l.`{lname(a)}`") == F.col(f"_r.`{rname(b)}`") for a, b in pairs]
        if tr is not None:
            tl, trr = lname(tr["left"]), rname(tr["right"])
            lo = interval(tr.get("from"), f"operator {i}: time_range.from")
            hi = interval(tr.get("to"), f"operator {i}: time_range.to")
            cond.append(F.expr(f"_r.`{trr}` + {lo} <= _l.`{tl}`"))
            cond.append(F.expr(f"_l.`{tl}` <= _r.`{trr}` + {hi}"))
        c = cond[0]
        for x in cond[1:]:
            c = c & x
        out = L.join(R, on=c, how=how)
        if how in ("left_semi", "left_anti"):
            pass
        elif using:
            if how == "full_outer":
                keys = [F.coalesce(F.col(f"_l.`{k}`"), F.col(f"_r.`{k}`")).alias(k) for k in using]
            else:
                side = "_r" if how == "right_outer" else "_l"
                keys = [F.col(f"{side}.`{k}`").alias(k) for k in using]
            out = out.select(*keys, *[F.col(f"_l.`{x}`").alias(x) for x in lcols if x not in using],
                             *[F.col(f"_r.`{x}`").alias(x) for x in rcols if x not in using])
        else:
            out = out.select(*[F.col(f"_l.`{x}`").alias(x) for x in lcols],
                             *[F.col(f"_r.`{x}`").alias(x) for x in rcols])
    seen = set()
    for c in out.columns:
        if c in seen:
            die(f"operator {i}: the join output has two columns named {c!r}; "
                "set right_prefix or left_prefix")
        seen.add(c)
    return out


def build_query(spark, job, F, sources):
    frames = {}
    for s in sources:
        if s.static:
            frames[s.name] = s.reader(spark.read).load(s.spark_dir)
        else:
            r = s.reader(spark.readStream)
            if "schema" not in s.spec:  # parquet: a stream needs a schema; take the files' own
                r = r.schema(spark.read.parquet(s.spark_dir).schema)
            df = r.option("maxFilesPerTrigger", 1).load(s.spark_dir)
            frames[s.name] = with_watermark(df, job, s.spec)

    operators = job.get("operator", [])
    joined = {op.get("left", op.get("right")) for op in operators if op.get("kind") == "join"}
    for n in joined:
        if n not in frames:
            die(f"a join names source {n!r}, which the job does not have "
                f"(sources: {', '.join(frames)})")
    main = [frames[s.name] for s in sources if not s.static and s.name not in joined]
    if not main:
        die("no streaming source is left for the stream (every streaming source is named by a join)")
    df = main[0]
    for other in main[1:]:
        df = df.union(other)

    sort_cols, flat = [], []
    for i, op in enumerate(operators):
        kind = op.get("kind")
        if flat:
            die(f"operator {i}: no operator after a join with `window` is translated "
                "(its `window` struct column is only flattened when printed)")
        if kind == "dedup":
            # within_watermark = true is Spark 3.5's dropDuplicatesWithinWatermark.
            if op.get("within_watermark", False):
                df = df.dropDuplicatesWithinWatermark(list(op["keys"]))
            else:
                df = df.dropDuplicates(list(op["keys"]))
            sort_cols = []
        elif kind == "join":
            df = build_join(F, i, op, df, frames[op.get("left", op.get("right"))])
            # a join window's struct is printed flattened as window_start, window_end
            flat = ["window"] if op.get("window") is not None else []
            sort_cols = flatten_names(df.columns, flat)
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
    return df, sort_cols, flat


def flatten_names(cols, flat):
    """The printed column names: each struct column in `flat` (a join's `window`) becomes
    <name>_start, <name>_end at its position, as weir has no struct columns."""
    out = []
    for c in cols:
        out += [f"{c}_start", f"{c}_end"] if c in flat else [c]
    return out


def flatten_row(row, flat):
    """A row (dict) with each struct column in `flat` ({start, end}, or None) split in two."""
    out = {}
    for c, v in row.items():
        if c in flat:
            out[f"{c}_start"] = None if v is None else v["start"]
            out[f"{c}_end"] = None if v is None else v["end"]
        else:
            out[c] = v
    return out


def job_sources(job):
    """The job's sources and whether it is the one-source layout (BATCHES_DIR/0, 1, ...)."""
    src = job.get("source", {})
    if isinstance(src, dict):
        return [Source(src.get("name", "source"), src)], True
    names = [s.get("name") for s in src]
    if any(n is None for n in names):
        die("every [[source]] needs a name (its input is BATCHES_DIR/<name>/)")
    if len(set(names)) != len(names):
        die(f"source names must differ: {names}")
    return [Source(n, s) for n, s in zip(names, src)], False


def file_batches(ckpt):
    """{file path: the micro-batch that read it}, from the file sources' metadata logs in the
    checkpoint (ckpt/sources/<i>/<batch>, a "v1" line then one JSON entry per file)."""
    out = {}
    root = os.path.join(ckpt, "sources")
    for d in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for f in sorted(os.listdir(os.path.join(root, d))):
            if f.startswith("."):
                continue
            for ln in open(os.path.join(root, d, f)).read().splitlines()[1:]:
                if ln.strip():
                    e = json.loads(ln)
                    out[os.path.normpath(e["path"].removeprefix("file://"))] = e["batchId"]
    return out


def lockstep_errors(sources, read_in):
    """Where batch k's file of a streaming source was not read in micro-batch k."""
    errors = []
    for s in sources:
        for k in range(0 if s.static else len(s.batch_rows)):
            f = os.path.normpath(os.path.join(s.spark_dir, f"batch-{k:06d}.{s.fmt}"))
            got = read_in.get(f)
            if got != k:
                errors.append(f"source {s.name!r}: its batch {k} was read in micro-batch {got}")
    return errors


def source_rows(p, sources):
    """numInputRows per source name, from a progress record's sources[] (matched by path)."""
    out = {}
    for s in sources:
        if s.static:
            continue
        n = 0
        for ps in p.get("sources") or []:
            d = ps.get("description", "")
            if d.rstrip("]").endswith("/in/" + s.name):
                n = ps.get("numInputRows")
        out[s.name] = n
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job")
    ap.add_argument("batches")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="print every operator's state progress")
    a = ap.parse_args()

    with open(a.job, "rb") as fh:
        job = tomllib.load(fh)
    sources, legacy = job_sources(job)
    mode = job.get("sink", {}).get("output_mode", "append")
    if mode not in ("append", "update", "complete"):
        die(f"[sink].output_mode {mode!r}")

    os.environ["TZ"] = "UTC"  # collect() turns timestamps into naive datetimes in the local zone
    time.tzset()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = tempfile.mkdtemp(prefix="weir-crosscheck-")
    ckpt = os.path.join(work, "ckpt")
    try:
        stage_inputs(sources, a.batches, work, legacy)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    from pyspark.sql import SparkSession, functions as F
    builder = (SparkSession.builder.master(f"local[{a.cores}]")
               .appName("weir-crosscheck")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(a.cores))
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
               .config("spark.sql.streaming.numRecentProgressUpdates", "100000"))
    if "multiple_watermark_policy" in job:
        builder = builder.config("spark.sql.streaming.multipleWatermarkPolicy", job["multiple_watermark_policy"])
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df, sort_cols, flat = build_query(spark, job, F, sources)
        captured = {}

        def sink(bdf, batch_id):
            captured[batch_id] = (flatten_names(bdf.columns, flat),
                                  [flatten_row(r.asDict(recursive=True), flat) for r in bdf.collect()])

        q = (df.writeStream.outputMode(mode).option("checkpointLocation", ckpt)
             .trigger(availableNow=True).foreachBatch(sink).start())
        q.awaitTermination()
        if q.exception() is not None:
            die(f"query failed: {q.exception()}")
        # PySpark 4 gives StreamingQueryProgress objects (a dict subclass) with the JVM's JSON in .json
        progress = [json.loads(p.json) if hasattr(type(p), "json") else p for p in q.recentProgress]
        lockstep = [] if legacy else lockstep_errors(sources, file_batches(ckpt))
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
        if not legacy:
            info["sources"] = source_rows(p, sources)
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
                if o.get("operatorName") == "symmetricHashJoin":
                    shown["customMetrics"] = dict(sorted(custom.items()))
                elif "numDroppedDuplicateRows" in custom:  # dedup's own custom metric
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
    if lockstep:
        die("the sources were not read in lock-step:\n  " + "\n  ".join(lockstep))


if __name__ == "__main__":
    main()
