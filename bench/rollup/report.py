"""What the report says: facts about the data, the database, the analytics code measured
and the machine, then the measurements as text (``--json`` prints them as they are)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from bench.rollup import BIG_TABLES
from bench.rollup.database import BASE_DIR


def data_facts() -> dict:
    from django.db import connection

    facts = {}
    with connection.cursor() as cursor:
        for table in BIG_TABLES:
            cursor.execute(
                f"SELECT (SELECT count(*) FROM {table}),"  # noqa: S608  (a constant name)
                " pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
                [table, table],
            )
            rows, total, heap = cursor.fetchone()
            facts[table] = {"rows": rows, "total_mb": total // 2**20, "heap_mb": heap // 2**20}
        cursor.execute("SELECT pg_database_size(current_database())")
        facts["database_mb"] = cursor.fetchone()[0] // 2**20
    return facts


def ticket_facts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*), min(created_at), max(created_at),
                      count(*) FILTER (WHERE status IN ('resolved', 'closed')),
                      count(*) FILTER (WHERE satisfaction_rating IS NOT NULL),
                      count(*) FILTER (WHERE reopened_count > 0),
                      count(*) FILTER (WHERE assignee_id IS NOT NULL)
               FROM support_ticket"""
        )
        n, first, last, done, rated, reopened, assigned = cursor.fetchone()
        cursor.execute(
            "SELECT count(DISTINCT ticket_id) FROM support_ticketevent WHERE kind = 'escalated'"
        )
        escalated = cursor.fetchone()[0]
        cursor.execute(
            "SELECT kind, count(*) FROM support_ticketevent GROUP BY kind ORDER BY 2 DESC"
        )
        kinds = dict(cursor.fetchall())
        cursor.execute(
            "SELECT ai_model, count(*) FROM support_message WHERE ai_model <> ''"
            " GROUP BY 1 ORDER BY 2 DESC"
        )
        models = dict(cursor.fetchall())
    share = (lambda k: round(k / n, 3)) if n else (lambda k: None)
    return {
        "tickets": n,
        "first_created": first.isoformat() if first else None,
        "last_created": last.isoformat() if last else None,
        "resolved_share": share(done),
        "escalated_share": share(escalated),
        "reopened_share": share(reopened),
        "rated_share": share(rated),
        "assigned_share": share(assigned),
        "events_by_kind": kinds,
        "ai_messages_by_model": models,
    }


def database_facts() -> dict:
    from django.db import connection

    facts = {}
    with connection.cursor() as cursor:
        for name in (
            "server_version",
            "shared_buffers",
            "work_mem",
            "effective_cache_size",
            "max_parallel_workers_per_gather",
            "random_page_cost",
            "jit",
        ):
            cursor.execute(f"SHOW {name}")
            facts[name] = cursor.fetchone()[0]
    return facts


def code_facts() -> dict:
    """Fingerprint of the analytics code measured (it changes while it is written)."""
    import hashlib

    files = ["analytics/services.py", "analytics/views.py", "analytics/selectors.py"]
    digest = hashlib.sha1(usedforsecurity=False)
    for name in files:
        path = BASE_DIR / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return {"files": files, "sha1": digest.hexdigest()[:12]}


def machine_facts() -> dict:
    memory = cpu = "?"
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        memory = f"{kb / 2**20:.1f} GiB"
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        cpu = found.group(1).strip() if found else "?"
    except (OSError, AttributeError):
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "memory": memory, "cpu": cpu}


def report(result: dict) -> str:
    machine, db, data = result["machine"], result["database"], result["data"]
    tickets = result["tickets"]
    lines = [
        f"Analytics rollups over {tickets['tickets']:,} tickets"
        f" ({tickets['first_created'][:10]} … {tickets['last_created'][:10]},"
        f" time zone {result['time_zone']})",
        f"  machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory']} RAM;"
        f" PostgreSQL {db['server_version']}, shared_buffers {db['shared_buffers']},"
        f" work_mem {db['work_mem']}, jit {db['jit']}",
        f"  command: {result['command']}",
        f"  analytics code measured: sha1 {result['analytics_code']['sha1']} of"
        f" {', '.join(result['analytics_code']['files'])}",
    ]
    generation = result.get("generation")
    if generation and generation.get("generated_this_run"):
        lines.append(f"  generated this run in {generation['generation_s']:.0f} s:")
    elif generation:
        lines.append(
            f"  reused data generated {generation.get('generated_at', '?')}"
            f" in {generation.get('generation_s', '?')} s:"
        )
    if generation:
        steps = generation.get("steps_s", {})
        lines.append("    " + ", ".join(f"{k.strip()} {v} s" for k, v in steps.items()))
        if generation.get("paths"):
            paths = generation["paths"]
            lines.append(
                "  paths of the stories (analytics.history): "
                + ", ".join(f"{path} {count:,}" for path, count in paths.items())
            )
    lines.append(
        f"  shares of tickets: resolved {tickets['resolved_share']}, escalated"
        f" {tickets['escalated_share']}, reopened {tickets['reopened_share']},"
        f" rated {tickets['rated_share']}"
    )
    lines.append("  rows (MB with indexes):")
    for table in BIG_TABLES:
        facts = data[table]
        lines.append(f"    {table:<32}{facts['rows']:>12,}{facts['total_mb']:>8,} MB")
    lines.append(f"    database {data['database_mb']:,} MB")

    m = result["measurements"]
    if m and not m.get("rollup_day_available"):
        lines.append("\nanalytics.services.rollup_day does not exist yet: rollups not measured.")
    if "rollup" in m:
        r = m["rollup"]
        lines += [
            "",
            f"rollup_day({r['day']}): cold {r['cold_s']:.3f} s, warm median"
            f" {r['warm_median_s']:.3f} s of {len(r['warm_s'])} {r['warm_s']};"
            f" {r['queries']} queries, {r['db_time_s']:.3f} s in SQL; rows {r['rows_written']}",
            "  slowest statements:",
        ]
        analysis = r["analysis"]
        for s in analysis["slowest"]:
            lines.append(f"    {s['seconds']:7.3f} s  {s['sql'][:150]}")
        if analysis["seq_scans"]:
            lines.append("  sequential scans of big tables in the rollup's plans:")
            for scan in analysis["seq_scans"]:
                if "error" in scan:
                    lines.append(f"    (EXPLAIN failed: {scan['error']})")
                    continue
                lines.append(
                    f"    {scan['table']} in a {scan['statement_seconds']:.3f} s statement:"
                    f" {scan['filter'][:160] or '(no filter)'}"
                )
                lines.append(f"      → {scan['hint']}")
        if analysis["dominant"]:
            d = analysis["dominant"]
            lines += [
                f"  the slowest statement dominates ({d['share']:.0%} of the rollup,"
                f" {d['seconds']:.3f} s): EXPLAIN (ANALYZE, BUFFERS):",
                *("    " + line for line in d["plan"]),
            ]
    for key, label in (
        ("backfill_recent", "backfill, last days"),
        ("backfill_rest_of_year", "backfill, rest of the year"),
    ):
        if m.get(key, {}).get("days"):
            b = m[key]
            lines.append(
                f"{label}: {b['days']} days ({b['first']} … {b['last']}) in {b['total_s']} s"
                f" (mean {b['mean_s']} s, max {b['max_s']} s per day)"
            )
    if m and not m.get("dashboard_available"):
        lines.append("\n/dashboards/ is not routed yet: the overview was not measured.")
    for key in ("overview_last_30_days", "overview_whole_year"):
        if key not in m:
            continue
        o = m[key]
        lines.append("")
        if "error" in o:
            lines.append(f"GET {o['url']}: HTTP {o['status']} ({o['error']})")
            continue
        lines.append(
            f"GET {o['url']}: first {o['first_ms']} ms, median {o['median_ms']} ms"
            f" (p90 {o['p90_ms']}, max {o['max_ms']}) of {result['requests']};"
            f" {o['queries']} queries ({o['db_ms']} ms in SQL), {o['bytes']:,} bytes"
        )
        for s in o["slowest"]:
            lines.append(f"    {s['ms']:7.1f} ms  {s['sql'][:150]}")
    return "\n".join(lines)
