"""Create tickets through the REST API of a running stack, N at a time, and report
throughput and latency.

Run the stack with the per-user rate limits and the ticket budget lifted (they would
stop a benchmark after 60 tickets), then the benchmark, from the project folder:

    API_THROTTLE_TICKET_CREATE=1000000/hour API_THROTTLE_USER=1000000/min \
    HELPDESK_TICKETS_PER_HOUR_PER_USER=1000000 HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS=1000000 \
    make run
    .venv/bin/python bench/create_tickets.py --count 2000 --concurrency 8

It signs in as the demo customer (``/api/auth/token/``) and POSTs ``/api/tickets/``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="customer")
    parser.add_argument("--password", default="customer-demo")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    token = (
        httpx.post(
            f"{args.base_url}/api/auth/token/",
            json={"username": args.username, "password": args.password},
            timeout=30,
        )
        .raise_for_status()
        .json()["token"]
    )
    headers = {"Authorization": f"Token {token}"}
    local = threading.local()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=args.base_url, headers=headers, timeout=60
            )
        started = time.perf_counter()
        response = client.post(
            "/api/tickets/",
            json={
                "subject": f"Benchmark ticket {i}",
                "description": "The export to CSV stops at 10,000 rows; is there a limit?",
                "type": "general",
            },
        )
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            if response.status_code == 201:
                latencies.append(elapsed)
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(create, range(args.count)))
    wall = time.perf_counter() - started

    print(
        f"tickets created: {len(latencies)} of {args.count} "
        f"(concurrency {args.concurrency}, {wall:.1f} s)"
    )
    if latencies:
        print(f"throughput:      {len(latencies) / wall:.1f} tickets/s")
        print(f"latency p50:     {percentile(latencies, 50):.1f} ms")
        print(f"latency p95:     {percentile(latencies, 95):.1f} ms")
        print(f"latency mean:    {statistics.fmean(latencies):.1f} ms")
    if failures:
        print(f"failures: {len(failures)}; first: {failures[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
