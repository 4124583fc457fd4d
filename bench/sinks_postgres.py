"""The postgres half of bench/sinks.sh: weir's postgres sink against psycopg's COPY of the same
rows (the floor), on the server of scripts/postgres.sh. Prints markdown table rows.

    sinks_postgres.py gen DIR ROWS FILES   the input: FILES Parquet files of ROWS rows in all
    sinks_postgres.py run DIR              the table rows (weir, then psycopg); needs WEIR,
                                           WEIR_PG_URL and WEIR_PG_PASSWORD
    sinks_postgres.py copy DIR TABLE       (internal) psycopg's binary COPY of DIR into TABLE
    sinks_postgres.py copy_csv DIR TABLE   (internal) psycopg's text COPY of pyarrow's CSV

Both write the same rows into a fresh table of the same columns (bigint, text, double precision,
timestamptz, boolean), in one transaction per file (weir: one batch per file). psycopg reads each
file with pyarrow and writes it either with `Copy.write_row` in binary (psycopg's C
implementation, a Python tuple per row) or as the CSV text pyarrow's C++ writer makes, sent with
`Copy.write` (no Python object per value); the faster of the two is the floor.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_common import measure  # noqa: E402

COLUMNS = "id bigint, user_id string, amount double, ts timestamp, flag boolean"
PG_COLUMNS = "id bigint, user_id text, amount double precision, ts timestamptz, flag boolean"


def gen(out, rows, files):
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(out, exist_ok=True)
    per = rows // files
    base = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in µs
    for f in range(files):
        lo = f * per
        ids = pa.array(range(lo, lo + per), pa.int64())
        t = pa.table(
            {
                "id": ids,
                "user_id": pa.array([f"u{i % 100_003}" for i in range(lo, lo + per)], pa.string()),
                "amount": pa.array([(i % 100_000) / 100.0 for i in range(lo, lo + per)], pa.float64()),
                "ts": pa.array([base + i * 1000 for i in range(lo, lo + per)], pa.timestamp("us", tz="UTC")),
                "flag": pa.array([i % 3 == 0 for i in range(lo, lo + per)], pa.bool_()),
            }
        )
        pq.write_table(t, f"{out}/part-{f:03}.parquet", row_group_size=128 * 1024)


def connect():
    import psycopg

    return psycopg.connect(os.environ["WEIR_PG_URL"], password=os.environ["WEIR_PG_PASSWORD"], autocommit=True)


def copy(data, table):
    import pyarrow.parquet as pq

    conn = connect()
    conn.execute(f'CREATE TABLE "{table}" ({PG_COLUMNS})')
    rows = 0
    for name in sorted(os.listdir(data)):
        t = pq.read_table(f"{data}/{name}")
        with conn.transaction():
            with conn.cursor() as cur:
                with cur.copy(f'COPY "{table}" (id, user_id, amount, ts, flag) FROM STDIN (FORMAT BINARY)') as cp:
                    cp.set_types(["int8", "text", "float8", "timestamptz", "bool"])
                    for b in t.to_batches(max_chunksize=65536):
                        cols = [c.to_pylist() for c in b.columns]
                        for row in zip(*cols):
                            cp.write_row(row)
        rows += t.num_rows
    print(rows)


def copy_csv(data, table):
    """The same rows as CSV text that pyarrow's C++ writer makes, sent whole per file with
    `Copy.write`: no Python object per value."""
    import io

    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    conn = connect()
    conn.execute(f'CREATE TABLE "{table}" ({PG_COLUMNS})')
    rows = 0
    for name in sorted(os.listdir(data)):
        t = pq.read_table(f"{data}/{name}")
        buf = io.BytesIO()
        pc.write_csv(t, buf, pc.WriteOptions(include_header=False))
        with conn.transaction():
            with conn.cursor() as cur:
                with cur.copy(f'COPY "{table}" (id, user_id, amount, ts, flag) FROM STDIN (FORMAT csv)') as cp:
                    view = buf.getbuffer()
                    for i in range(0, len(view), 1 << 20):
                        cp.write(view[i : i + (1 << 20)])
                    del view
        rows += t.num_rows
    print(rows)


def count(table):
    with connect() as conn:
        return conn.execute(f'SELECT count(*), count(DISTINCT id) FROM "{table}"').fetchone()


def run(data):
    weir = os.environ.get("WEIR", "target/release/weir")
    stamp = f"{os.getpid()}_{int(time.time())}"
    weir_table, py_table = f"bench_weir_{stamp}", f"bench_psycopg_{stamp}"
    work = f"target/bench-sinks-{stamp}"
    os.makedirs(work, exist_ok=True)
    job = f"{work}/postgres.toml"
    with open(job, "w") as f:
        f.write(
            f"""[source]
format = "parquet"
path = "{os.path.abspath(data)}"
schema = "{COLUMNS}"
max_files_per_trigger = 1

[sink]
format = "postgres"
url = "{os.environ['WEIR_PG_URL']}"
password_env = "WEIR_PG_PASSWORD"
table = "{weir_table}"
create_table = true
checkpoint = "{os.path.abspath(work)}/ckpt"
trigger = {{ available_now = true }}
"""
        )
    results = []
    code, secs, _, _, peak = measure([weir, "run", "--quiet", job], f"{work}/weir.log")
    if code != 0:
        sys.exit(f"weir failed: see {work}/weir.log")
    results.append(("weir postgres sink (append, binary COPY)", weir_table, secs, peak))
    code, secs, _, _, peak = measure([sys.executable, __file__, "copy", data, py_table], f"{work}/psycopg.log")
    if code != 0:
        sys.exit(f"psycopg failed: see {work}/psycopg.log")
    results.append(("psycopg binary COPY, a row at a time (`write_row`)", py_table, secs, peak))
    csv_table = f"bench_psycopg_csv_{stamp}"
    code, secs, _, _, peak = measure([sys.executable, __file__, "copy_csv", data, csv_table], f"{work}/psycopg-csv.log")
    if code != 0:
        sys.exit(f"psycopg (csv) failed: see {work}/psycopg-csv.log")
    results.append(("psycopg text COPY of pyarrow's CSV (`write`)", csv_table, secs, peak))
    floor = min(r[2] for r in results[1:])
    for what, table, secs, peak in results:
        n, distinct = count(table)
        assert n == distinct, f"{table}: {n} rows, {distinct} distinct ids"
        print(f"| postgres | {what} | {n:,} | {secs:.1f} s | {n / secs / 1e6:.2f}M | {peak:.0f} MiB | {secs / floor:.2f}× the faster psycopg |")
    with connect() as conn:
        for _, table, _, _ in results:
            conn.execute(f'DROP TABLE "{table}"')


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "copy":
        copy(sys.argv[2], sys.argv[3])
    elif cmd == "copy_csv":
        copy_csv(sys.argv[2], sys.argv[3])
    elif cmd == "run":
        run(sys.argv[2])
    else:
        sys.exit(__doc__)
