"""The API keeps its OpenAPI contract: schemathesis against a live server, for every role.

A uvicorn server (``DEBUG=false``) serves the committed test data; the schemathesis CLI
reads ``/api/schema/``, generates valid and invalid requests for every operation and checks
each answer: no 5xx, a documented status code, content type, headers and body, invalid input
rejected, valid input accepted. Path parameters point at real objects so operations get past
their 404. The run is deterministic (fixed seed, derandomized generation); exclusions and
their reasons are in README.md ("API contract").
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from rest_framework.authtoken.models import Token

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.services.rules import rule_create
from bugfix.models import GithubLink
from support.models import (
    BusinessCalendar,
    CustomField,
    HttpAction,
    SlaPolicy,
    TrainingExample,
)
from tests.conftest import BASE_DIR, stop_process, subprocess_env
from tests.factories import AgentFactory, CustomerFactory, ManagerFactory, SavedReplyFactory
from tests.production.conftest import free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    # Four roles one after another: about 20, 65, 20 and 145 s on two busy cores.
    pytest.mark.timeout(900),
]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
)
# An organization admin reads the same operations and schemas as a customer (more rows:
# tests/support/test_api.py covers what each may see); its run is left out for time.
ROLES = ("anonymous", "customer", "agent", "manager")
# Operations a customer is refused with 403 whatever the input (each app's API tests check
# who may call what); the customer's run skips their coverage phase.
STAFF_ONLY_TAGS = (
    "action-runs",
    "analytics",
    "automation",
    "github-links",
    "saved-replies",
    "sla",
    "tags",
    "training-examples",
)
# Per operation and role. The coverage phase (boundary values of every parameter) is most
# of the time: the test takes about 3 minutes on a 2-core machine (6 when it is shared).
MAX_EXAMPLES = 4
SEED = 16
SECRET = "schemathesis-" + "Qm4Vb8Nc2Xz6Lk1Hj5Gf9Ds3Ap7Wt0Ey" * 2

# Valid data may still name an object that does not exist (an id or slug the schema cannot
# know, or one an earlier case renamed or hid), or set a staff-only field as a customer:
# these answer 400 with the field's error, and positive_data_acceptance takes that 400 as an
# answer here (README.md, "API contract").
NAMES_OTHER_OBJECTS = {
    "POST /api/auth/token/": "username and password of an account",
    "POST /api/tickets/": "requester (staff only); custom_fields as /api/custom-fields/ says",
    # Custom field values and filters must fit their field's definition (kind, choices).
    "GET /api/tickets/": "custom_field: key:value of a defined field",
    "GET /api/tickets/export/": "custom_field: key:value of a defined field",
    "PATCH /api/tickets/{reference}/": "custom_fields as /api/custom-fields/ says",
    "POST /api/custom-fields/": "key unique; choices for a choice field",
    "PUT /api/custom-fields/{id}/": "the key stays; choices for a choice field",
    "PATCH /api/custom-fields/{id}/": "the key stays; choices for a choice field",
    # A tag name is unique (stored lower case, spaces as hyphens: "A b" is "a-b").
    "POST /api/tags/": "name unique once normalized",
    "PUT /api/tags/{id}/": "name unique once normalized",
    "PATCH /api/tags/{id}/": "name unique once normalized",
    "POST /api/tickets/{reference}/messages/": "is_internal (staff only)",
    "POST /api/tickets/{reference}/assign/": "assignee",
    "POST /api/tickets/{reference}/saved-reply/": "saved_reply",
    "POST /api/tickets/bulk/": "assignee, saved_reply, merge_into; each action's own parameter",
    # The reference of another ticket; ids of the ticket's own messages.
    "POST /api/tickets/{reference}/merge/": "into (another ticket's reference)",
    "POST /api/tickets/{reference}/split/": "messages (ids of the ticket's messages)",
    # text (and tone) as the action needs them; the offline provider cannot rewrite or
    # translate (400 with the reason); a language must be detectable (support.ai.copilot).
    "POST /api/tickets/{reference}/copilot/": "text and tone by action; an AI model",
    "POST /api/feature-requests/": "related_article",
    "POST /api/feature-requests/{id}/merge/": "into",
    "POST /api/articles/": "category",
    "PATCH /api/articles/{slug}/": "category",
    "POST /api/categories/": "parent; slug unique",
    "PUT /api/categories/{slug}/": "parent; slug unique",
    "PATCH /api/categories/{slug}/": "parent; slug unique",
    "GET /api/search/": "category",
    # Rules name teams, people, saved replies and endpoints by id, and their conditions'
    # values must fit the field (README.md, "Automation").
    "POST /api/automation/rules/": "ids and values inside conditions and actions",
    "PUT /api/automation/rules/{id}/": "ids and values inside conditions and actions",
    "PATCH /api/automation/rules/{id}/": "ids and values inside conditions and actions",
    "POST /api/automation/rules/preview/": "ids and values inside conditions and actions",
    "POST /api/automation/rules/{id}/preview/": "ids and values inside conditions",
    "POST /api/automation/rules/reorder/": "the ids of every rule",
    # An endpoint's host must resolve to a public address (no DNS here).
    "POST /api/automation/webhooks/": "url resolving to a public address",
    "PUT /api/automation/webhooks/{id}/": "url resolving to a public address",
    "PATCH /api/automation/webhooks/{id}/": "url resolving to a public address",
    # A known time zone, hours that do not overlap, one target per priority, a calendar.
    "POST /api/sla/calendars/": "time_zone; hours that do not overlap",
    "PUT /api/sla/calendars/{id}/": "time_zone; hours that do not overlap",
    "PATCH /api/sla/calendars/{id}/": "time_zone; hours that do not overlap",
    "POST /api/sla/policies/": "calendar; one target per priority",
    "PUT /api/sla/policies/{id}/": "calendar; one target per priority",
    "PATCH /api/sla/policies/{id}/": "calendar; one target per priority",
}
POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # the default


@pytest.fixture
def api_server(transactional_db):
    """uvicorn on the test database, rate limits raised so the run tests answers, not 429."""
    port = free_port()
    url = f"http://localhost:{port}"
    log = BASE_DIR / ".data" / "test" / f"uvicorn-schemathesis-{time.monotonic_ns()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(
        DEBUG="false",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="localhost,127.0.0.1",
        LOG_LEVEL="ERROR",
        API_THROTTLE_ANON="100000/min",
        API_THROTTLE_USER="100000/min",
        API_THROTTLE_TICKET_CREATE="100000/min",
        THROTTLE_FEEDBACK_SUBMIT="100000/min",
        THROTTLE_FEEDBACK_VOTE="100000/min",
        HELPDESK_TICKETS_PER_HOUR_PER_USER="100000",
        HELPDESK_TICKETS_PER_HOUR_PER_ADDRESS="100000",
        # Sending a ticket to GitHub only queues the work (no worker runs here).
        GITHUB_TOKEN="ghp_schemathesis",
        GITHUB_REPOSITORY="acme/helpdesk",
    )
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health/", timeout=2):
                    pass
                # The first search loads the embedding model: not within a request's timeout.
                with urllib.request.urlopen(f"{url}/api/search/?q=warm+up", timeout=120):
                    break
            except OSError:
                assert time.monotonic() < deadline, "uvicorn did not start in 60 s"
                time.sleep(0.2)
        yield url, log
    finally:
        stop_process(process, log)


@pytest.fixture
def world(transactional_db):
    """A user and token per role, and one object of each kind behind a path parameter."""
    from feedback import services as feedback_services
    from knowledge import services as kb_services
    from knowledge.models import Category
    from support import services as support_services
    from tests.factories import OrganizationFactory

    org = OrganizationFactory(name="Acme", mrr=2000)
    customer = CustomerFactory(username="customer-a", profile__organization=org)
    org_admin = CustomerFactory(
        username="admin-a", profile__organization=org, profile__is_org_admin=True
    )
    agent = AgentFactory(username="agent-a")
    manager = ManagerFactory(username="manager-a")
    tokens = {
        role: Token.objects.create(user=user).key
        for role, user in [
            ("customer", customer),
            ("org_admin", org_admin),
            ("agent", agent),
            ("manager", manager),
        ]
    }
    ticket = support_services.ticket_open(
        requester=customer, subject="Cannot export invoices", description="It spins forever."
    )
    bug = support_services.ticket_open(
        requester=org_admin, subject="Export crashes", description="A 500 at 95%.", type="bug"
    )
    link = GithubLink.objects.create(ticket=bug, repository="acme/helpdesk")
    category = Category.objects.create(name="Billing", slug="billing")
    article = kb_services.article_create(
        title="Export invoices",
        body="Open **Billing**, then *Export*.",
        category=category,
        publish=True,
    )
    feature = feedback_services.request_submit(
        author=customer, title="Dark mode please", description="For night shifts."
    )
    survivor = feedback_services.request_submit(author=org_admin, title="Export to CSV")
    reply = SavedReplyFactory(new_status="")
    rule = rule_create(
        actor=manager,
        name="Invoices to billing",
        trigger="ticket_created",
        conditions={
            "match": "all",
            "conditions": [{"field": "text", "operator": "contains", "value": "invoice"}],
        },
        actions=[{"type": "add_note", "body": "Invoice question."}],
    )
    endpoint = WebhookEndpoint.objects.create(
        name="CRM", url="https://crm.example.com/hooks", events=["ticket.created"]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="ticket.created",
        event_id=uuid.uuid4(),
        payload={"event": "ticket.created"},
        status="failed",
    )
    calendar = BusinessCalendar.objects.create(name="Office", time_zone="Europe/Berlin")
    policy = SlaPolicy.objects.create(name="Office hours", calendar=calendar)
    tag = support_services.ticket_tag(ticket=ticket, add=["vip"], actor=agent).tags.get()
    custom_field = CustomField.objects.create(
        key="order_number",
        label="Order number",
        kind="text",
        customer_editable=True,
        customer_visible=True,
    )
    example = TrainingExample.objects.create(
        ticket=ticket,
        ticket_type=ticket.type,
        question="How do I export invoices?",
        answer="Open Billing, then Export.",
        anonymized_question="How do I export invoices?",
        anonymized_answer="Open Billing, then Export.",
        outcome=TrainingExample.Outcome.SUCCESSFUL,
        satisfaction_rating=5,
        author_kind=TrainingExample.AuthorKind.HUMAN,
    )
    # The AI's decision trace of the ticket (its list is staff only).
    support_services.ai_trace_record(
        ticket_id=ticket.pk,
        outcome="escalated",
        decision="escalate",
        reason="AI confidence 0.41 is below 0.7.",
        confidence=0.41,
        steps=[{"step": "route", "decision": "escalate", "escalation_kind": "ai_low_confidence"}],
    )
    # An HTTP action the AI asked for on the ticket, awaiting the customer (then an agent).
    refund = support_services.http_action_save(
        action=HttpAction(
            name="refund-order",
            title="Refund an order",
            description="Refunds an order.",
            method="POST",
            url_template="https://shop.example.com/api/orders/{order_id}/refund",
            parameters_schema={
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
            changes_data=True,
            requires_approval=True,
        ),
        actor=manager,
    )
    action_run = support_services.action_run_request(
        ticket=ticket, action=refund, arguments={"order_id": "A-1001"}
    )
    return {
        "tokens": tokens,
        # References to other objects in bodies and queries: real ones, so that valid data
        # can succeed (a made-up id is rightly refused with 400).
        "references": {
            "body.into": survivor.pk,
            "body.saved_reply": reply.pk,
            "body.merge_into": ticket.reference,
            "body.assignee": agent.pk,
            "body.requester": customer.pk,
            "body.category": category.slug,
            "body.parent": category.slug,
            "body.related_article": article.slug,
            "query.category": category.slug,
        },
        "parameters": {
            # Before the ticket's own entry: the first entry that matches an operation wins.
            r"/api/tickets/\{reference\}/actions/\{id\}": {
                "path.reference": ticket.reference,
                "path.id": action_run.pk,
            },
            r"/api/tickets/\{reference\}": {"path.reference": ticket.reference},
            r"/api/action-runs/\{id\}": {"path.id": action_run.pk},
            r"/api/articles/\{slug\}": {"path.slug": article.slug},
            r"/api/categories/\{slug\}": {"path.slug": category.slug},
            r"/api/feature-requests/\{id\}": {"path.id": feature.pk},
            r"/api/saved-replies/\{id\}": {"path.id": reply.pk},
            r"/api/training-examples/\{id\}": {"path.id": example.pk},
            r"/api/github-links/\{id\}": {"path.id": link.pk},
            r"/api/automation/rules/\{id\}": {"path.id": rule.pk},
            r"/api/automation/webhooks/\{id\}": {"path.id": endpoint.pk},
            r"/api/automation/deliveries/\{id\}": {"path.id": delivery.pk},
            r"/api/sla/calendars/\{id\}": {"path.id": calendar.pk},
            r"/api/sla/policies/\{id\}": {"path.id": policy.pk},
            r"/api/tags/\{id\}": {"path.id": tag.pk},
            r"/api/custom-fields/\{id\}": {"path.id": custom_field.pk},
        },
    }


def _toml(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def config_file(
    tmp_path,
    references: dict[str, object],
    parameters: dict[str, dict[str, object]],
    *,
    role: str = "manager",
):
    lines = [
        "[generation]",
        "deterministic = true",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',
        "",
        # Probes with methods an operation does not have only feed checks not run here.
        "[phases.coverage]",
        "unexpected-methods = []",
        "",
        "[parameters]",
        *(f"{_toml(k)} = {_toml(v)}" for k, v in references.items()),
        "",
    ]
    for label in NAMES_OTHER_OBJECTS:
        method, path = label.split(" ", 1)
        lines += [
            "[[operations]]",
            f"include-method = {_toml(method)}",
            f"include-path = {_toml(path)}",
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = [{', '.join(_toml(s) for s in [*POSITIVE_STATUSES, '400'])}]",
            "",
        ]
    for path_regex, values in parameters.items():
        lines += ["[[operations]]", f"include-path-regex = {_toml(path_regex)}"]
        pairs = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in values.items())
        lines += [f"parameters = {{ {pairs} }}", ""]
    if role == "customer":
        # A customer gets 403 on the staff's operations before any input is read: their
        # boundary values are the staff roles' to try.
        for tag in STAFF_ONLY_TAGS:
            lines += [
                "[[operations]]",
                f"include-tag = {_toml(tag)}",
                "[operations.phases.coverage]",
                "enabled = false",
                "",
            ]
    target = tmp_path / f"schemathesis-{role}.toml"
    target.write_text("\n".join(lines))
    return target


def phases(role: str) -> str:
    """Every phase for the customer and the manager. The coverage phase (boundary values
    of every parameter) is most of the time, and it tests input validation, which is the
    same for every role that gets past the permission check:

    - anonymous callers get 401 from all but the public operations before any input is
      read, and the public ones get their boundary values from the signed-in roles;
    - an agent reaches the operations and schemas of a manager, bar the manager-only ones,
      which the manager's run covers with every phase.

    Those two run the examples and fuzzing phases (anonymous about 20 s, agent about 60 s
    instead of 140 s)."""
    return "examples,fuzzing" if role in ("anonymous", "agent") else "examples,coverage,fuzzing"


def run_schemathesis(url: str, config, role: str, token: str | None) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{url}/api/schema/",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        phases(role),
        "--seed",
        str(SEED),
        "--workers",
        "2",
        "--suppress-health-check",
        "all",
        "--output-truncate",
        "false",
        "--request-timeout",
        "30",
        # The API refuses NUL characters anywhere with 400 (config.middleware), which a JSON
        # Schema string cannot say: README.md, "API contract".
        "--generation-allow-x00",
        "false",
    ]
    if token:
        command += ["--header", f"Authorization: Token {token}"]
    return subprocess.run(command, cwd=BASE_DIR, capture_output=True, text=True, timeout=600)


@pytest.mark.long(270)
def test_every_role_gets_answers_that_keep_the_openapi_contract(api_server, world, tmp_path):
    url, server_log = api_server
    failed, timings = [], {}
    for role in ROLES:
        config = config_file(tmp_path, world["references"], world["parameters"], role=role)
        started = time.monotonic()
        result = run_schemathesis(url, config, role, world["tokens"].get(role))
        timings[role] = round(time.monotonic() - started, 1)
        (tmp_path / f"{role}.log").write_text(result.stdout + result.stderr)
        cases = re.search(r"^\s*(\d+ generated.*)$", result.stdout, re.M)
        print(f"{role}: {timings[role]} s, {cases.group(1) if cases else '?'}")
        if result.returncode != 0:
            failed.append(f"===== as {role} =====\n{result.stdout[-20000:]}{result.stderr[-3000:]}")
    server = server_log.read_text(errors="replace")[-5000:]
    assert not failed, "\n".join(failed) + f"\n===== server log =====\n{server}"
