"""A person sends a ticket to GitHub ("Send to GitHub as a bug" in admin, ``POST
/api/tickets/{reference}/github/``), and triage's confirmed bug reaches GitHub through the
``ticket_bug_confirmed`` event: one transaction each, for the team only."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from bugfix import services, subscribers
from bugfix.models import GithubLink
from core import events
from core.errors import DomainError, NotPermitted
from core.models import OutboxItem
from support import services as support_services
from support.models import TicketEvent
from tests.integrations import github_api as gh

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/support/ticket/"
ACTION = "send_to_github_action"


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_TOKEN = "ghp_test_token"
    settings.GITHUB_REPOSITORY = gh.REPO
    return settings


@pytest.fixture
def question(customer):
    return support_services.ticket_open(
        requester=customer, subject="Export crashes", description="It crashes on export."
    )


def type_changes(ticket):
    return TicketEvent.objects.filter(ticket=ticket, kind="field_changed", field="type")


# ---- the service -----------------------------------------------------------------------------


def test_sending_makes_the_ticket_a_bug_and_owes_the_issue(
    question, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        link = services.ticket_send_to_github(ticket=question, actor=agent)

    question.refresh_from_db()
    assert question.type == "bug"
    (change,) = type_changes(question)
    assert (change.old_value, change.new_value, change.actor) == ("general", "bug", agent)
    assert (link.ticket, link.repository, link.status) == (question, gh.REPO, "pending")
    (item,) = OutboxItem.objects.filter(task="bugfix.tasks.create_issue")
    # After commit: the issue's task handed to the broker, the type change published live.
    assert item.args == [link.pk] and len(callbacks) == 2


def test_a_bug_already_is_not_changed_again(customer, agent, django_capture_on_commit_callbacks):
    bug = support_services.ticket_open(
        requester=customer, subject="Crash", description="It crashes.", type="bug"
    )
    with django_capture_on_commit_callbacks():
        services.ticket_send_to_github(ticket=bug, actor=agent)
    assert not type_changes(bug).exists() and GithubLink.objects.filter(ticket=bug).exists()


def test_when_github_is_not_configured_the_type_stays(question, agent, settings):
    settings.GITHUB_TOKEN = ""

    with pytest.raises(DomainError, match="GitHub is not configured"):
        services.ticket_send_to_github(ticket=question, actor=agent)

    question.refresh_from_db()
    assert question.type == "general"  # one transaction: the type change rolled back
    assert not type_changes(question).exists()
    assert (
        not GithubLink.objects.exists()
        and not OutboxItem.objects.filter(task__startswith="bugfix.").exists()
    )


def test_a_customer_cannot_send_and_changes_nothing(question, customer):
    with pytest.raises(NotPermitted, match="Only the team"):
        services.ticket_send_to_github(ticket=question, actor=customer)
    question.refresh_from_db()
    assert question.type == "general" and not type_changes(question).exists()


# ---- triage's event --------------------------------------------------------------------------


def test_bugfix_listens_to_confirmed_bugs():
    assert subscribers.ticket_bug_confirmed in events._handlers["ticket_bug_confirmed"]


@pytest.fixture
def bug(customer):
    return support_services.ticket_open(
        requester=customer, subject="Crash", description="It crashes.", type="bug"
    )


def test_a_confirmed_bug_gets_its_link(bug):
    events.announce("ticket_bug_confirmed", ticket_id=bug.pk)

    link = GithubLink.objects.get(ticket=bug)
    assert (link.repository, link.status) == (gh.REPO, "pending")
    (item,) = OutboxItem.objects.filter(task="bugfix.tasks.create_issue")
    assert item.args == [link.pk]


def test_the_link_rolls_back_with_the_announcer(bug):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.announce("ticket_bug_confirmed", ticket_id=bug.pk)
        assert GithubLink.objects.filter(ticket=bug).exists()
        raise RuntimeError("the pipeline failed after triage")

    assert not GithubLink.objects.exists()
    assert not OutboxItem.objects.filter(task__startswith="bugfix.").exists()


def test_a_confirmed_bug_without_github_settings_sends_nothing(bug, settings):
    settings.GITHUB_REPOSITORY = ""
    events.announce("ticket_bug_confirmed", ticket_id=bug.pk)
    assert not GithubLink.objects.exists()


# ---- admin: the bulk action on support's ticket list ----------------------------------------


def test_the_ticket_list_offers_the_action(client, agent):
    client.force_login(agent)
    choices = dict(client.get(CHANGELIST).context["action_form"].fields["action"].choices)
    assert choices[ACTION] == "Send to GitHub as a bug"


def test_an_agent_sends_tickets_in_bulk(client, agent, customer, question):
    other = support_services.ticket_open(requester=customer, subject="B", description="Broken.")
    client.force_login(agent)

    response = client.post(
        CHANGELIST, {"action": ACTION, "_selected_action": [question.pk, other.pk]}, follow=True
    )

    texts = [str(m) for m in response.context["messages"]]
    assert texts == ["Sent to GitHub: 2 ticket(s)."]
    assert GithubLink.objects.filter(ticket__in=[question, other]).count() == 2
    question.refresh_from_db()
    assert question.type == "bug"


def test_a_refused_bulk_send_says_why_and_keeps_the_type(client, agent, question, settings):
    settings.GITHUB_TOKEN = ""
    client.force_login(agent)

    response = client.post(
        CHANGELIST, {"action": ACTION, "_selected_action": [question.pk]}, follow=True
    )

    texts = [str(m) for m in response.context["messages"]]
    assert texts == [
        f"{question.reference}: GitHub is not configured: set GITHUB_TOKEN and "
        "GITHUB_REPOSITORY (or the organization's repository)."
    ]
    question.refresh_from_db()
    assert question.type == "general" and not GithubLink.objects.exists()


def test_customers_cannot_use_the_bulk_action(client, customer, question):
    client.force_login(customer)
    response = client.post(CHANGELIST, {"action": ACTION, "_selected_action": [question.pk]})
    assert response.status_code == 302 and "/login/" in response["Location"]
    question.refresh_from_db()
    assert question.type == "general" and not GithubLink.objects.exists()


# ---- API: POST /api/tickets/{reference}/github/ ---------------------------------------------


def url(ticket):
    return f"/api/tickets/{ticket.reference}/github/"


def test_an_agent_sends_over_the_api(question, agent, django_capture_on_commit_callbacks):
    api = APIClient()
    api.force_authenticate(agent)
    with django_capture_on_commit_callbacks():
        response = api.post(url(question))

    assert response.status_code == 202
    body = response.json()
    assert (body["ticket"], body["status"], body["repository"]) == (
        question.reference,
        "pending",
        gh.REPO,
    )


def test_the_api_refuses_customers_and_strangers(question, customer):
    api = APIClient()
    assert api.post(url(question)).status_code in (401, 403)
    api.force_authenticate(customer)
    response = api.post(url(question))
    assert response.status_code == 403
    question.refresh_from_db()
    assert question.type == "general" and not GithubLink.objects.exists()


def test_an_unknown_ticket_is_404(agent):
    api = APIClient()
    api.force_authenticate(agent)
    assert api.post("/api/tickets/HD-00000000-0000/github/").status_code == 404


def test_the_api_reports_a_refusal_and_keeps_the_type(question, agent, settings):
    settings.GITHUB_REPOSITORY = ""
    api = APIClient()
    api.force_authenticate(agent)

    response = api.post(url(question))

    assert response.status_code == 400
    assert "GitHub is not configured" in response.json()["detail"]
    question.refresh_from_db()
    assert question.type == "general"


def test_the_schema_keeps_the_operation():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/tickets/{reference}/github/"]["post"]
    assert operation["operationId"] == "tickets_github_create"  # as before the move
    assert operation["description"].startswith("Mark the ticket as a bug and send it to GitHub")
    accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert accepted == {"$ref": "#/components/schemas/GithubLink"}
    assert "200" not in operation["responses"]
