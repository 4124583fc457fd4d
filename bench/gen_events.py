#!/usr/bin/env python3
# Copied from ../shared/bench/spark/gen_events.py so weir and Spark read identical events.
"""Deterministic event generator for side-by-side benchmarks.

Writes N events as newline-delimited JSON (and Parquet with --parquet, needs pyarrow) split
into K files: event_id, user_id, event_time (ISO-8601 UTC), amount, category.
Event time advances --ms-per-event (default 10) per event, with jitter (out of order by up to --jitter-s seconds);
--late-pct of events are late by 20-40 minutes; --dup-pct repeat an earlier event_id.
"""
import argparse, datetime as dt, json, os, random

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--categories", type=int, default=20)
    ap.add_argument("--ms-per-event", type=float, default=10.0)
    ap.add_argument("--jitter-s", type=float, default=5.0)
    ap.add_argument("--late-pct", type=float, default=1.0)
    ap.add_argument("--dup-pct", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--parquet", action="store_true")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    per_file = (a.events + a.files - 1) // a.files
    ids = []
    rows_all = [] if a.parquet else None
    n = 0
    for f in range(a.files):
        rows = []
        for _ in range(min(per_file, a.events - n)):
            t = n * a.ms_per_event / 1000.0 + rnd.uniform(-a.jitter_s, a.jitter_s)
            if rnd.random() * 100 < a.late_pct:
                t -= rnd.uniform(1200, 2400)
            if ids and rnd.random() * 100 < a.dup_pct:
                eid = rnd.choice(ids[-1000:])
            else:
                eid = f"e{n:010d}"
                ids.append(eid)
            ts = base + dt.timedelta(seconds=max(t, 0.0))
            rows.append({
                "event_id": eid,
                "user_id": f"u{rnd.randrange(a.users):05d}",
                "event_time": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "amount": round(rnd.uniform(1, 500), 2),
                "category": f"c{rnd.randrange(a.categories):02d}",
            })
            n += 1
        with open(os.path.join(a.out, f"part-{f:05d}.json"), "w") as fh:
            fh.write("\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n")
        if rows_all is not None:
            rows_all.append(rows)
    if a.parquet:
        import pyarrow as pa, pyarrow.parquet as pq
        pdir = a.out.rstrip("/") + "_parquet"
        os.makedirs(pdir, exist_ok=True)
        for f, rows in enumerate(rows_all):
            tbl = pa.Table.from_pylist(rows)
            times = [dt.datetime.strptime(r["event_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc) for r in rows]
            tbl = tbl.set_column(2, "event_time", pa.array(times, pa.timestamp("us", tz="UTC")))
            pq.write_table(tbl, os.path.join(pdir, f"part-{f:05d}.parquet"))
    print(f"wrote {n} events in {a.files} files to {a.out}")

if __name__ == "__main__":
    main()
