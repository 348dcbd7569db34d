"""The overview dashboard in a real headless Chromium: charts drawn by the vendored
Chart.js from six weeks of demo history; screenshots go to artifacts/."""

import pytest

from analytics import services
from analytics.demo import load_history
from analytics.models import DailyOverview
from tests.conftest import ARTIFACTS, browser_login
from tests.factories import AgentFactory, CustomerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def history(db):
    for n in range(6):
        CustomerFactory(username=f"customer-{n}")
    AgentFactory(username="agent-1")
    AgentFactory(username="agent-2")
    assert load_history(days=42) > 200
    assert load_history(days=42) == 0  # idempotent: a second load adds nothing
    return services.local_today()


def test_the_overview_draws_its_charts(browser, live_server, history, manager):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_login(page, live_server, manager.username)

    page.goto(f"{live_server.url}/dashboards/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    page.wait_for_selector("#ai_resolution[data-drawn=true]")
    drawn = page.locator("figure[data-drawn=true]").count()
    assert drawn == page.locator("canvas[data-chart]").count() == 9
    rate = page.locator("[data-kpi=ai_resolution_rate]").inner_text()
    assert rate.endswith("%") and rate != "—"
    # A canvas with a chart on it is not blank: some pixels differ from the first one.
    assert page.evaluate(
        """() => {
            const c = document.querySelector('#tickets canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 4; i < d.length; i += 4) if (d[i] !== d[0] || d[i+3] !== d[3]) return true;
            return false;
        }"""
    )
    page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)
    assert (ARTIFACTS / "dashboard-overview.png").stat().st_size > 50_000

    page.get_by_role("link", name="AI models").click()
    page.wait_for_selector("#calibration[data-drawn=true]")
    page.screenshot(path=ARTIFACTS / "dashboard-models.png", full_page=True)
    assert not errors
    assert DailyOverview.objects.count() == 43
    page.close()
