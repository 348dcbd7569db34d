"""The measurements: one day's ``rollup_day`` (cold, then warm runs, its statements
analysed), backfills of many days, and ``GET /dashboards/`` over 30 days and a year."""

from __future__ import annotations

import datetime as dt
import statistics
import time

from bench.common import log, percentile
from bench.rollup import DAYS
from bench.rollup.plans import analyse_queries, captured, timed


def measure_rollup(day: dt.date, runs: int) -> dict:
    from analytics.services import rollup_day

    cold, written = timed(rollup_day, day)
    warm = [timed(rollup_day, day)[0] for _ in range(runs)]
    seconds, _, queries = captured(rollup_day, day)
    return {
        "day": day.isoformat(),
        "rows_written": written,
        "cold_s": round(cold, 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "warm_s": [round(w, 3) for w in warm],
        "queries": len(queries),
        "db_time_s": round(sum(float(q["time"]) for q in queries), 3),
        "analysis": analyse_queries(queries, seconds),
    }


def backfill(days: list[dt.date]) -> dict:
    from analytics.services import rollup_day

    per_day = []
    started = time.perf_counter()
    for number, day in enumerate(days, start=1):
        per_day.append(timed(rollup_day, day)[0])
        if number % 10 == 0 or number == len(days):
            log(f"    {number}/{len(days)} days, {time.perf_counter() - started:.0f} s")
    return {
        "days": len(days),
        "first": days[0].isoformat() if days else None,
        "last": days[-1].isoformat() if days else None,
        "total_s": round(time.perf_counter() - started, 1),
        "mean_s": round(statistics.fmean(per_day), 3) if per_day else None,
        "max_s": round(max(per_day), 3) if per_day else None,
    }


def measure_overview(admin, start: dt.date, end: dt.date, runs: int) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(admin)
    url = f"/dashboards/?start={start.isoformat()}&end={end.isoformat()}"
    first, response = timed(client.get, url)
    if response.status_code != 200:
        return {"url": url, "status": response.status_code, "error": "not a 200 response"}
    times = [timed(client.get, url)[0] for _ in range(runs)]
    _, response, queries = captured(client.get, url)
    ranked = sorted(queries, key=lambda q: -float(q["time"]))
    return {
        "url": url,
        "status": response.status_code,
        "bytes": len(response.content),
        "first_ms": round(first * 1000, 1),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "p90_ms": round(percentile(times, 90) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "queries": len(queries),
        "db_ms": round(sum(float(q["time"]) for q in queries) * 1000, 1),
        "slowest": [
            {"ms": round(float(q["time"]) * 1000, 1), "sql": " ".join(q["sql"].split())[:200]}
            for q in ranked[:3]
        ],
    }


def analytics_ready() -> tuple[bool, bool]:
    """Whether rollup_day and the /dashboards/ URL exist yet (being written meanwhile)."""
    try:
        from analytics.services import rollup_day  # noqa: F401

        has_rollup = True
    except ImportError as exc:
        log(f"analytics.services.rollup_day cannot be imported: {exc}")
        has_rollup = False
    from django.urls import Resolver404, resolve

    try:
        resolve("/dashboards/")
        has_dashboard = True
    except Resolver404:
        has_dashboard = False
    return has_rollup, has_dashboard


def measure(args, admin_id: int) -> dict:
    from django.contrib.auth.models import User

    has_rollup, has_dashboard = analytics_ready()
    end = args.end
    result: dict = {"rollup_day_available": has_rollup, "dashboard_available": has_dashboard}
    if has_rollup:
        day = args.day or (end - dt.timedelta(days=DAYS // 2 + 1))
        log(f"rollup_day({day}): cold run, then {args.rollup_runs} …")
        result["rollup"] = measure_rollup(day, args.rollup_runs)
        recent = [end - dt.timedelta(days=n) for n in range(args.backfill_days, 0, -1)]
        log(f"backfill of the last {len(recent)} days …")
        result["backfill_recent"] = backfill(recent)
        if args.year_backfill:
            rest = [end - dt.timedelta(days=n) for n in range(DAYS, args.backfill_days, -1)]
            log(f"backfill of the rest of the year ({len(rest)} days) for the year overview …")
            result["backfill_rest_of_year"] = backfill(rest)
    if has_dashboard:
        admin = User.objects.get(pk=admin_id)
        last = end - dt.timedelta(days=1)
        for label, first in (
            ("last_30_days", end - dt.timedelta(days=30)),
            ("whole_year", end - dt.timedelta(days=DAYS)),
        ):
            log(f"GET overview, {label} …")
            result[f"overview_{label}"] = measure_overview(admin, first, last, args.requests)
    return result
