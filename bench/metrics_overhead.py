"""What ``/metrics`` costs (``config.metrics``), in process, without Django or servers.

    .venv/bin/python bench/metrics_overhead.py [--requests 20000] [--queries 10]

For each mode, in a child process of its own (prometheus-client picks the mode when it is
imported): single-process (no ``PROMETHEUS_MULTIPROC_DIR``) and multiprocess (a fresh
folder, as ``make run``):

- ``record``: what :class:`config.metrics.MetricsMiddleware` adds to one request besides
  the request itself: the per-query wrapper around ``--queries`` no-op queries, and
  ``observe_request`` (counter, histogram, query counter), in µs per request;
- ``scrape``: building the answer of ``/metrics`` from the metrics alone (the queue and
  outbox collectors, which need Redis and PostgreSQL, are left out), in ms, after the
  requests were spread over 40 routes; in multiprocess mode with files from 8 processes.

Prints one JSON object per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

CHILD = """
import json, os, sys, time
from config import metrics
from config.metrics import _QueryCounter, observe_request
from prometheus_client import CollectorRegistry, generate_latest

requests, queries, processes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
noop = lambda sql, params, many, context: None
routes = [f"/route/{n}/<int:pk>/" for n in range(40)]

started = time.perf_counter()
for n in range(requests):
    counter = _QueryCounter()
    for _ in range(queries):
        counter(noop, "SELECT 1", (), False, {})
    observe_request(route=routes[n % 40], method="GET", status=200, seconds=0.01,
                    queries=counter.count)
record_us = (time.perf_counter() - started) / requests * 1e6

baseline = time.perf_counter()
for n in range(requests):
    for _ in range(queries):
        noop("SELECT 1", (), False, {})
baseline_us = (time.perf_counter() - baseline) / requests * 1e6

path = metrics.multiprocess_dir()
if path:
    import shutil
    from prometheus_client import multiprocess
    mine = [name for name in os.listdir(path)]
    for pid in range(1, processes):  # copies of this process's files as other processes'
        for name in mine:
            stem = name.rsplit("_", 1)[0]
            shutil.copy(os.path.join(path, name), os.path.join(path, f"{stem}_{900000 + pid}.db"))
def build():
    registry = CollectorRegistry()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(metrics.REGISTRY)
    return generate_latest(registry)
timings = []
for _ in range(20):
    began = time.perf_counter()
    body = build()
    timings.append((time.perf_counter() - began) * 1000)
timings.sort()
print(json.dumps({
    "mode": "multiprocess" if path else "single",
    "requests": requests,
    "queries_per_request": queries,
    "record_us_per_request": round(record_us - baseline_us, 2),
    "scrape_ms_median": round(timings[len(timings) // 2], 2),
    "scrape_bytes": len(body),
    "processes": processes if path else 1,
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--processes", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps({"loadavg": Path("/proc/loadavg").read_text().split()[:3]}))
    for multiprocess in (False, True):
        env = {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as folder:
            if multiprocess:
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            argv = [str(args.requests), str(args.queries), str(args.processes)]
            started = time.monotonic()
            command = [sys.executable, "-c", CHILD, *argv]
            subprocess.run(command, cwd=BASE_DIR, env=env, check=True)  # noqa: S603
            print(f"  ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
