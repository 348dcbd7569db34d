"""Manager dashboards (``/dashboards/``): overview, AI models, agents, knowledge base.

Only managers (group "Managers") and superusers; others get 403, visitors the sign-in
page. Every page takes a date range (``?start=&end=``, both days included) and reads the
daily rollups only. ``?csv=<chart>`` downloads one chart's numbers.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from analytics import selectors, services
from analytics.dashboards import Chart, Column, duration, money, percent
from config.db_router import replica_reads
from core.roles import is_manager

PRESETS = (7, 30, 90, 365)


def manager_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_manager(request.user):
            raise PermissionDenied("Dashboards are for managers.")
        return view(request, *args, **kwargs)

    return wrapper


class RangeForm(forms.Form):
    """The days to show; by default the 30 days up to today."""

    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end, error = selectors.date_range(
            data.get("start"), data.get("end"), today=services.local_today()
        )
        if error:
            self.add_error("start", error)
        data["start"], data["end"] = start, end
        return data


# Every dashboard reads the rollups from the read replica when there is one (after the
# sign-in and role checks, which stay on default): config.db_router.
@replica_reads()
def _page(request, template: str, build, **context):
    form = RangeForm(request.GET)
    if form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        charts, extra = build(request, start, end)
    else:
        end = services.local_today()
        start = end - dt.timedelta(days=29)
        charts, extra = [], {}
    wanted = request.GET.get("csv")
    if wanted and form.is_valid():
        chart = next((c for c in charts if c.name == wanted), None)
        if chart is None:
            raise Http404("No such chart.")
        return chart.csv_response(start=start, end=end)
    presets = [
        (days, (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()) for days in PRESETS
    ]
    return render(
        request,
        template,
        {
            "form": form,
            "start": start,
            "end": end,
            "presets": presets,
            "charts": {c.name: c for c in charts},
            "last_rollup": selectors.last_rollup_day(),
            **extra,
            **context,
        },
    )


# ======================================================================================
# Overview
# ======================================================================================

DAY = Column("day", "Day", "date")


def _overview(request, start, end):
    days = list(selectors.overview_days(start, end).values())
    totals = selectors.overview_totals(start, end)
    goal = totals["ai_resolution_goal"]
    charts = [
        Chart(
            "tickets",
            "Tickets opened, resolved and escalated",
            [
                DAY,
                Column("tickets_opened", "Opened", chart=True),
                Column("tickets_resolved", "Resolved", chart=True),
                Column("tickets_escalated", "Escalated", chart=True),
                Column("tickets_reopened", "Reopened"),
            ],
            days,
        ),
        Chart(
            "channels",
            "Tickets opened by channel",
            [
                DAY,
                Column("opened_web", "Portal", chart=True),
                Column("opened_email", "Email", chart=True),
                Column("opened_chat", "Chat", chart=True),
                Column("opened_api", "API", chart=True),
            ],
            days,
        ),
        Chart(
            "backlog",
            "Open tickets at the end of each day",
            [DAY, Column("backlog", "Open tickets", chart=True)],
            days,
        ),
        Chart(
            "ai_resolution",
            "AI autonomous resolution rate",
            [
                DAY,
                Column("ai_resolution_rate", "Resolved by the AI", "percent", chart=True),
                Column("ai_resolved", "AI resolved"),
                Column("tickets_resolved", "All resolved"),
            ],
            days,
            goal=goal,
            goal_label=f"Goal {goal:.0%}",
            description="Share of the day's resolved tickets the AI resolved with no person.",
        ),
        Chart(
            "first_response",
            "Median first response time",
            [
                DAY,
                Column("median_first_response_seconds", "Median first response", "duration", True),
                Column("first_responses", "First responses"),
            ],
            days,
        ),
        Chart(
            "csat",
            "Customer satisfaction (1–5)",
            [
                DAY,
                Column("csat_average", "Average rating", "decimal", chart=True),
                Column("csat_count", "Ratings"),
            ],
            days,
            kind="bar",
        ),
        Chart(
            "cost",
            "AI cost per resolved ticket",
            [
                DAY,
                Column("cost_per_resolved_usd", "Cost per resolved ticket", "money", chart=True),
                Column("ai_cost_usd", "AI cost", "money"),
                Column("ai_requests", "AI requests"),
                Column("copilot_cost_usd", "Of which copilot", "money"),
                Column("copilot_requests", "Copilot calls"),
            ],
            days,
        ),
        Chart(
            "sla",
            "SLA breaches",
            [DAY, Column("sla_breaches", "Breaches", chart=True)],
            days,
            kind="bar",
        ),
        Chart(
            "deflection",
            "Self-service: deflected searches and AI answers",
            [
                DAY,
                Column("searches_signed_in", "Signed-in searches"),
                Column("searches_deflected", "Not followed by a ticket", chart=True),
                Column("ai_answers", "AI answers"),
                Column("ai_answers_deflected", "Not escalated within 24 h", chart=True),
            ],
            days,
            kind="bar",
        ),
        Chart(
            "tags",
            "Tickets by tag",
            [
                Column("tag_name", "Tag", "text"),
                Column("tickets_opened", "Opened", chart=True),
                Column("tickets_resolved", "Resolved", chart=True),
            ],
            list(selectors.top_tags(start, end)),
            kind="bar",
            description="The most used tags: tickets opened over these days that carry "
            "the tag, and tickets with the tag resolved.",
        ),
    ]
    rate = totals["ai_resolution_rate"]
    kpis = [
        {
            "key": "ai_resolution_rate",
            "label": "AI autonomous resolution",
            "value": percent(rate),
            "note": f"goal {percent(goal)}",
            "ok": None if rate is None else rate >= goal,
        },
        {
            "key": "first_response",
            "label": "Median first response",
            "value": duration(totals["median_first_response_seconds"]),
            "note": f"{totals['tickets_opened']:,} tickets opened",
        },
        {
            "key": "csat",
            "label": "Customer satisfaction",
            "value": "—" if totals["csat_average"] is None else f"{totals['csat_average']:.2f} / 5",
            "note": f"{totals['csat_count']:,} ratings",
        },
        {
            "key": "cost_per_resolved",
            "label": "AI cost per resolved ticket",
            "value": money(totals["cost_per_resolved_usd"]),
            "note": f"{totals['tickets_resolved']:,} resolved",
        },
        {
            "key": "sla_breaches",
            "label": "SLA breaches",
            "value": f"{totals['sla_breaches']:,}",
            "note": f"{totals['tickets_escalated']:,} escalated",
        },
        {
            "key": "backlog",
            "label": "Open at the end",
            "value": "—" if totals["backlog"] is None else f"{totals['backlog']:,}",
            "note": "tickets still open",
        },
    ]
    return charts, {"totals": totals, "kpis": kpis}


@manager_required
def overview(request):
    return _page(request, "analytics/overview.html", _overview)


# ======================================================================================
# AI models
# ======================================================================================


def _models(request, start, end):
    models = list(selectors.model_comparison(start, end))
    buckets = selectors.calibration(start, end)
    names = [m["ai_model"] for m in models]
    by_bucket = {(b["ai_model"], b["bucket"]): b for b in buckets}
    calibration_rows = []
    for bucket in range(10):
        row = {"bucket": f"{bucket / 10:.1f}–{(bucket + 1) / 10:.1f}", "ideal": bucket / 10 + 0.05}
        for n, name in enumerate(names):
            cell = by_bucket.get((name, bucket), {})
            row[f"rate{n}"] = cell.get("success_rate")
            row[f"count{n}"] = cell.get("count", 0)
        calibration_rows.append(row)
    model = Column("ai_model", "Model", "text")
    charts = [
        Chart(
            "models",
            "Success rate and confidence by model",
            [
                model,
                Column("requests", "Requests"),
                Column("success_rate", "Successful resolutions", "percent", chart=True),
                Column("avg_confidence", "Average confidence", "percent", chart=True),
                Column("escalations", "Escalations"),
                Column("high_confidence", "Confidence > 0.8"),
                Column("low_confidence", "Confidence < 0.5"),
            ],
            models,
            kind="bar",
        ),
        Chart(
            "model_cost",
            "Cost per request by model",
            [
                model,
                Column("cost_per_request_usd", "Cost per request", "money", chart=True),
                Column("cost_usd", "Total cost", "money"),
                Column("input_tokens", "Tokens in"),
                Column("output_tokens", "Tokens out"),
                Column("copilot_requests", "Copilot calls"),
                Column("copilot_cost_usd", "Copilot cost", "money"),
            ],
            models,
            kind="bar",
            description="Requests are the AI agent's analyses; the copilot's calls by agents "
            "on the ticket page are counted beside them.",
        ),
        Chart(
            "model_satisfaction",
            "Satisfaction with the AI's resolutions",
            [
                model,
                Column("satisfaction_average", "Average rating", "decimal", chart=True),
                Column("satisfaction_count", "Ratings"),
                Column("positive_ratings", "Rated 4–5"),
                Column("negative_ratings", "Rated 1–2"),
            ],
            models,
            kind="bar",
        ),
        Chart(
            "calibration",
            "Calibration: stated confidence against actual success",
            [
                Column("bucket", "Confidence", "text"),
                Column("ideal", "Perfect calibration", "percent", chart=True),
                *[
                    column
                    for n, name in enumerate(names)
                    for column in (
                        Column(f"rate{n}", f"{name}: success", "percent", chart=True),
                        Column(f"count{n}", f"{name}: analyses"),
                    )
                ],
            ],
            calibration_rows,
            description=(
                "Of the analyses with a confidence in each band, the share that resolved the "
                "ticket with no person and were not reopened within 7 days."
            ),
        ),
    ]
    return charts, {"models": models}


@manager_required
def ai_models(request):
    return _page(request, "analytics/models.html", _models)


# ======================================================================================
# Agents
# ======================================================================================


def _agents(request, start, end):
    board = list(selectors.agent_leaderboard(start, end))
    for row in board:
        full = f"{row['agent__first_name']} {row['agent__last_name']}".strip()
        row["name"] = full or row["agent__username"]
    chosen = None
    try:
        agent_id = int(request.GET.get("agent", ""))
    except ValueError:
        agent_id = board[0]["agent"] if board else None
    if agent_id is not None:
        chosen = get_user_model().objects.filter(pk=agent_id, is_staff=True).first()
    name = Column("name", "Agent", "text")
    charts = [
        Chart(
            "leaderboard",
            "Agents' leaderboard",
            [
                name,
                Column("tickets_resolved", "Resolved", chart=True),
                Column("tickets_handled", "Handled", chart=True),
                Column("escalated_further", "Escalated further"),
                Column("median_first_response_seconds", "First response", "duration"),
                Column("avg_resolution_seconds", "Resolution time", "duration"),
                Column("csat_average", "CSAT", "decimal"),
                Column("training_examples_created", "Training examples"),
                Column("quality_score", "Quality score", "decimal"),
            ],
            board,
            kind="bar",
        )
    ]
    if chosen is not None:
        days = list(selectors.agent_days(chosen.pk, start, end).values())
        charts.append(
            Chart(
                "agent_trend",
                f"{chosen.get_full_name() or chosen.username}, day by day",
                [
                    DAY,
                    Column("tickets_handled", "Handled", chart=True),
                    Column("tickets_resolved", "Resolved", chart=True),
                    Column(
                        "median_first_response_seconds", "First response", "duration", True, "y2"
                    ),
                    Column("csat_average", "CSAT", "decimal"),
                    Column("quality_score", "Quality score", "decimal"),
                ],
                days,
            )
        )
    return charts, {"board": board, "chosen": chosen}


@manager_required
def agents(request):
    return _page(request, "analytics/agents.html", _agents)


# ======================================================================================
# Knowledge base
# ======================================================================================


def _knowledge(request, start, end):
    top = list(selectors.top_articles(start, end))
    unhelpful = list(selectors.unhelpful_cited_articles(start, end))
    gaps = list(selectors.content_gaps(start, end))
    title = Column("article__title", "Article", "text")
    charts = [
        Chart(
            "top_articles",
            "Top articles",
            [
                title,
                Column("views", "Views", chart=True),
                Column("search_impressions", "Search impressions"),
                Column("ai_references", "Cited by the AI", chart=True),
                Column("helpful_ratio", "Helpful", "percent"),
            ],
            top,
            kind="bar",
        ),
        Chart(
            "unhelpful_cited",
            "Cited by the AI, rated unhelpful",
            [
                title,
                Column("ai_references", "Cited by the AI"),
                Column("not_helpful_votes", "Voted not helpful"),
                Column("cited_rated_low", "Tickets rated 1–2"),
                Column("cited_rated", "Tickets rated"),
            ],
            unhelpful,
            draw=False,
            description="Articles to fix first: the AI relies on them and customers disagree.",
        ),
        Chart(
            "content_gaps",
            "Searches with no good result",
            [
                Column("query", "Search", "text"),
                Column("searches", "Searches"),
                Column("best_similarity", "Best match", "percent"),
            ],
            gaps,
            draw=False,
            description="What people looked for and the help center does not answer.",
        ),
    ]
    totals = selectors.overview_totals(start, end)
    return charts, {
        "search_deflection": percent(totals["search_deflection_rate"]),
        "ai_deflection": percent(totals["ai_answer_deflection_rate"]),
    }


@manager_required
def knowledge(request):
    return _page(request, "analytics/knowledge.html", _knowledge)
