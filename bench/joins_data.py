#!/usr/bin/env python3
"""Input files for the join benchmark of issue 12 (bench/joins.sh), as parquet, deterministic.

  .spark-venv/bin/python bench/joins_data.py OUT_DIR [--scale 0.01] [--files 100] [--seed 12]
                                             [--only stream-stream|stream-static] [--batch-dirs]

Writes, at --scale 1 (the issue's sizes; --scale 0.01 is a quick run of 1/100 of every count):
  OUT_DIR/impressions/  10M rows  ad_id string, impression_time timestamp, campaign_id int
  OUT_DIR/clicks/        1M rows  ad_id string, click_time timestamp, cost double
  OUT_DIR/events/       10M rows  user_id string, amount double, event_time timestamp
  OUT_DIR/users/         1M rows  user_id string, country string   (one file: the static table)
  OUT_DIR/manifest.json           the parameters and the counts below
Each stream is --files files part-00000.parquet, part-00001.parquet, ... (file k holds the rows of
the k-th time slice of --span-hours, so one file per micro-batch reads the streams in lock-step:
file k of clicks and of impressions cover the same slice), with strictly increasing mtimes in
name order (Spark's file source takes the oldest first). With --batch-dirs each file is
OUT_DIR/<stream>/<k>/part.parquet instead: the layout of bench/spark_crosscheck.py (BATCHES_DIR =
OUT_DIR), with the table in OUT_DIR/users/.

The data (times from 2026-01-01T00:00:00Z, whole milliseconds, UTC):
  - impressions: times uniform over the span; each has its own ad_id ("ad" + 9 digits).
  - clicks: 98% (1 - --unmatched-clicks) click a distinct impression 0 to 1 hour after it (both
    ends included: `impression_time <= click_time <= impression_time + 1 hour` holds), so every one
    of them matches in the join; 2% have an ad_id no impression has ("nx" + 9 digits), never
    matched (the rows a left-outer join emits with null impression columns). The issue's "2% never
    clicked" is read as this: with 1M clicks for 10M impressions, 90% of impressions are never
    clicked anyway (they are the right-outer rows).
  - 1% of clicks (--late-clicks) are late: written --late-shift-hours (6 h) of slices after their
    own, further behind than any watermark delay of the benchmark (2 h / 3 h), so that both
    engines drop them as late (a late row that would have matched loses its match). Only clicks
    whose late position is still inside the span are chosen.
  - events: times uniform over the span, user_id drawn uniformly from 1.01 x the users, so about
    1% have no user (left-outer rows); amount 0.00 to 100.00.
  - users: user_id "u" + 8 digits, unique; country one of 20 codes.

The jobs of the benchmark are bench/joins/*.toml (paths relative to OUT_DIR). Checked in Spark
4.3 at a small scale (2026-11-27):
  bench/joins_data.py /tmp/jdb --scale 0.01 --files 20 --batch-dirs
  bench/spark_crosscheck.py bench/joins/<job>.toml /tmp/jdb      (21 micro-batches: 20 + no-data)
  - stream_stream_inner: 9,704 rows = the 9,800 clicks of an impression minus the 96 of them that
    are late; 100 rows dropped as late (numRowsDroppedByWatermark summed over the batches);
  - stream_stream_left_outer: 9,877 rows: those 9,704 and 173 of the 196 clicks without an
    impression that are not late (the other 23 are within the watermark delay of the end, so still
    in state when the input ends);
  - stream_static_left_outer: 100,000 rows, 989 of them with a null country.
"""
import argparse, json, os, sys, time

import numpy as np

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    sys.exit("joins_data: pyarrow is missing; run this with the Spark venv's python "
             "(/work/main/.spark-venv/bin/python or .spark-venv/bin/python)")

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
COUNTRIES = ["DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "PL", "SE",
             "NO", "DK", "FI", "PT", "IE", "GB", "US", "CA", "BR", "JP"]
TS = pa.timestamp("us", tz="UTC")


def ids(prefix, nums, width):
    return pa.array([f"{prefix}{n:0{width}d}" for n in nums.tolist()], pa.string())


def ts(ms):
    return pa.array(ms.astype(np.int64) * 1000, TS)


class StreamWriter:
    """Writes one stream's files in order, with strictly increasing mtimes."""

    def __init__(self, out, name, batch_dirs, stamp):
        self.dir, self.name, self.batch_dirs, self.stamp = os.path.join(out, name), name, batch_dirs, stamp
        os.makedirs(self.dir, exist_ok=True)
        self.rows = 0

    def write(self, k, table):
        if self.batch_dirs:
            os.makedirs(os.path.join(self.dir, str(k)), exist_ok=True)
            path = os.path.join(self.dir, str(k), "part.parquet")
        else:
            path = os.path.join(self.dir, f"part-{k:05d}.parquet")
        pq.write_table(table, path, compression="snappy")
        t = self.stamp + k
        os.utime(path, (t, t))
        self.rows += table.num_rows


def slices(times_ms, span_ms, files):
    """The file (time slice) of each time."""
    return np.minimum((times_ms - T0_MS) * files // span_ms, files - 1)


def stream_stream(out, a, rng, stamp):
    span = int(a.span_hours * HOUR_MS)
    n_imp, n_clk = round(10_000_000 * a.scale), round(1_000_000 * a.scale)
    late_shift = int(a.late_shift_hours * HOUR_MS)
    if n_clk * (1 - a.unmatched_clicks) > n_imp:
        sys.exit("joins_data: more matched clicks than impressions")

    imp_t = np.sort(rng.integers(T0_MS, T0_MS + span, n_imp))
    imp_campaign = rng.integers(1, 1001, n_imp).astype(np.int32)

    n_unmatched = round(n_clk * a.unmatched_clicks)
    n_matched = n_clk - n_unmatched
    # Impressions early enough that a click up to 1 h later stays inside the span.
    eligible = np.flatnonzero(imp_t <= T0_MS + span - 1 - HOUR_MS)
    if len(eligible) < n_matched:
        sys.exit("joins_data: the span is too short for the clicks (raise --span-hours)")
    clicked = np.sort(rng.choice(eligible, n_matched, replace=False))
    clk_t = np.concatenate([imp_t[clicked] + rng.integers(0, HOUR_MS + 1, n_matched),
                            rng.integers(T0_MS, T0_MS + span, n_unmatched)])
    clk_id = np.concatenate([clicked, np.arange(n_unmatched)])
    clk_unmatched = np.concatenate([np.zeros(n_matched, bool), np.ones(n_unmatched, bool)])
    clk_cost = np.round(rng.uniform(0.05, 2.0, n_clk), 2)

    # Late clicks: written late_shift after their own slice, so always behind the watermark.
    clk_file = slices(clk_t, span, a.files)
    can_be_late = np.flatnonzero(clk_t + late_shift < T0_MS + span)
    n_late = min(round(n_clk * a.late_clicks), len(can_be_late))
    late = rng.choice(can_be_late, n_late, replace=False)
    clk_file[late] = slices(clk_t[late] + late_shift, span, a.files)
    is_late = np.zeros(n_clk, bool)
    is_late[late] = True

    imp_file = slices(imp_t, span, a.files)
    imps, clks = StreamWriter(out, "impressions", a.batch_dirs, stamp), StreamWriter(out, "clicks", a.batch_dirs, stamp)
    order = np.lexsort((clk_t, clk_file))  # by file, then time
    clk_bounds = np.searchsorted(clk_file[order], np.arange(a.files + 1))
    imp_bounds = np.searchsorted(imp_file, np.arange(a.files + 1))
    for k in range(a.files):
        i = slice(imp_bounds[k], imp_bounds[k + 1])
        imps.write(k, pa.table({"ad_id": ids("ad", np.arange(imp_bounds[k], imp_bounds[k + 1]), 9),
                                "impression_time": ts(imp_t[i]),
                                "campaign_id": pa.array(imp_campaign[i], pa.int32())}))
        c = order[clk_bounds[k]:clk_bounds[k + 1]]
        ad = [f"{'nx' if u else 'ad'}{n:09d}" for u, n in zip(clk_unmatched[c].tolist(), clk_id[c].tolist())]
        clks.write(k, pa.table({"ad_id": pa.array(ad, pa.string()), "click_time": ts(clk_t[c]),
                                "cost": pa.array(clk_cost[c], pa.float64())}))
    return {"impressions": imps.rows, "clicks": clks.rows, "clicks_matching_an_impression": n_matched,
            "clicks_without_impression": n_unmatched, "late_clicks": n_late,
            "late_clicks_matching_an_impression": int((is_late & ~clk_unmatched).sum())}


def stream_static(out, a, rng, stamp):
    span = int(a.span_hours * HOUR_MS)
    n_ev, n_users = round(10_000_000 * a.scale), round(1_000_000 * a.scale)
    users_dir = os.path.join(out, "users")
    os.makedirs(users_dir, exist_ok=True)
    country = np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_users)]
    pq.write_table(pa.table({"user_id": ids("u", np.arange(n_users), 8),
                             "country": pa.array(country.tolist(), pa.string())}),
                   os.path.join(users_dir, "users.parquet"), compression="snappy")

    ev_t = np.sort(rng.integers(T0_MS, T0_MS + span, n_ev))
    ev_user = rng.integers(0, round(n_users * 1.01), n_ev)
    ev_amount = np.round(rng.uniform(0, 100, n_ev), 2)
    bounds = np.searchsorted(slices(ev_t, span, a.files), np.arange(a.files + 1))
    events = StreamWriter(out, "events", a.batch_dirs, stamp)
    for k in range(a.files):
        i = slice(bounds[k], bounds[k + 1])
        events.write(k, pa.table({"user_id": ids("u", ev_user[i], 8), "amount": pa.array(ev_amount[i], pa.float64()),
                                  "event_time": ts(ev_t[i])}))
    return {"events": events.rows, "users": n_users,
            "events_without_user": int((ev_user >= n_users).sum())}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes (default 1)")
    ap.add_argument("--files", type=int, default=100, help="files (micro-batches) per stream (default 100)")
    ap.add_argument("--span-hours", type=float, default=24.0, help="event times cover this many hours (default 24)")
    ap.add_argument("--unmatched-clicks", type=float, default=0.02)
    ap.add_argument("--late-clicks", type=float, default=0.01)
    ap.add_argument("--late-shift-hours", type=float, default=6.0)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--only", choices=["stream-stream", "stream-static"])
    ap.add_argument("--batch-dirs", action="store_true", help="OUT/<stream>/<k>/part.parquet (spark_crosscheck's layout)")
    a = ap.parse_args()
    if not 0 < a.scale <= 1 or a.files < 1:
        sys.exit("joins_data: --scale must be in (0, 1] and --files at least 1")
    for name in ("impressions", "clicks", "events", "users"):
        d = os.path.join(a.out, name)
        if os.path.isdir(d) and os.listdir(d):
            sys.exit(f"joins_data: {d} is not empty; remove it or choose another OUT_DIR")

    started = time.time()
    stamp = int(started) - 10 * a.files  # mtimes in the past, one second apart, in file order
    counts = {}
    if a.only != "stream-static":
        counts.update(stream_stream(a.out, a, np.random.default_rng(a.seed), stamp))
    if a.only != "stream-stream":
        counts.update(stream_static(a.out, a, np.random.default_rng(a.seed + 1), stamp))
    manifest = {"parameters": {k: v for k, v in vars(a).items() if k != "out"}, "counts": counts}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"{k:<{width}}  {v:>12,}")
    print(f"{'seconds':<{width}}  {time.time() - started:>12.1f}")


if __name__ == "__main__":
    main()
