"""What the bench/*.sh scripts share: running a command while sampling the RSS of its whole process
tree, and reading timestamps back as microseconds. Imported by the Python embedded in those scripts
(run from the repository root)."""
import os
import subprocess
import threading
import time

import pandas as pd

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root):
    """Summed RSS (bytes) of root and all its descendants, from /proc."""
    kids, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * PAGE
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += kids.get(p, [])
    return total


def measure(cmd, log, poll=True):
    """Run cmd (stderr to log); return (exit code, wall seconds, stdout, wait4 ru_maxrss MiB, peak
    summed RSS MiB of the process tree sampled every 0.1 s, or 0 without poll). ru_maxrss is the
    largest single process among the child and the descendants it reaped: for a PySpark script that
    is the python driver only, as PySpark never reaps its JVM; hence the sampled tree sum.
    cmd runs under /usr/bin/time, which reports its child's ru_maxrss (%M): a child forked straight
    from this process would start with this process's own peak in it (Linux keeps the pre-exec
    high-water mark), and a benchmark script may hold large tables."""
    t = time.monotonic()
    maxrss_file = log + ".maxrss"
    with open(log, "w") as errf:
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", maxrss_file] + list(cmd), stdout=subprocess.PIPE,
                             stderr=errf, text=True)
        peak, done = [0], threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss(p.pid))
                done.wait(0.1)

        th = threading.Thread(target=sample, daemon=True)
        if poll:
            th.start()
        out = p.stdout.read()
        _, status, _ = os.wait4(p.pid, 0)
        secs = time.monotonic() - t
        done.set()
        if poll:
            th.join()
    try:
        with open(maxrss_file) as f:
            maxrss_kib = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        maxrss_kib = 0
    return os.waitstatus_to_exitcode(status), secs, out, maxrss_kib / 1024, peak[0] / 2**20


def tail(path, n=15):
    with open(path) as f:
        return "".join(f.readlines()[-n:])


def us(series):
    """A timestamp column (tz-aware or naive UTC, or ISO-8601 text) as int64 microseconds."""
    s = pd.to_datetime(series, format="ISO8601") if series.dtype == object else series
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.astype("datetime64[us]").astype("int64")
