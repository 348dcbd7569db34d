"""AI throughput: how many new tickets the AI agent analyses per second with the local
provider (offline LLM, all-MiniLM-L6-v2 embeddings).

Own embedded PostgreSQL + Valkey in ``.data/bench-ai``, the demo help center (embedded
once), a few customers; each run opens M new tickets (default 1,000) whose questions are
real customer requests (the Bitext and StackFAQ development sets in ``../shared/data``)
and measures how fast they are analysed:

- ``--mode worker`` (default): the tickets are opened through ``services.ticket_open``
  while no worker runs (the outbox hands each analysis to the broker), then a real Celery
  worker starts (prefork, ``--concurrency 2``, as ``make run``) and drains them;
- ``--mode inprocess``: the pipeline in this process, ticket after ticket
  (``support.ai.pipeline.analyze_ticket``), or a batch at a time with ``--batch K``
  (``analyze_tickets``: one embedding call per batch); ``--profile`` prints the top of a
  cProfile of one run.

Reported per run: analyses per second from the first analysis started to the last one
finished, p50/p95 of one analysis (its first to its last AI event), the tickets' final
statuses, and the CPU time spent per analysis by the analysing processes (the worker's
tree, or this process) plus PostgreSQL and Valkey: on a machine other work shares, that
figure, not the wall clock, says what two idle cores would sustain (``2 s / CPU per
analysis``, reported as ``idle_2_core_capacity``). Then the medians of ``--runs`` runs (3)
and ``/proc/loadavg`` before and after. From the project folder:

    .venv/bin/python bench/ai_throughput.py                       # worker, 3 x 1,000
    .venv/bin/python bench/ai_throughput.py --mode inprocess --tickets 200
    .venv/bin/python -m config.embedded stop --dir .data/bench-ai
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SHARED_DATA = BASE_DIR.parent / "shared" / "data"

# Never load the benchmark into the dev database by accident.
if not os.environ.get("DATABASE_URL"):
    os.environ.setdefault("HELPDESK_SERVICES_DIR", str(BASE_DIR / ".data" / "bench-ai"))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["HELPDESK_LLM_PROVIDER"] = "local"
os.environ["HELPDESK_EMBEDDINGS_PROVIDER"] = "local"
sys.path.insert(0, str(BASE_DIR))

import django  # noqa: E402
import psutil  # noqa: E402

from bench.common import log, summary  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from core.outbox import writing_history  # noqa: E402
from knowledge import services as kb_services  # noqa: E402
from knowledge.demo import load_demo_knowledge  # noqa: E402
from knowledge.models import Article  # noqa: E402
from support import services  # noqa: E402
from support.models import Ticket, TicketEvent  # noqa: E402

FINAL = ("resolved", "escalated", "awaiting_customer")
CUSTOMERS = 20
SEED = 20261202


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def questions(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(subject, description) pairs: real requests, three Bitext ones for one StackFAQ."""
    bitext = [r["text"] for r in read_jsonl(SHARED_DATA / "triage_bitext_dev.jsonl")]
    stackfaq = [r["query"] for r in read_jsonl(SHARED_DATA / "retrieval_stackfaq_dev.jsonl")]
    out = []
    for i in range(count):
        text = rng.choice(stackfaq if i % 4 == 3 else bitext).strip()
        subject = " ".join(text.split()[:8])[:120] or "Question"
        out.append((subject, text))
    return out


# ---- setup ---------------------------------------------------------------------------------


def prepare() -> list:
    """Schema, the demo help center with its embeddings, the bench customers."""
    call_command("migrate", verbosity=0)
    with writing_history():  # nothing queued: the articles are embedded right here
        load_demo_knowledge()
        for article in Article.objects.filter(status="published"):
            if not article.chunks.exists():
                kb_services.article_embed(article_id=article.pk)
    from django.contrib.auth import get_user_model

    User = get_user_model()
    customers = []
    for i in range(CUSTOMERS):
        user = User.objects.filter(username=f"aibench{i}").first()
        if user is None:
            with writing_history():
                user = services.customer_register(
                    username=f"aibench{i}",
                    email=f"aibench{i}@example.com",
                    password=uuid.uuid4().hex,
                )
        customers.append(user)
    return customers


def open_tickets(customers, pairs, *, queue: bool) -> list[int]:
    """Open the tickets; ``queue``: as the portal does (the outbox owes an analysis each),
    else as history (nothing queued, the in-process mode analyses them itself)."""
    ids = []
    for i, (subject, description) in enumerate(pairs):
        requester = customers[i % len(customers)]
        if queue:
            ticket = services.ticket_open(
                requester=requester, subject=subject, description=description
            )
        else:
            with writing_history():
                ticket = services.ticket_open(
                    requester=requester, subject=subject, description=description
                )
        ids.append(ticket.pk)
    return ids


# ---- measuring -----------------------------------------------------------------------------


def server_processes() -> list[psutil.Process]:
    """This benchmark's PostgreSQL (postmaster) and Valkey."""
    from urllib.parse import urlparse

    from django.conf import settings

    data_dir = str(BASE_DIR / ".data" / "bench-ai" / "postgres")
    valkey = f":{urlparse(settings.REDIS_URL).port}"
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if ("postgres" in command and f"-D {data_dir}" in command) or (
            "valkey-server" in command and command.endswith(valkey)
        ):
            found.append(process)
    return found


def cpu_seconds(roots: list[psutil.Process]) -> float:
    """User + system CPU of these processes, their live children and reaped ones."""
    total = 0.0
    for root in roots:
        try:
            times = root.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
        except psutil.Error:
            continue
    return total


def figures(ids: list[int], app_cpu: float, server_cpu: float) -> dict:
    """Throughput and per-analysis latency from the tickets' audit events."""
    rows = (
        TicketEvent.objects.filter(ticket_id__in=ids, actor_kind="ai")
        .values("ticket_id")
        .annotate(start=Min("created_at"), end=Max("created_at"))
    )
    spans = {r["ticket_id"]: (r["start"], r["end"]) for r in rows}
    first = min(s for s, _ in spans.values())
    last = max(e for _, e in spans.values())
    wall = (last - first).total_seconds()
    latencies = [(e - s).total_seconds() * 1000 for s, e in spans.values()]
    statuses = Counter(Ticket.objects.filter(pk__in=ids).values_list("status", flat=True))
    return {
        "analysed": len(spans),
        "seconds": round(wall, 2),
        "per_second": round(len(spans) / wall, 2) if wall else None,
        "latency_ms": summary(latencies),
        "decisions": dict(statuses),
        "cpu_ms_per_analysis": round((app_cpu + server_cpu) * 1000 / len(spans), 1),
        "of_which_postgres_valkey_ms": round(server_cpu * 1000 / len(spans), 1),
        "idle_2_core_capacity": round(2 * len(spans) / (app_cpu + server_cpu), 1),
    }


def wait_done(ids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = Ticket.objects.filter(pk__in=ids).exclude(status__in=FINAL).count()
        if not left:
            return
        time.sleep(0.5)
    raise SystemExit(f"{left} tickets not analysed after {timeout:.0f} s")


# ---- modes ---------------------------------------------------------------------------------


def run_inprocess(ids: list[int], *, batch: int, profile: bool) -> None:
    from support.ai import pipeline

    # CPU time, not wall time: on a shared machine waiting says little.
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler:
        profiler.enable()
    if batch > 1 and hasattr(pipeline, "analyze_tickets"):
        for start in range(0, len(ids), batch):
            pipeline.analyze_tickets(ids[start : start + batch])
    else:
        for ticket_id in ids:
            pipeline.analyze_ticket(ticket_id)
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
        log(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        log(out.getvalue())


def worker_command(concurrency: int) -> list[str]:
    return [
        *(sys.executable, "-m", "celery", "-A", "config", "worker"),
        *("--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle"),
        *("--hostname", f"aibench-{uuid.uuid4().hex[:6]}@%h"),
    ]


def start_worker(concurrency: int) -> subprocess.Popen:
    log_path = BASE_DIR / ".data" / "bench-ai" / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own command line)
            worker_command(concurrency),
            cwd=BASE_DIR,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def worker_start_cpu(concurrency: int) -> float:
    """CPU a worker spends starting (imports, each process loading the model) with no
    work: subtracted from a run's, which is about analyses."""
    process = start_worker(concurrency)
    try:
        tree, last = psutil.Process(process.pid), -1.0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(2)
            used = cpu_seconds([tree])
            if len(tree.children()) >= concurrency and used - last < 0.05:
                return used
            last = used
        return last
    finally:
        stop_worker(process)


def run_worker(ids: list[int], *, concurrency: int, timeout: float) -> float:
    """Start the worker, wait until it analysed every ticket; returns its tree's CPU."""
    process = start_worker(concurrency)
    try:
        wait_done(ids, timeout)
        return cpu_seconds([psutil.Process(process.pid)])
    finally:
        stop_worker(process)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("worker", "inprocess"), default="worker")
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="in-process: tickets per batch")
    parser.add_argument("--profile", action="store_true", help="in-process: cProfile")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)

    customers = prepare()
    start_cpu = 0.0
    if args.mode == "worker":
        start_cpu = worker_start_cpu(args.concurrency)
    else:
        from support.ai import planner

        planner.warm_up()  # as each worker process does when it starts
    rng = random.Random(SEED)  # noqa: S311 (reproducible questions, not secrets)
    load_before = Path("/proc/loadavg").read_text().strip()
    runs = []
    for n in range(args.runs):
        pairs = questions(args.tickets, rng)
        ids = open_tickets(customers, pairs, queue=args.mode == "worker")
        log(f"run {n + 1}: {len(ids)} tickets opened")
        servers = server_processes()
        servers_before = cpu_seconds(servers)
        if args.mode == "worker":
            cpu = run_worker(ids, concurrency=args.concurrency, timeout=args.timeout)
            cpu -= start_cpu
        else:
            before = time.process_time()
            run_inprocess(ids, batch=args.batch, profile=args.profile and n == 0)
            cpu = time.process_time() - before
        result = figures(ids, cpu, cpu_seconds(servers) - servers_before)
        log(f"run {n + 1}: {json.dumps(result)}")
        runs.append(result)
    report = {
        "mode": args.mode,
        "tickets": args.tickets,
        "batch": args.batch if args.mode == "inprocess" else None,
        "concurrency": args.concurrency if args.mode == "worker" else None,
        "runs": runs,
        "median_per_second": statistics.median(r["per_second"] for r in runs),
        "median_p50_ms": statistics.median(r["latency_ms"]["p50"] for r in runs),
        "median_p95_ms": statistics.median(r["latency_ms"]["p95"] for r in runs),
        "median_cpu_ms_per_analysis": statistics.median(r["cpu_ms_per_analysis"] for r in runs),
        "median_idle_2_core_capacity": statistics.median(r["idle_2_core_capacity"] for r in runs),
        "worker_start_cpu_s": round(start_cpu, 1) if args.mode == "worker" else None,
        "loadavg_before": load_before,
        "loadavg_after": Path("/proc/loadavg").read_text().strip(),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
