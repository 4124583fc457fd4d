"""The Delta half of issue 14's sink benchmark (bench/sinks.sh runs it and prints the table's header): ROWS rows (default 10M)
into a Delta table, written by
  weir:      `weir run` of a Parquet file source (FILES files, one per micro-batch) into
             `[sink] format = "delta"`;
  deltalake: PyPI deltalake's write_deltalake of the same Parquet files read as Arrow tables,
             one append per file (the same number of commits).
Both read the same files and write Snappy Parquet plus a commit per file; wall time, rows/s and
the peak RSS (ru_maxrss through /usr/bin/time; both are one process). Both tables are read back with deltalake
and must hold ROWS rows. Prints rows of bench/sinks.sh's markdown table.

Environment: ROWS, FILES, WEIR (default target/release/weir), KEEP=1 keeps the tables.
Run from the repository root, with .spark-venv's python (pyarrow, deltalake)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, "bench")
from bench_common import measure, tail  # noqa: E402

ROWS = int(os.environ.get("ROWS", 10_000_000))
FILES = int(os.environ.get("FILES", 10))
WEIR = os.environ.get("WEIR", "target/release/weir")
DATA = f"bench/data/sinks-delta-{ROWS}-{FILES}"
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in µs


def generate():
    if os.path.exists(f"{DATA}/.complete"):
        return
    shutil.rmtree(DATA, ignore_errors=True)
    os.makedirs(DATA)
    n = ROWS // FILES
    for i in range(FILES):
        ids = np.arange(i * n, (i + 1) * n, dtype=np.int64)
        rng = np.random.default_rng(i)
        table = pa.table({
            "id": pa.array(ids),
            "k": pa.array(np.char.add("k", (ids % 1000).astype(str))),
            "v": pa.array(rng.random(n)),
            "t": pa.array(T0 + ids * 1000, pa.timestamp("us", tz="UTC")),
        })
        pq.write_table(table, f"{DATA}/part-{i:03}.parquet", compression="snappy")
    open(f"{DATA}/.complete", "w").close()


DELTALAKE = """
import sys, glob
import pyarrow.parquet as pq
from deltalake import write_deltalake
data, out = sys.argv[1], sys.argv[2]
for f in sorted(glob.glob(data + "/part-*.parquet")):
    write_deltalake(out, pq.read_table(f), mode="append")
import os
os._exit(0)  # deltalake 1.6 may abort the interpreter's exit
"""


def rows_of(table):
    out = subprocess.run(
        [sys.executable, "-c", "import os, sys; from deltalake import DeltaTable; print(DeltaTable(sys.argv[1]).to_pyarrow_table().num_rows, flush=True); os._exit(0)", table],
        check=True, capture_output=True, text=True)
    return int(out.stdout)


def main():
    generate()
    work = tempfile.mkdtemp(prefix="weir-sinks-delta-", dir="bench/out" if os.path.isdir("bench/out") else None)
    results = []
    # weir
    job = os.path.join(work, "job.toml")
    with open(job, "w") as f:
        f.write(f"""
[source]
format = "parquet"
path = "{os.path.abspath(DATA)}"
schema = "id bigint, k string, v double, t timestamp"
max_files_per_trigger = 1

[sink]
format = "delta"
path = "{work}/weir-table"
checkpoint = "{work}/ckpt"
trigger = {{ available_now = true }}
""")
    code, secs, _, peak, _ = measure([WEIR, "run", "--quiet", job], f"{work}/weir.log")
    if code != 0:
        sys.exit(f"weir failed:\n{tail(f'{work}/weir.log')}")
    assert rows_of(f"{work}/weir-table") == ROWS
    results.append(("weir delta sink (append, a commit per file)", secs, peak))
    # deltalake
    code, secs, _, peak, _ = measure([sys.executable, "-c", DELTALAKE, DATA, f"{work}/deltalake-table"], f"{work}/deltalake.log")
    if code != 0:
        sys.exit(f"write_deltalake failed:\n{tail(f'{work}/deltalake.log')}")
    assert rows_of(f"{work}/deltalake-table") == ROWS
    import deltalake
    results.append((f"deltalake {deltalake.__version__} write_deltalake (mode append, per file)", secs, peak))
    # Rows in the format of bench/sinks.sh's table; the last column: time / deltalake's time.
    other = results[1][1]
    for name, secs, peak in results:
        print(f"| delta | {name} | {ROWS:,} | {secs:.1f} s | {ROWS / secs / 1e6:.2f}M | {peak:.0f} MiB | {secs / other:.2f}× |")
    if not os.environ.get("KEEP"):
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
