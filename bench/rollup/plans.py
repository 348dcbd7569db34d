"""What a rollup's statements do: each one captured with its time, its plan (EXPLAIN,
EXPLAIN ANALYZE for one that dominates), the sequential scans of big tables in the plans,
and for each scan the index that would bound it, or why none would."""

from __future__ import annotations

import re
import time

from bench.rollup import BIG_TABLES


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def captured(fn, *args, **kwargs) -> tuple[float, object, list[dict]]:
    """Run once recording every query: its SQL (CaptureQueriesContext, which rounds times
    to the millisecond) and its time measured to the microsecond around the driver call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    durations: list[float] = []

    def clock(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append(time.perf_counter() - started)

    with CaptureQueriesContext(connection) as context, connection.execute_wrapper(clock):
        seconds, result = timed(fn, *args, **kwargs)
    queries = [dict(q) for q in context.captured_queries]
    if len(durations) == len(queries):
        for query, duration in zip(queries, durations, strict=True):
            query["time"] = f"{duration:.6f}"
    return seconds, result, queries


_PLAN_SCAN = re.compile(r"(Parallel )?Seq Scan on (\w+)")
_FILTER = re.compile(r"^\s*Filter: (.*)$")


def explain(sql: str, analyze: bool) -> list[str]:
    """The plan of a captured statement; with ANALYZE it runs, in a rolled-back
    transaction (the rollup's statements write)."""
    from django.db import connection, transaction

    options = "ANALYZE, BUFFERS, " if analyze else ""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN ({options}FORMAT TEXT) {sql}")
            plan = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return plan


def seq_scans(plan: list[str]) -> list[dict]:
    """Sequential scans of the big tables in a plan, with their filters."""
    found = []
    for number, line in enumerate(plan):
        match = _PLAN_SCAN.search(line)
        if not match or match.group(2) not in BIG_TABLES:
            continue
        condition = ""
        for following in plan[number + 1 : number + 4]:
            filtered = _FILTER.match(following)
            if filtered:
                condition = filtered.group(1)
                break
        found.append({"table": match.group(2), "node": line.strip(), "filter": condition})
    return found


_COMPARISON = re.compile(r"\(?(\w+)\)?(?:::\w+)? (=|>=|<=|<|>) '")


def existing_indexes(table: str) -> list[tuple[str, list[str], bool]]:
    """(name, key columns, partial?) of the table's indexes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.indexrelid::regclass::text,
                      array_agg(a.attname ORDER BY k.ord), i.indpred IS NOT NULL
               FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = %s::regclass AND k.ord <= i.indnkeyatts
               GROUP BY 1, 3""",
            [table],
        )
        return cursor.fetchall()


def index_hint(table: str, condition: str) -> str:
    """Why the scan reads the whole table and what would bound it: an index on the
    columns the filter compares to constants (equalities first, then one range), unless
    one exists already, or a range with no lower bound (all the history before the day)."""
    if not condition:
        return (
            f"no filter: every row of {table} is read (an aggregate over the whole table,"
            " e.g. a running total): split it into day-bounded queries or keep the total"
            " incrementally"
        )
    equality: list[str] = []
    ranges: dict[str, set[str]] = {}
    for column, operator in _COMPARISON.findall(condition):
        if operator == "=":
            if column not in equality:
                equality.append(column)
        else:
            ranges.setdefault(column, set()).add(operator)
    if not equality and not ranges:
        return f"the filter compares no column to a constant: {condition[:120]}"
    unbounded = [c for c, ops in ranges.items() if ops <= {"<", "<="}]
    key = [*equality, *list(ranges)[:1]]
    matching = [(n, part) for n, cols, part in existing_indexes(table) if cols[: len(key)] == key]
    covering = [name for name, part in matching if not part]
    partial = [name for name, part in matching if part]
    if unbounded:
        already = f" ({covering[0]} exists on those columns)" if covering else ""
        return (
            f"{', '.join(unbounded)} has no lower bound: the query reads all the history"
            f" before the day, a large share of the table, so no index helps{already};"
            " bound it to the day (e.g. add the day's changes to the previous day's figure)"
        )
    if covering:
        return f"{covering[0]} already covers ({', '.join(key)}): check the estimates"
    only = f" ({partial[0]} is partial: its condition does not match)" if partial else ""
    return f"CREATE INDEX ON {table} ({', '.join(key)}) would serve this filter{only}"


def analyse_queries(queries: list[dict], total_seconds: float) -> dict:
    """Slowest statements, the sequential scans of big tables in any of them (plans
    without ANALYZE), and EXPLAIN ANALYZE of the slowest when one dominates."""
    statements = [
        {"seconds": float(q["time"]), "sql": q["sql"]}
        for q in queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "UPDATE", "DELETE"))
    ]
    ranked = sorted(statements, key=lambda s: -s["seconds"])
    slowest = [
        {"seconds": round(s["seconds"], 3), "sql": " ".join(s["sql"].split())[:300]}
        for s in ranked[:5]
    ]
    scans = []
    for statement in ranked:
        try:
            plan = explain(statement["sql"], analyze=False)
        except Exception as exc:
            scans.append({"error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        for scan in seq_scans(plan):
            scans.append(
                {
                    **scan,
                    "statement_seconds": round(statement["seconds"], 3),
                    "sql": " ".join(statement["sql"].split())[:300],
                    "hint": index_hint(scan["table"], scan["filter"]),
                }
            )
    dominant = None
    if ranked and ranked[0]["seconds"] >= 0.3 * total_seconds and ranked[0]["seconds"] >= 0.05:
        top = ranked[0]
        try:
            plan = explain(top["sql"], analyze=True)
        except Exception as exc:
            plan = [f"EXPLAIN ANALYZE failed: {type(exc).__name__}: {exc}"]
        dominant = {
            "seconds": round(top["seconds"], 3),
            "share": round(top["seconds"] / total_seconds, 2),
            "sql": " ".join(top["sql"].split()),
            "plan": plan,
        }
    return {"slowest": slowest, "seq_scans": scans, "dominant": dominant}
