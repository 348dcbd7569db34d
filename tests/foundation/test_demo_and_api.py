import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from support.demo import DEMO_LOGINS


@pytest.mark.django_db
def test_staff_groups_exist_after_migrations():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"Agents", "Managers"}


@pytest.mark.long(30)
@pytest.mark.django_db
def test_demo_data_loads_twice_without_duplicates_and_its_logins_work(capsys):
    from feedback.models import FeatureRequest, Vote
    from support.models import Organization, Ticket, TicketEvent

    def counts():
        return (
            Ticket.objects.count(),
            TicketEvent.objects.count(),
            Organization.objects.count(),
            get_user_model().objects.count(),
            FeatureRequest.objects.count(),
            Vote.objects.count(),
        )

    call_command("load_demo_data")
    first = counts()
    call_command("load_demo_data")

    assert counts() == first
    # The roadmap has something in each column, with revenue-weighted votes.
    assert set(FeatureRequest.objects.values_list("status", flat=True)) >= {
        "open",
        "planned",
        "in_progress",
        "completed",
    }
    top = FeatureRequest.objects.order_by("-weighted_score").first()
    assert top.weighted_score > top.upvotes - top.downvotes
    assert first[0] >= 8
    assert set(Ticket.objects.values_list("status", flat=True)) >= {
        "new",
        "awaiting_customer",
        "escalated",
        "resolved",
        "closed",
    }
    users = get_user_model().objects.filter(username__in=[d.username for d in DEMO_LOGINS])
    assert users.count() == 4
    out = capsys.readouterr().out
    for login in DEMO_LOGINS:
        assert login.password in out
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin-demo")
    assert not users.get(username="customer").is_staff

    # Each demo login's roles, as /api/me/ reports them over token authentication (in
    # this test: loading the demo takes seconds).
    expected = {
        "customer": ["customer"],
        "agent": ["agent"],
        "manager": ["agent", "manager"],
        "admin": ["manager", "admin"],
    }
    answered = {}
    for username in expected:
        client = APIClient()
        token = Token.objects.create(user=users.get(username=username))
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = client.get("/api/me/")
        assert response.status_code == 200
        answered[username] = response.json()["roles"]
    assert answered == expected


@pytest.mark.django_db
def test_api_me_needs_authentication():
    response = APIClient().get("/api/me/")

    assert response.status_code == 401


@pytest.mark.django_db
def test_openapi_schema_describes_the_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/me/" in schema["paths"]
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
def test_api_docs_page_uses_local_swagger_assets(client):
    response = client.get("/api/docs/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.django_db
def test_openapi_schema_is_valid_and_warning_free(tmp_path):
    """Every endpoint is described precisely enough for drf-spectacular to raise no warning,
    and the result validates against the OpenAPI specification."""
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/feature-requests/{id}/vote/" in target.read_text()
