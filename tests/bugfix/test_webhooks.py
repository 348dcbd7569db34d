"""GitHub's webhook: signatures, replays, and each event path; plus who may reach the
links (API and admin) and the review screen."""

import hashlib
import hmac
import json
import uuid

import pytest
import responses
from rest_framework.test import APIClient

from bugfix import services
from bugfix.models import GithubDelivery
from support import services as support_services
from tests.integrations import github_api as gh

pytestmark = pytest.mark.django_db
URL = "/integrations/github/webhook/"
SECRET = "whsec_test"


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_TOKEN = "ghp_test_token"
    settings.GITHUB_REPOSITORY = gh.REPO
    settings.GITHUB_WEBHOOK_SECRET = SECRET


@pytest.fixture
def link(customer, agent, django_capture_on_commit_callbacks):
    ticket = support_services.ticket_open(
        requester=customer, subject="Export hangs", description="It hangs at 95%.", type="bug"
    )
    support_services.ticket_escalate(ticket=ticket, kind="complex", reason="bug", actor=agent)
    with django_capture_on_commit_callbacks():
        link = services.github_link_request(ticket=ticket, actor=agent)
    services.link_record_issue(link_id=link.pk, number=1347, url=f"{gh.HTML}/issues/1347")
    return services.link_record_pull_request(
        link_id=link.pk,
        branch=f"helpdesk/ticket-{ticket.reference.lower()}",
        base="main",
        number=1348,
        url=f"{gh.HTML}/pull/1348",
    )


def send(client, event, payload, *, secret=SECRET, delivery=None, signature=None):
    body = json.dumps(payload).encode()
    headers = {
        "HTTP_X_GITHUB_EVENT": event,
        "HTTP_X_GITHUB_DELIVERY": delivery or str(uuid.uuid4()),
    }
    if signature is None and secret is not None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(URL, data=body, content_type="application/json", **headers)


def pr_closed(merged, number=1348):
    return {
        "action": "closed",
        "number": number,
        "pull_request": gh.pull(number, state="closed", merged=merged, draft=False),
        "repository": gh.repo(),
        "sender": gh.user(),
    }


def test_missing_or_bad_signatures_are_refused(client, link):
    assert send(client, "pull_request", pr_closed(True), secret=None).status_code == 401
    assert send(client, "pull_request", pr_closed(True), secret="wrong").status_code == 401
    assert send(client, "pull_request", pr_closed(True), signature="sha1=abc").status_code == 401
    link.refresh_from_db()
    assert link.status == "pr_drafted" and not GithubDelivery.objects.exists()


def test_without_a_configured_secret_everything_is_refused(client, link, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""
    assert send(client, "ping", {"zen": "Keep it simple."}, secret="").status_code == 401


def test_ping_and_unknown_events(client):
    assert send(client, "ping", {"zen": "Design for failure."}).status_code == 200
    assert send(client, "star", {"action": "created"}).status_code == 204


def test_a_merged_pr_resolves_the_ticket_and_tells_the_customer(client, link):
    response = send(client, "pull_request", pr_closed(True))

    assert response.status_code == 200 and response.json()["status"] == "processed"
    link.refresh_from_db()
    ticket = link.ticket
    ticket.refresh_from_db()
    assert link.status == "pr_merged" and ticket.status == "resolved"
    message = ticket.messages.filter(is_internal=False).last()
    assert "fix for the problem you reported has been merged" in message.body
    assert ticket.events.filter(kind="github_pr_merged").exists()


def test_a_replayed_delivery_changes_nothing(client, link):
    delivery = str(uuid.uuid4())
    assert send(client, "pull_request", pr_closed(True), delivery=delivery).status_code == 200
    count = link.ticket.messages.count()
    response = send(client, "pull_request", pr_closed(True), delivery=delivery)
    assert response.status_code == 200 and response.json()["status"] == "duplicate"
    assert link.ticket.messages.count() == count
    assert GithubDelivery.objects.count() == 1


def test_a_pr_closed_without_merge_rejects_the_fix(client, link):
    send(client, "pull_request", pr_closed(False))
    link.refresh_from_db()
    assert link.status == "pr_rejected"
    assert link.ticket.status == "escalated"  # still with the team


def test_checks_update_the_link(client, link):
    suite = {
        "action": "completed",
        "check_suite": {
            "id": 5,
            "head_branch": link.branch_name,
            "head_sha": "7638417db6d59f3c431d3e1f261cc637155684cd",
            "status": "completed",
            "conclusion": "success",
            "pull_requests": [{"number": 1348, "url": f"{gh.R}/pulls/1348"}],
        },
        "repository": gh.repo(),
    }
    send(client, "check_suite", suite)
    link.refresh_from_db()
    assert link.checks_state == "passed" and link.ready_for_review
    run = {
        "action": "completed",
        "check_run": {
            "id": 4,
            "name": "tests",
            "status": "completed",
            "conclusion": "failure",
            "check_suite": {"id": 5, "head_branch": link.branch_name},
            "pull_requests": [{"number": 1348}],
        },
        "repository": gh.repo(),
    }
    send(client, "check_run", run)
    link.refresh_from_db()
    assert link.checks_state == "failed" and not link.ready_for_review


def test_a_closed_issue_is_noted_on_the_ticket(client, link):
    payload = {"action": "closed", "issue": gh.issue(1347, state="closed"), "repository": gh.repo()}
    assert send(client, "issues", payload).json()["status"] == "processed"
    event = link.ticket.events.get(kind="github_issue_closed")
    assert event.metadata["state_reason"] == "completed" and event.is_internal


def test_events_about_other_repositories_are_ignored(client, link):
    other = {**pr_closed(True), "repository": {**gh.repo(), "full_name": "someone/else"}}
    assert send(client, "pull_request", other).json()["status"] == "ignored"
    link.refresh_from_db()
    assert link.status == "pr_drafted"


def test_a_failed_delivery_is_kept_and_can_be_delivered_again(client, link, monkeypatch):
    delivery = str(uuid.uuid4())

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(services, "link_pull_request_closed", broken)
    assert send(client, "pull_request", pr_closed(True), delivery=delivery).status_code == 500
    assert GithubDelivery.objects.get(delivery_id=delivery).result == "failed"
    monkeypatch.undo()
    assert send(client, "pull_request", pr_closed(True), delivery=delivery).status_code == 200
    link.refresh_from_db()
    assert link.status == "pr_merged"


# ---- who may see and act ---------------------------------------------------------------------


def test_links_are_for_staff_only(client, link, customer, agent):
    api = APIClient()
    api.force_authenticate(customer)
    assert api.get("/api/github-links/").status_code == 403
    ticket_url = f"/api/tickets/{link.ticket.reference}/github/"
    assert api.post(ticket_url).status_code == 403
    client.force_login(customer)
    assert client.get(f"/admin/bugfix/githublink/{link.pk}/change/").status_code == 302
    api.force_authenticate(agent)
    rows = api.get("/api/github-links/").json()["results"]
    assert [r["pr_number"] for r in rows] == [1348]


def test_an_agent_sends_a_ticket_to_github_over_the_api(
    customer, agent, django_capture_on_commit_callbacks
):
    ticket = support_services.ticket_open(
        requester=customer, subject="Crash", description="It crashes."
    )
    api = APIClient()
    api.force_authenticate(agent)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(f"/api/tickets/{ticket.reference}/github/")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    ticket.refresh_from_db()
    assert ticket.type == "bug" and len(callbacks) == 2  # the issue's task, the live update


def test_the_review_screen_shows_the_diff_and_approves(client, link, agent):
    services.link_record_suggestion(
        link_id=link.pk,
        files=[{"path": "flowboard/export.py", "original": "a = 1\n", "content": "a = 2\n"}],
        explanation="Off by one.",
        confidence=0.9,
        model="claude-sonnet-4-6",
    )
    services.link_record_checks(link_id=link.pk, state="passed")
    client.force_login(agent)
    listing = client.get("/admin/bugfix/githublink/", {"review": "ready"})
    assert list(listing.context["cl"].result_list) == [link]
    page = client.get(f"/admin/bugfix/githublink/{link.pk}/change/").content.decode()
    assert '<div class="del">-a = 1</div>' in page and '<div class="add">+a = 2</div>' in page
    with responses.RequestsMock() as mock:
        mock.get(f"{gh.M}/pulls/1348", json=gh.pull(1348))
        mock.post(
            f"{gh.MOCK_API}/graphql",
            json={
                "data": {
                    "markPullRequestReadyForReview": {
                        "clientMutationId": None,
                        "pullRequest": {"isDraft": False},
                    }
                }
            },
        )
        response = client.post(
            f"/admin/bugfix/githublink/{link.pk}/review/", {"decision": "approve"}
        )
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.review_decision == "approved" and link.reviewed_by == agent
