"""Manager dashboards and the analytics API: who gets in, what they show, CSV, ranges."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from analytics import services
from tests.analytics.conftest import DAY, next_day
from tests.conftest import FACTORY_PASSWORD
from tests.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db

PAGES = ["analytics:overview", "analytics:models", "analytics:agents", "analytics:knowledge"]
API = ["api-analytics-overview", "api-analytics-models", "api-analytics-agents"]
API += ["api-analytics-knowledge"]
RANGE = {"start": "2026-06-09", "end": "2026-06-11"}


@pytest.fixture
def rolled_up(history):
    for day in (DAY - (next_day() - DAY), DAY, next_day()):
        services.rollup_day(day)
    return history


def _signed_in(client, user):
    client.force_login(user)
    return client


# ======================================================================================
# Who may look
# ======================================================================================


@pytest.mark.parametrize("name", PAGES)
def test_visitors_are_sent_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("who", ["customer", "agent"])
def test_customers_and_agents_are_refused(client, customer, name, who):
    user = customer if who == "customer" else AgentFactory()
    assert _signed_in(client, user).get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_managers_and_superusers_get_in(client, manager, name):
    assert _signed_in(client, manager).get(reverse(name)).status_code == 200
    admin = UserFactory(is_staff=True, is_superuser=True)
    assert _signed_in(client, admin).get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", API)
def test_the_api_is_for_managers_only(client, customer, manager, name):
    url = reverse(name)
    assert client.get(url).status_code == 401
    assert _signed_in(client, customer).get(url).status_code == 403
    assert _signed_in(client, AgentFactory()).get(url).status_code == 403
    assert _signed_in(client, manager).get(url).status_code == 200


def test_the_api_takes_a_managers_token(client, manager):
    token = client.post(
        reverse("api-token"), {"username": manager.username, "password": FACTORY_PASSWORD}
    ).json()["token"]
    response = client.get(reverse("api-analytics-overview"), HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200


# ======================================================================================
# What they show
# ======================================================================================


def test_the_overview_shows_the_ranges_figures(client, manager, rolled_up):
    response = _signed_in(client, manager).get(reverse("analytics:overview"), RANGE)
    page = response.content.decode()

    kpis = {kpi["key"]: kpi["value"] for kpi in response.context["kpis"]}
    # Over the three days, only DAY resolved tickets: T1 and T2 by the AI, T3 by a person.
    totals = response.context["totals"]
    assert totals["tickets_resolved"] == 3 and totals["ai_resolved"] == 2
    assert kpis["ai_resolution_rate"] == "66.7 %"
    assert kpis["sla_breaches"] == "2"  # T6 on DAY, T4 the day after
    assert kpis["csat"] == "3.50 / 5"
    # Each chart has its data for the chart library and an accessible table.
    drawn = json.loads(page.split('id="tickets-data" type="application/json">')[1].split("<")[0])
    assert drawn["labels"] == ["2026-06-09", "2026-06-10", "2026-06-11"]
    assert drawn["datasets"][0] == {
        "label": "Opened",
        "data": [2, 3, 1],  # T3 and T6 opened late the day before
        "unit": "number",
        "axis": "y",
    }
    assert (
        '<caption class="visually-hidden">Tickets opened, resolved and escalated</caption>' in page
    )
    assert "vendor/chartjs/chart.umd.min.js" in page
    # Openings by channel: the history's tickets came through the portal.
    channels = json.loads(
        page.split('id="channels-data" type="application/json">')[1].split("<")[0]
    )
    assert [d["label"] for d in channels["datasets"]] == ["Portal", "Email", "Chat", "API"]
    assert channels["datasets"][0]["data"] == [2, 3, 1]
    assert channels["datasets"][1]["data"] == [0, 0, 0]


def test_a_chart_downloads_as_csv(client, manager, rolled_up):
    response = _signed_in(client, manager).get(
        reverse("analytics:overview"), {**RANGE, "csv": "tickets"}
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "tickets-2026-06-09-2026-06-11.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day", "Opened", "Resolved", "Escalated", "Reopened"]
    assert rows[2] == ["2026-06-10", "3", "3", "1", "0"]


def test_an_unknown_chart_is_not_found(client, manager):
    response = _signed_in(client, manager).get(reverse("analytics:overview"), {"csv": "nope"})
    assert response.status_code == 404


def test_a_backwards_range_is_a_form_error(client, manager):
    response = _signed_in(client, manager).get(
        reverse("analytics:overview"), {"start": "2026-06-11", "end": "2026-06-09"}
    )
    assert response.status_code == 200
    assert "The first day must come before the last one." in response.content.decode()


def test_the_models_page_compares_models_and_shows_calibration(client, manager, rolled_up):
    response = _signed_in(client, manager).get(reverse("analytics:models"), RANGE)
    a, b = rolled_up["models"]
    models = {row["ai_model"]: row for row in response.context["models"]}
    assert models[a]["success_rate"] == pytest.approx(0.5)
    assert models[b]["success_rate"] == 0
    calibration = response.context["charts"]["calibration"]
    top = calibration.rows[9]
    assert top["bucket"] == "0.9–1.0"
    assert top[f"rate{list(models).index(a)}"] == 1.0
    assert f"{a}: success" in response.content.decode()


def test_the_agents_page_ranks_agents_and_shows_one_day_by_day(client, manager, rolled_up):
    agent = rolled_up["agent"]
    response = _signed_in(client, manager).get(reverse("analytics:agents"), RANGE)
    board = response.context["board"]
    assert [row["agent"] for row in board] == [agent.pk]
    assert board[0]["quality_score"] == pytest.approx(62.5)
    assert response.context["chosen"] == agent
    trend = response.context["charts"]["agent_trend"]
    assert [row["day"] for row in trend.rows] == [DAY]


def test_the_knowledge_page_lists_articles_and_content_gaps(client, manager, rolled_up):
    response = _signed_in(client, manager).get(reverse("analytics:knowledge"), RANGE)
    page = response.content.decode()
    assert "Refunds" in page
    assert "webhooks retries" in page
    assert response.context["search_deflection"] == "50.0 %"


def test_the_api_gives_the_same_figures(client, manager, rolled_up):
    client = _signed_in(client, manager)
    overview = client.get(reverse("api-analytics-overview"), RANGE).json()
    assert overview["totals"]["ai_resolution_rate"] == pytest.approx(2 / 3)
    assert [d["day"] for d in overview["days"]] == ["2026-06-09", "2026-06-10", "2026-06-11"]
    assert overview["days"][1]["tickets_opened"] == 3

    models = client.get(reverse("api-analytics-models"), RANGE).json()
    assert {m["ai_model"] for m in models["models"]} == set(rolled_up["models"])
    assert any(c["bucket"] == 9 and c["success_rate"] == 1.0 for c in models["calibration"])

    agents = client.get(
        reverse("api-analytics-agents"), {**RANGE, "agent": rolled_up["agent"].pk}
    ).json()
    assert agents["agents"][0]["username"] == rolled_up["agent"].username
    assert [d["day"] for d in agents["agent_days"]] == ["2026-06-10"]

    knowledge = client.get(reverse("api-analytics-knowledge"), RANGE).json()
    assert knowledge["content_gaps"][0] == {
        "query": "webhooks retries",
        "searches": 2,
        "best_similarity": 0.1,
    }


@pytest.mark.parametrize(
    "params, field",
    [
        ({"start": "2026-06-11", "end": "2026-06-09"}, "start"),
        ({"start": "2025-01-01", "end": "2026-06-09"}, "start"),
        ({"start": "June"}, "start"),
    ],
)
def test_the_api_explains_a_bad_range(client, manager, params, field):
    response = _signed_in(client, manager).get(reverse("api-analytics-overview"), params)
    assert response.status_code == 400
    assert response.json()[field]


# ======================================================================================
# Speed: rollups only, a fixed number of queries whatever the range
# ======================================================================================


@pytest.mark.parametrize("name", PAGES)
def test_pages_run_a_fixed_number_of_queries(
    client, manager, rolled_up, name, django_assert_max_num_queries
):
    client = _signed_in(client, manager)
    client.get(reverse(name), RANGE)  # session and user loaded once
    with django_assert_max_num_queries(12):
        client.get(reverse(name), {"start": "2025-06-12", "end": "2026-06-11"})


def test_managers_find_the_dashboards_from_the_portal_and_the_admin(client, manager):
    client = _signed_in(client, manager)
    overview = reverse("analytics:overview")
    assert f'href="{overview}"' in client.get(reverse("knowledge:index")).content.decode()
    assert f'href="{overview}"' in client.get(reverse("admin:index")).content.decode()


def test_agents_are_not_shown_a_link_they_cannot_follow(client):
    client = _signed_in(client, AgentFactory())
    overview = reverse("analytics:overview")
    assert f'href="{overview}"' not in client.get(reverse("knowledge:index")).content.decode()
    assert f'href="{overview}"' not in client.get(reverse("admin:index")).content.decode()
