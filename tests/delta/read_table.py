"""Reads a Delta table with PyPI's `deltalake` (delta-rs, a reader weir's tests did not write)
and prints what the end-to-end tests compare, as one JSON document:

  version             the table's latest version
  schema              [[name, type, nullable], ...]
  partition_columns   [...]
  rows                every row as an object, sorted by its JSON text (timestamps as ISO 8601)
  files               [{"partition": {...}, "num_records": n}, ...] sorted
  txn                 {app_id: version or null} for each app id given after the table path
  operations          the operation of each commit, oldest first

Usage: read_table.py TABLE [APP_ID ...]
"""

import datetime
import json
import os
import sys

import pyarrow as pa
from deltalake import DeltaTable


def plain(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main():
    path = sys.argv[1]
    apps = sys.argv[2:]
    dt = DeltaTable(path)
    schema = []
    for f in dt.schema().fields:
        t = f.type
        name = getattr(t, "type", None) or str(t)
        schema.append([f.name, name, f.nullable])
    table = dt.to_pyarrow_table()
    rows = [plain(r) for r in table.to_pylist()]
    rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
    adds = pa.table(dt.get_add_actions(flatten=False))
    files = []
    for a in adds.to_pylist():
        part = a.get("partition_values")
        if part is None and isinstance(a.get("partition"), dict):
            part = a["partition"]
        if part is None:
            part = {k[len("partition."):]: v for k, v in a.items() if k.startswith("partition.")}
        files.append({"partition": plain(part or {}), "num_records": a.get("num_records")})
    files.sort(key=lambda r: (json.dumps(r["partition"], sort_keys=True), r["num_records"] or 0))
    txn = {}
    for app in apps:
        txn[app] = dt.transaction_version(app)
    try:
        history = dt.history()
        operations = [h.get("operation") for h in sorted(history, key=lambda h: h.get("version", 0))]
    except Exception:  # the log before a checkpoint was deleted: no history to show
        operations = None
    print(json.dumps({
        "version": dt.version(),
        "schema": schema,
        "partition_columns": list(dt.metadata().partition_columns),
        "rows": rows,
        "files": files,
        "txn": txn,
        "operations": operations,
    }, sort_keys=True))
    sys.stdout.flush()
    # deltalake 1.6's runtime threads can abort the interpreter's exit ("terminate called
    # without an active exception") after everything was read: leave at once, successfully.
    os._exit(0)


if __name__ == "__main__":
    main()
