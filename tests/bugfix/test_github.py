"""Bug tickets to GitHub through PyGithub's real code, with GitHub's HTTP API mocked at the
transport (``responses``): issue creation and its idempotency, rate limits, errors, the
AI-drafted fix as a draft PR, and the review gate."""

import base64
import time

import pytest
import responses
from celery.exceptions import Retry

from bugfix import automation, services, tasks
from bugfix.models import GithubLink
from core.models import OutboxItem
from integrations.llm.anthropic import AnthropicProvider
from integrations.llm.local import LocalProvider
from support import services as support_services
from tests.http_mock import MockRouter
from tests.integrations import github_api as gh

pytestmark = pytest.mark.django_db
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_TOKEN = "ghp_test_token"
    settings.GITHUB_REPOSITORY = gh.REPO
    settings.GITHUB_WEBHOOK_SECRET = "whsec_test"
    return settings


@pytest.fixture
def bug(customer):
    return support_services.ticket_open(
        requester=customer,
        subject="Export hangs at 95%",
        type="bug",
        description=(
            "Exporting a board to CSV never finishes. I am Casey (casey@acme.example).\n"
            "1. Open the Roadmap board\n2. Choose Export → CSV\n3. The spinner stays at 95%\n"
            "Chrome 131 on macOS 15.1, Flowboard version 4.2.1"
        ),
    )


@pytest.fixture
def link(bug, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():  # the task is run by each test itself
        return services.github_link_request(ticket=bug)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def issues_listing(mock, items=()):
    mock.get(f"{gh.M}/issues", json=list(items))


# ---- the issue -------------------------------------------------------------------------------


def test_a_bug_ticket_becomes_one_issue_with_a_scrubbed_body(link, bug, mock):
    issues_listing(mock)
    mock.post(f"{gh.M}/issues", json=gh.issue(1347), status=201)

    result = tasks.create_issue.apply(args=[link.pk]).get()

    link.refresh_from_db()
    assert result == "issue #1347"
    assert (link.status, link.issue_number, link.issue_url) == (
        "issue_created",
        1347,
        f"{gh.HTML}/issues/1347",
    )
    sent = gh.body(gh.requests_to(mock, "POST", f"{gh.M}/issues")[0])
    assert sent["labels"] == ["bug", "from-helpdesk"]
    assert sent["title"] == f"Export hangs at 95% [{bug.reference}]"
    body = sent["body"]
    assert "casey@acme.example" not in body and "Casey" not in body and "[EMAIL]" in body
    assert "1. Open the Roadmap board" in body and "3. The spinner stays at 95%" in body
    assert "- Chrome 131" in body and "- macOS 15.1" in body and "- version 4.2.1" in body
    assert f"<!-- helpdesk-ticket:{bug.reference} -->" in body
    assert f"/admin/support/ticket/{bug.pk}/change/" in body
    event = bug.events.get(kind="github_issue_created")
    assert event.metadata["issue_number"] == 1347 and event.is_internal
    # The request carried the token (PyGithub's real auth code).
    assert mock.calls[-1].request.headers["Authorization"] == "token ghp_test_token"


def test_a_redelivered_task_opens_no_second_issue(link, mock):
    issues_listing(mock)
    mock.post(f"{gh.M}/issues", json=gh.issue(1347), status=201)
    tasks.create_issue.apply(args=[link.pk])
    tasks.create_issue.apply(args=[link.pk])
    assert len(gh.requests_to(mock, "POST", f"{gh.M}/issues")) == 1


def test_an_issue_created_before_a_crash_is_found_by_its_marker(link, bug, mock):
    marker = f"<!-- helpdesk-ticket:{bug.reference} -->"
    issues_listing(mock, [gh.issue(99, body="other"), gh.issue(1350, body=f"text\n{marker}")])

    tasks.create_issue.apply(args=[link.pk])

    link.refresh_from_db()
    assert link.issue_number == 1350
    assert gh.requests_to(mock, "POST", f"{gh.M}/issues") == []


def test_asking_twice_makes_one_link(bug, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = services.github_link_request(ticket=bug)
        second = services.github_link_request(ticket=bug)
    assert first.pk == second.pk and len(callbacks) == 1


def test_not_configured_is_a_clear_error(bug, settings):
    settings.GITHUB_TOKEN = ""
    with pytest.raises(Exception, match="GitHub is not configured"):
        services.github_link_request(ticket=bug)
    assert not GithubLink.objects.exists()


def test_a_rate_limit_is_retried_at_its_reset_time(link, mock, monkeypatch):
    reset = int(time.time()) + 120
    issues_listing(mock)
    mock.post(
        f"{gh.M}/issues",
        status=403,
        json=gh.error(403, "API rate limit exceeded for user ID 1."),
        headers={
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
        },
    )
    countdowns = []

    def fake_retry(*args, countdown=None, **kwargs):
        countdowns.append(countdown)
        raise Retry("rate limited", when=countdown)

    monkeypatch.setattr(tasks.create_issue, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.create_issue.run(link.pk)

    link.refresh_from_db()
    assert 110 <= countdowns[0] <= 121
    assert link.status == "pending" and "rate limit" in link.last_error and link.attempts == 1


def test_a_server_error_then_success(link, mock):
    issues_listing(mock)
    mock.post(f"{gh.M}/issues", status=502, json=gh.error(502, "Server Error"))
    mock.post(f"{gh.M}/issues", status=201, json=gh.issue(1351))

    tasks.create_issue.apply(args=[link.pk])  # eager: the retry runs at once

    link.refresh_from_db()
    assert (link.status, link.issue_number, link.attempts, link.last_error) == (
        "issue_created",
        1351,
        1,
        "",
    )


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, "Not Found", "Repository acme/flowboard was not found"),
        (401, "Bad credentials", "bad credentials"),
    ],
)
def test_permanent_errors_are_recorded_and_the_ticket_is_untouched(
    link, bug, mock, status, message, expected
):
    mock.get(f"{gh.M}/issues", status=status, json=gh.error(status, message))
    before = bug.status

    assert tasks.create_issue.apply(args=[link.pk]).get() == "failed"

    link.refresh_from_db()
    bug.refresh_from_db()
    assert link.status == "failed" and expected in link.last_error
    assert bug.status == before
    assert bug.events.filter(kind="github_failed").exists()
    assert len(mock.calls) == 1  # not retried


def test_asking_again_after_a_failure_starts_over(link, bug, django_capture_on_commit_callbacks):
    services.link_record_failure(link_id=link.pk, message="Bad credentials", final=True)
    with django_capture_on_commit_callbacks() as callbacks:
        again = services.github_link_request(ticket=bug)
    assert again.status == "pending" and again.last_error == "" and len(callbacks) == 1


# ---- the fix ---------------------------------------------------------------------------------

EXPORT_PY = "def export(board):\n    rows = board.rows()\n    return to_csv(rows[:-1])\n"
FIXED_PY = "def export(board):\n    rows = board.rows()\n    return to_csv(rows)\n"


def claude_fix(router, *, confidence, files=None):
    tool_input = {
        "files": files
        if files is not None
        else [{"path": "flowboard/export.py", "content": FIXED_PY}],
        "explanation": "The export dropped the last row and waited for it forever.",
        "confidence": confidence,
    }
    router.post(ANTHROPIC_URL).respond(
        200,
        json={
            "id": "msg_01FixFixFix",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [
                {"type": "tool_use", "id": "toolu_01Fix", "name": "code_fix", "input": tool_input}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 3200,
                "output_tokens": 400,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    )
    return AnthropicProvider(api_key="sk-test", http_client=router.client())


def repository_with_export_file(mock, branch):
    mock.get(gh.M, json=gh.repo())
    mock.get(
        f"{gh.M}/git/trees/main",
        json=gh.tree(["flowboard/export.py", "README.md"]),
    )
    mock.get(
        f"{gh.M}/contents/flowboard/export.py", json=gh.contents("flowboard/export.py", EXPORT_PY)
    )
    mock.get(f"{gh.M}/git/ref/heads/main", json=gh.ref())
    mock.post(f"{gh.M}/git/refs", status=201, json=gh.ref(f"heads/{branch}"))
    mock.put(
        f"{gh.M}/contents/flowboard/export.py", json=gh.file_commit("flowboard/export.py", branch)
    )
    mock.get(f"{gh.M}/pulls", json=[])
    mock.post(f"{gh.M}/pulls", status=201, json=gh.pull(1348, branch=branch))


@pytest.fixture
def issued(link):
    return services.link_record_issue(link_id=link.pk, number=1347, url=f"{gh.HTML}/issues/1347")


def test_a_confident_fix_becomes_a_draft_pr_on_its_own_branch(issued, bug, mock):
    branch = f"helpdesk/ticket-{bug.reference.lower()}"
    repository_with_export_file(mock, branch)
    provider = claude_fix(MockRouter(), confidence=0.9)

    link = automation.draft_pull_request(issued.pk, provider=provider)

    assert (link.status, link.pr_number, link.branch_name, link.base_branch) == (
        "pr_drafted",
        1348,
        branch,
        "main",
    )
    assert link.fix_confidence == 0.9 and link.fix_model == "claude-sonnet-4-6"
    assert link.suggested_files == [
        {"path": "flowboard/export.py", "original": EXPORT_PY, "content": FIXED_PY}
    ]
    assert gh.body(gh.requests_to(mock, "POST", f"{gh.M}/git/refs")[0]) == {
        "ref": f"refs/heads/{branch}",
        "sha": gh.SHA_MAIN,
    }
    put = gh.body(gh.requests_to(mock, "PUT", f"{gh.M}/contents/flowboard/export.py")[0])
    assert put["branch"] == branch and base64.b64decode(put["content"]).decode() == FIXED_PY
    pr = gh.body(gh.requests_to(mock, "POST", f"{gh.M}/pulls")[0])
    assert (pr["draft"], pr["base"], pr["head"]) == (True, "main", branch)
    assert "Refs #1347" in pr["body"]
    # Never the default branch, never a merge.
    assert all(
        gh.body(r).get("branch") != "main"
        for r in gh.requests_to(mock, "PUT", f"{gh.M}/contents/flowboard/export.py")
    )
    assert not [c for c in mock.calls if c.request.url.endswith("/merge")]
    assert bug.events.filter(kind="github_pr_drafted").exists()


def test_a_low_confidence_fix_is_kept_as_a_suggestion_only(issued, mock):
    mock.get(gh.M, json=gh.repo())
    mock.get(f"{gh.M}/git/trees/main", json=gh.tree(["flowboard/export.py"]))
    mock.get(
        f"{gh.M}/contents/flowboard/export.py", json=gh.contents("flowboard/export.py", EXPORT_PY)
    )

    link = automation.draft_pull_request(
        issued.pk, provider=claude_fix(MockRouter(), confidence=0.4)
    )

    assert (link.status, link.pr_number, link.fix_confidence) == ("issue_created", None, 0.4)
    assert link.suggested_files[0]["content"] == FIXED_PY
    assert gh.requests_to(mock, "POST", f"{gh.M}/git/refs") == []
    assert gh.requests_to(mock, "POST", f"{gh.M}/pulls") == []


def test_workflow_files_are_never_touched(issued, mock):
    mock.get(gh.M, json=gh.repo())
    mock.get(f"{gh.M}/git/trees/main", json=gh.tree(["flowboard/export.py"]))
    mock.get(
        f"{gh.M}/contents/flowboard/export.py", json=gh.contents("flowboard/export.py", EXPORT_PY)
    )
    provider = claude_fix(
        MockRouter(),
        confidence=0.95,
        files=[{"path": ".github/workflows/ci.yml", "content": "on: push"}],
    )
    link = automation.draft_pull_request(issued.pk, provider=provider)
    assert link.suggested_files == [] and link.pr_number is None


def test_the_local_provider_suggests_nothing(issued, mock):
    link = automation.draft_pull_request(issued.pk, provider=LocalProvider())
    assert link.status == "issue_created" and "does not write code" in link.fix_explanation
    assert len(mock.calls) == 0


def test_a_retried_draft_reuses_the_branch_and_the_open_pr(issued, bug, mock):
    branch = f"helpdesk/ticket-{bug.reference.lower()}"
    mock.get(gh.M, json=gh.repo())
    mock.get(f"{gh.M}/git/trees/main", json=gh.tree(["flowboard/export.py"]))
    path = f"{gh.M}/contents/flowboard/export.py"
    mock.get(
        path,
        json=gh.contents("flowboard/export.py", EXPORT_PY),
        match=[responses.matchers.query_param_matcher({"ref": "main"})],
    )
    # The branch exists from the first try and already has the fixed file.
    mock.get(
        path,
        json=gh.contents("flowboard/export.py", FIXED_PY, ref=branch),
        match=[responses.matchers.query_param_matcher({"ref": branch})],
    )
    mock.get(f"{gh.M}/git/ref/heads/main", json=gh.ref())
    mock.post(f"{gh.M}/git/refs", status=422, json=gh.error(422, "Reference already exists"))
    mock.get(f"{gh.M}/pulls", json=[gh.pull(1348, branch=branch)])

    link = automation.draft_pull_request(
        issued.pk, provider=claude_fix(MockRouter(), confidence=0.9)
    )

    assert link.pr_number == 1348
    assert gh.requests_to(mock, "POST", f"{gh.M}/pulls") == []
    assert gh.requests_to(mock, "PUT", path) == []  # nothing written twice


# ---- the review gate -------------------------------------------------------------------------


@pytest.fixture
def drafted(issued, bug):
    link = services.link_record_pull_request(
        link_id=issued.pk,
        branch="helpdesk/ticket-x",
        base="main",
        number=1348,
        url=f"{gh.HTML}/pull/1348",
    )
    return services.link_record_checks(link_id=link.pk, state="passed")


def test_approve_marks_the_pr_ready_for_review(drafted, agent, mock):
    assert drafted.ready_for_review
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

    link = automation.review(drafted, actor=agent, approved=True)

    graphql = gh.body(gh.requests_to(mock, "POST", f"{gh.MOCK_API}/graphql")[0])
    assert "markPullRequestReadyForReview" in graphql["query"]
    assert graphql["variables"]["input"]["pullRequestId"] == "PR_kwDOABCD5M5abcd"
    assert (link.review_decision, link.reviewed_by, link.status) == (
        "approved",
        agent,
        "pr_drafted",
    )
    assert not link.ready_for_review


def test_reject_closes_the_pr_with_the_reason(drafted, agent, mock):
    mock.get(f"{gh.M}/pulls/1348", json=gh.pull(1348))
    mock.post(
        f"{gh.M}/issues/1348/comments", status=201, json={"id": 1, "body": "x", "user": gh.user()}
    )
    mock.patch(f"{gh.M}/pulls/1348", json=gh.pull(1348, state="closed"))

    with pytest.raises(Exception, match="Say why"):
        automation.review(drafted, actor=agent, approved=False, note="")
    link = automation.review(drafted, actor=agent, approved=False, note="Fixes the symptom only")

    assert gh.body(gh.requests_to(mock, "PATCH", f"{gh.M}/pulls/1348")[0]) == {"state": "closed"}
    comment = gh.body(gh.requests_to(mock, "POST", f"{gh.M}/issues/1348/comments")[0])
    assert "Fixes the symptom only" in comment["body"]
    assert (link.status, link.review_decision) == ("pr_rejected", "rejected")


def test_a_customer_cannot_review_and_a_pr_is_reviewed_once(drafted, agent, customer, mock):
    with pytest.raises(Exception, match="Only the team"):
        automation.review(drafted, actor=customer, approved=True)
    services.link_record_review(link_id=drafted.pk, actor=agent, approved=True)
    drafted.refresh_from_db()
    with pytest.raises(Exception, match="reviewed already"):
        automation.review(drafted, actor=agent, approved=True)
    assert len(mock.calls) == 0


def test_when_triage_confirms_a_bug_the_ticket_goes_to_github(
    kb, customer, django_capture_on_commit_callbacks
):
    from support.ai import pipeline

    ticket = support_services.ticket_open(
        requester=customer,
        subject="App crashes when exporting",
        description="The app crashes with an error every time I click export. It is broken.",
        type="bug",
    )
    with django_capture_on_commit_callbacks(execute=False):
        pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())
    link = GithubLink.objects.get(ticket=ticket)
    assert (link.repository, link.status) == (gh.REPO, "pending")
    # The issue is owed in the same transaction, through the outbox.
    (item,) = OutboxItem.objects.filter(task="bugfix.tasks.create_issue")
    assert (item.args, item.status) == ([link.pk], "pending")


def test_without_github_settings_triage_sends_nothing(kb, customer, settings):
    from support.ai import pipeline

    settings.GITHUB_TOKEN = ""
    ticket = support_services.ticket_open(
        requester=customer, subject="App crashes", description="It crashes, broken.", type="bug"
    )
    pipeline.analyze_ticket(ticket.pk, provider=LocalProvider())
    assert not GithubLink.objects.exists()
