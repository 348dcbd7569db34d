"""HTTP actions the AI agent may call: real calls to a local HTTP server (method, quoted
path, JSON body or query, the key from the environment), the customer's confirmation, an
agent's approval or rejection, execution by the task (once), failures recorded and
handed to people, and the doors: API, portal page, admin."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import DomainError, NotPermitted
from core.models import OutboxItem
from support import services
from support.models import ActionRun, Escalation, HttpAction, Message, TicketEvent
from support.tasks import execute_action_run
from tests.factories import CustomerFactory

R = ActionRun.Status


class Shop:
    """A thread-based HTTP server standing in for a shop's API: it records each request
    (method, path with its query, headers, body) and answers from a script of
    ``(status, body)`` or ``("sleep", seconds)``; 200 ``{"ok": true}`` when empty."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list = []
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                shop.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                step = shop.script.pop(0) if shop.script else (200, {"ok": True})
                if step[0] == "sleep":
                    time.sleep(step[1])
                    step = (200, {"late": True})
                status, body = step
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(OSError):  # a client that gave up (timeout)
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def json(self, index: int = -1):
        return json.loads(self.requests[index]["body"])


@pytest.fixture
def shop():
    server = Shop()
    yield server
    server.close()


ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "description": "The order's number."},
        "amount": {"type": "number", "minimum": 0},
        "reason": {"type": "string"},
    },
    "required": ["order_id"],
    "additionalProperties": False,
}


def make_action(manager, shop, **fields) -> HttpAction:
    values = {
        "name": "refund-order",
        "title": "Refund an order",
        "description": "Refunds an order in full or in part.",
        "method": "POST",
        "url_template": f"{shop.url}/api/orders/{{order_id}}/refund",
        "parameters_schema": ORDER_SCHEMA,
        "changes_data": True,
        **fields,
    }
    return services.http_action_save(action=HttpAction(**values), actor=manager)


@pytest.fixture
def refund(manager, shop):
    return make_action(manager, shop)


@pytest.fixture
def approved_refund(manager, shop):
    return make_action(manager, shop, name="refund-large", requires_approval=True)


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def confirm_url(run, verb="confirm") -> str:
    return f"/api/tickets/{run.ticket.reference}/actions/{run.pk}/{verb}/"


def request_run(ticket, action, **arguments) -> ActionRun:
    return services.action_run_request(
        ticket=ticket, action=action, arguments=arguments or {"order_id": "A-1001"}
    )


def events(ticket, kind):
    return list(ticket.events.filter(kind=kind).order_by("id"))


def outbox_runs() -> list[list]:
    return [item.args for item in OutboxItem.objects.filter(task=services.EXECUTE_TASK)]


# ======================================================================================
# Calling an action
# ======================================================================================


@pytest.mark.django_db
def test_a_call_sends_the_method_the_quoted_path_a_json_body_and_the_key(refund, shop, monkeypatch):
    refund.secret_env_var = "SHOP_API_KEY"
    monkeypatch.setenv("SHOP_API_KEY", "s3cret-value")
    shop.script = [(200, {"refund_id": "R-9", "amount": 12.5})]

    result = services.action_call(
        refund, {"order_id": "A/1?x=../2", "amount": 12.5, "reason": "Damaged"}
    )

    assert result == {"status": 200, "body": {"refund_id": "R-9", "amount": 12.5}}
    (sent,) = shop.requests
    assert sent["method"] == "POST"
    # A value cannot add a path segment or a query: it is quoted whole.
    assert sent["path"] == "/api/orders/A%2F1%3Fx%3D..%2F2/refund"
    assert shop.json() == {"amount": 12.5, "reason": "Damaged"}
    assert sent["headers"]["Authorization"] == "Bearer s3cret-value"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["Host"] == urlsplit(shop.url).netloc


@pytest.mark.django_db
def test_a_read_only_call_puts_the_other_arguments_in_the_query_and_returns_json(manager, shop):
    status = make_action(
        manager,
        shop,
        name="order-status",
        title="Order status",
        method="GET",
        url_template=f"{shop.url}/api/orders/{{order_id}}",
        parameters_schema={
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["order_id"],
        },
        changes_data=False,
    )
    shop.script = [(200, {"status": "shipped", "carrier": "DHL"})]

    result = services.action_call(status, {"order_id": "1001", "verbose": True})

    assert result["body"] == {"status": "shipped", "carrier": "DHL"}
    assert shop.requests[0]["method"] == "GET"
    assert shop.requests[0]["path"] == "/api/orders/1001?verbose=true"
    assert shop.requests[0]["body"] == b""
    assert "Authorization" not in shop.requests[0]["headers"]


@pytest.mark.django_db
def test_a_missing_key_variable_is_a_clear_error_and_nothing_is_sent(refund, shop, monkeypatch):
    refund.secret_env_var = "SHOP_KEY_NOT_SET"
    monkeypatch.delenv("SHOP_KEY_NOT_SET", raising=False)

    with pytest.raises(services.ActionFailed) as failed:
        services.action_call(refund, {"order_id": "1"})

    assert "SHOP_KEY_NOT_SET" in failed.value.message and "not set" in failed.value.message
    assert shop.requests == []


@pytest.mark.django_db
def test_a_server_error_fails_with_its_status_and_body(refund, shop):
    shop.script = [(500, {"error": "database down"})]

    with pytest.raises(services.ActionFailed) as failed:
        services.action_call(refund, {"order_id": "1"})

    assert failed.value.status == 500
    assert failed.value.body == {"error": "database down"}
    assert "HTTP 500" in failed.value.message and "database down" in failed.value.message


@pytest.mark.django_db
def test_a_slow_answer_fails_at_the_actions_timeout(manager, shop):
    slow = make_action(manager, shop, timeout_seconds=1)
    shop.script = [("sleep", 3)]
    started = time.monotonic()

    with pytest.raises(services.ActionFailed) as failed:
        services.action_call(slow, {"order_id": "1"})

    assert time.monotonic() - started < 2.5
    assert "No answer within 1 s" in failed.value.message


@pytest.mark.django_db
def test_a_private_address_is_refused_unless_allowed(refund, shop, settings):
    settings.HELPDESK_WEBHOOKS_ALLOW_PRIVATE = False

    with pytest.raises(services.ActionFailed) as failed:
        services.action_call(refund, {"order_id": "1"})

    assert failed.value.message.startswith("refused:") and "127.0.0.1" in failed.value.message
    assert shop.requests == []


@pytest.mark.django_db
def test_a_long_answer_is_kept_as_text_cut_at_4000_characters(refund, shop):
    shop.script = [(200, {"items": ["x" * 100] * 100})]

    result = services.action_call(refund, {"order_id": "1"})

    assert isinstance(result["body"], str) and len(result["body"]) == 4000
    assert result["body"].startswith('{"items": ["xxx')


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({}, "'order_id' is a required property"),
        ({"order_id": 7}, "order_id: 7 is not of type 'string'"),
        ({"order_id": "1", "amount": -5}, "amount: -5 is less than the minimum of 0"),
        ({"order_id": "1", "coupon": "FREE"}, "Additional properties are not allowed"),
        ({"order_id": ""}, "order_id: a text or a number is needed"),
    ],
)
def test_arguments_that_do_not_fit_the_schema_are_refused_with_the_reason(
    refund, shop, ticket, arguments, words
):
    with pytest.raises(DomainError) as refused:
        services.action_arguments_validate(refund, arguments)
    assert refused.value.field == "arguments" and words in refused.value.message

    with pytest.raises(DomainError):
        services.action_run_request(ticket=ticket, action=refund, arguments=arguments)
    assert ActionRun.objects.count() == 0 and shop.requests == []


# ======================================================================================
# Definitions
# ======================================================================================


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parameters_schema": {"type": "array"}}, "parameters_schema"),
        ({"parameters_schema": {"type": "object"}}, "parameters_schema"),
        ({"parameters_schema": {"type": "object", "properties": {"a": {"type": 5}}}}, None),
        ({"url_template": "https://{host}.example.com/orders/{order_id}"}, "url_template"),
        ({"url_template": "ftp://example.com/orders/{order_id}"}, "url_template"),
        ({"url_template": "https://example.com/orders/{order}/x"}, "url_template"),
        ({"changes_data": False, "requires_approval": True}, "requires_approval"),
        ({"secret_env_var": "not a name"}, "secret_env_var"),
    ],
)
def test_a_bad_definition_is_refused_on_its_field(manager, shop, fields, field):
    with pytest.raises(DomainError) as refused:
        make_action(manager, shop, **fields)

    assert refused.value.field == (field or "parameters_schema")
    assert HttpAction.objects.count() == 0


@pytest.mark.django_db
def test_two_actions_cannot_reach_the_ai_under_one_tool_name(manager, shop, refund):
    with pytest.raises(DomainError) as refused:
        make_action(manager, shop, name="refund_order")

    assert refused.value.field == "name" and "action_refund_order" in refused.value.message


@pytest.mark.django_db
def test_only_managers_define_actions(agent, shop):
    with pytest.raises(NotPermitted):
        make_action(agent, shop)


@pytest.mark.django_db
def test_the_ai_is_offered_active_actions_for_the_tickets_type(manager, shop):
    everywhere = make_action(manager, shop, name="order-status", changes_data=False)
    billing = make_action(manager, shop, name="refund-order", ticket_types=["billing"])
    make_action(manager, shop, name="old-refund", is_active=False)

    assert services.http_actions_for("billing") == [everywhere, billing]
    assert services.http_actions_for("bug") == [everywhere]
    assert billing.tool_name == "action_refund_order"


# ======================================================================================
# Confirmation, approval, execution
# ======================================================================================


@pytest.mark.django_db
def test_a_change_waits_for_the_customer_then_runs_once(refund, shop, ticket, customer):
    run = request_run(ticket, refund, order_id="A-1001", amount=20)

    assert run.status == R.AWAITING_CONFIRMATION and shop.requests == []
    (requested,) = events(ticket, TicketEvent.Kind.ACTION_REQUESTED)
    assert requested.actor_kind == "ai" and requested.new_value == "Refund an order"
    # Asking again for the same thing while it waits is the same run.
    assert request_run(ticket, refund, order_id="A-1001", amount=20) == run

    response = api(customer).post(confirm_url(run))

    assert response.status_code == 200 and response.json()["status"] == R.QUEUED
    assert outbox_runs() == [[run.pk]]
    assert len(events(ticket, TicketEvent.Kind.ACTION_CONFIRMED)) == 1

    assert execute_action_run(run.pk) == R.SUCCEEDED

    run.refresh_from_db()
    assert run.status == R.SUCCEEDED and run.response_status == 200
    assert run.response_body == {"ok": True}
    assert shop.json() == {"amount": 20}
    assert shop.requests[0]["headers"]["Idempotency-Key"] == f"helpdesk-action-run-{run.pk}"
    done = ticket.messages.filter(sender_kind="system").last()
    assert done.body == "Done: Refund an order." and not done.is_internal
    assert len(events(ticket, TicketEvent.Kind.ACTION_SUCCEEDED)) == 1

    # A redelivered task does nothing.
    assert execute_action_run(run.pk) == "skipped"
    assert len(shop.requests) == 1


@pytest.mark.django_db
def test_the_task_runs_through_the_outbox_after_the_confirmation(
    refund, shop, ticket, customer, run_effects
):
    run = request_run(ticket, refund)

    with run_effects():
        services.action_run_confirm(run=run, actor=customer)

    run.refresh_from_db()
    assert run.status == R.SUCCEEDED and len(shop.requests) == 1
    assert OutboxItem.objects.get(task=services.EXECUTE_TASK).status == OutboxItem.Status.DONE


@pytest.mark.django_db
def test_an_action_that_needs_approval_runs_after_an_agent_approves(
    approved_refund, shop, ticket, customer, agent
):
    run = request_run(ticket, approved_refund)
    assert api(agent).post(f"/api/action-runs/{run.pk}/approve/").status_code == 409

    api(customer).post(confirm_url(run))
    run.refresh_from_db()
    assert run.status == R.AWAITING_APPROVAL and run.confirmed_at is not None
    assert outbox_runs() == [] and shop.requests == []
    assert "checks it before it is done" in ticket.messages.last().body

    assert api(customer).post(f"/api/action-runs/{run.pk}/approve/").status_code == 403
    response = api(agent).post(f"/api/action-runs/{run.pk}/approve/")

    assert response.status_code == 200 and response.json()["status"] == R.QUEUED
    assert response.json()["approved_by"]["username"] == agent.username
    assert execute_action_run(run.pk) == R.SUCCEEDED
    run.refresh_from_db()
    assert run.status == R.SUCCEEDED and run.approved_by == agent and len(shop.requests) == 1
    assert len(events(ticket, TicketEvent.Kind.ACTION_APPROVED)) == 1


@pytest.mark.django_db
def test_a_rejected_action_never_runs_and_the_customer_is_told(
    approved_refund, shop, ticket, customer, agent
):
    run = request_run(ticket, approved_refund)
    services.action_run_confirm(run=run, actor=customer)

    missing = api(agent).post(f"/api/action-runs/{run.pk}/reject/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()

    response = api(agent).post(
        f"/api/action-runs/{run.pk}/reject/",
        {"reason": "Refunds over 500 need the finance team."},
        format="json",
    )

    assert response.status_code == 200 and response.json()["status"] == R.REJECTED
    assert execute_action_run(run.pk) == "skipped" and shop.requests == []
    public = ticket.messages.filter(is_internal=False).last()
    note = ticket.messages.filter(is_internal=True).last()
    assert "was not carried out" in public.body and public.sender_kind == "system"
    assert note.author == agent and "finance team" in note.body
    # The customer's conversation shows the notice, never the reason.
    bodies = [
        m["body"] for m in api(customer).get(f"/api/tickets/{ticket.reference}/messages/").json()
    ]
    assert public.body in bodies and not any("finance" in body for body in bodies)
    again = api(agent).post(f"/api/action-runs/{run.pk}/approve/")
    assert again.status_code == 409


@pytest.mark.django_db
def test_a_declined_action_never_runs(refund, shop, ticket, customer, client):
    run = request_run(ticket, refund)
    client.force_login(customer)

    response = client.post(
        reverse("support:ticket-action-decline", args=[ticket.reference, run.pk])
    )

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == R.DECLINED and run.decided_at is not None
    assert "nothing was changed" in ticket.messages.last().body
    assert outbox_runs() == [] and shop.requests == []
    assert api(customer).post(confirm_url(run)).status_code == 409


@pytest.mark.django_db
def test_a_failed_call_is_recorded_noted_and_escalated(refund, shop, ticket, customer):
    run = request_run(ticket, refund)
    services.action_run_confirm(run=run, actor=customer)
    shop.script = [(500, {"error": "payment provider down"})]

    assert execute_action_run(run.pk) == R.FAILED

    run.refresh_from_db()
    ticket.refresh_from_db()
    assert run.status == R.FAILED and run.response_status == 500
    assert "payment provider down" in run.error
    note = ticket.messages.filter(is_internal=True).last()
    assert "failed and was not done" in note.body and "A-1001" in note.body
    assert "could not complete" in ticket.messages.filter(is_internal=False).last().body
    assert ticket.status == "escalated"
    escalation = ticket.escalations.get()
    assert escalation.kind == Escalation.Kind.COMPLEX and "Refund an order" in escalation.reason
    (failed,) = events(ticket, TicketEvent.Kind.ACTION_FAILED)
    assert failed.is_internal
    assert execute_action_run(run.pk) == "skipped" and len(shop.requests) == 1


@pytest.mark.django_db
def test_an_action_switched_off_before_it_ran_is_not_called(refund, shop, ticket, customer):
    run = request_run(ticket, refund)
    services.action_run_confirm(run=run, actor=customer)
    HttpAction.objects.filter(pk=refund.pk).update(is_active=False)

    assert execute_action_run(run.pk) == R.FAILED

    run.refresh_from_db()
    assert "switched off" in run.error and shop.requests == []
    assert ticket.escalations.exists()


@pytest.mark.django_db
def test_a_failure_on_a_ticket_resolved_meanwhile_reopens_it_for_people(
    refund, shop, ticket, customer, agent
):
    run = request_run(ticket, refund)
    services.action_run_confirm(run=run, actor=customer)
    services.ticket_resolve(ticket=ticket, actor=agent)
    shop.script = [(404, {"error": "no such order"})]

    assert execute_action_run(run.pk) == R.FAILED

    ticket.refresh_from_db()
    assert ticket.status == "escalated" and ticket.reopened_count == 1


# ======================================================================================
# Who decides
# ======================================================================================


@pytest.mark.django_db
def test_only_the_requester_or_their_org_admin_confirms(
    refund, ticket, other_customer, colleague, org_admin, agent, client
):
    run = request_run(ticket, refund)

    assert api(other_customer).post(confirm_url(run)).status_code == 404
    assert api(colleague).post(confirm_url(run)).status_code == 404
    assert api(agent).post(confirm_url(run)).status_code == 403
    client.force_login(other_customer)
    page = client.post(reverse("support:ticket-action-confirm", args=[ticket.reference, run.pk]))
    assert page.status_code == 404
    assert client.get(ticket.get_absolute_url()).status_code == 404
    run.refresh_from_db()
    assert run.status == R.AWAITING_CONFIRMATION

    assert api(org_admin).post(confirm_url(run)).status_code == 200


@pytest.mark.django_db
def test_the_ticket_lists_its_actions_with_the_answer_for_staff_only(
    refund, shop, ticket, customer, agent, other_customer
):
    run = request_run(ticket, refund)
    services.action_run_confirm(run=run, actor=customer)
    execute_action_run(run.pk)
    path = f"/api/tickets/{ticket.reference}/actions/"

    (mine,) = api(customer).get(path).json()
    (staff,) = api(agent).get(path).json()

    assert mine["status"] == staff["status"] == R.SUCCEEDED
    assert mine["action"]["title"] == "Refund an order"
    assert mine["arguments"] == {"order_id": "A-1001"}
    assert mine["response_body"] is None and staff["response_body"] == {"ok": True}
    assert api(other_customer).get(path).status_code == 404


@pytest.mark.django_db
def test_a_request_on_a_closed_ticket_or_for_a_read_only_action_is_refused(
    manager, shop, refund, ticket, agent
):
    read_only = make_action(manager, shop, name="order-status", changes_data=False)
    with pytest.raises(DomainError) as refused:
        request_run(ticket, read_only)
    assert refused.value.code == "read_only"

    services.ticket_close(ticket=ticket, actor=agent)
    with pytest.raises(DomainError) as closed:
        request_run(ticket, refund)
    assert closed.value.code == "invalid_transition"


# ======================================================================================
# Portal and admin
# ======================================================================================


@pytest.mark.django_db
def test_the_portal_shows_a_pending_action_with_confirm_and_decline(
    refund, shop, ticket, customer, client
):
    run = request_run(ticket, refund, order_id="A-1001", amount=20)
    client.force_login(customer)

    html = client.get(ticket.get_absolute_url()).content.decode()

    assert "Please confirm: Refund an order" in html and "Refunds an order" in html
    assert "A-1001" in html
    confirm = reverse("support:ticket-action-confirm", args=[ticket.reference, run.pk])
    assert f'action="{confirm}"' in html and "csrfmiddlewaretoken" in html
    assert "Decline" in html

    response = client.post(confirm)

    assert response.status_code == 302
    html = client.get(ticket.get_absolute_url()).content.decode()
    assert "Please confirm" not in html
    assert f'data-action-status="{R.QUEUED}"' in html


@pytest.mark.django_db
def test_the_portal_refuses_a_get_and_offers_no_buttons_to_staff(
    refund, ticket, agent, customer, client
):
    run = request_run(ticket, refund)
    client.force_login(customer)
    url = reverse("support:ticket-action-confirm", args=[ticket.reference, run.pk])
    assert client.get(url).status_code == 405

    client.force_login(agent)
    html = client.get(ticket.get_absolute_url()).content.decode()
    assert "Please confirm: Refund an order" in html and f'action="{url}"' not in html


@pytest.mark.django_db
def test_admin_approves_from_the_list_and_rejects_with_a_reason(
    approved_refund, shop, ticket, customer, agent, client
):
    first = request_run(ticket, approved_refund, order_id="A-1")
    second = request_run(ticket, approved_refund, order_id="A-2")
    for run in (first, second):
        services.action_run_confirm(run=run, actor=customer)
    client.force_login(agent)
    changelist = reverse("admin:support_actionrun_changelist")

    queue = client.get(f"{changelist}?status__exact={R.AWAITING_APPROVAL}")
    assert queue.status_code == 200 and "A-1" in queue.content.decode()

    client.post(
        changelist, {"action": "approve_action", "_selected_action": [first.pk], "index": 0}
    )
    first.refresh_from_db()
    assert first.status == R.QUEUED and first.approved_by == agent
    assert outbox_runs() == [[first.pk]]

    ask = client.post(
        changelist, {"action": "reject_action", "_selected_action": [second.pk], "index": 0}
    )
    assert ask.status_code == 200 and "reason" in ask.content.decode()
    client.post(
        changelist,
        {
            "action": "reject_action",
            "_selected_action": [second.pk],
            "index": 0,
            "apply": "Reject",
            "reason": "Duplicate of A-1.",
        },
    )
    second.refresh_from_db()
    assert second.status == R.REJECTED
    assert ticket.messages.filter(is_internal=True, body__contains="Duplicate of A-1.").exists()


@pytest.mark.django_db
def test_admin_run_page_buttons_call_the_services(approved_refund, ticket, customer, agent, client):
    run = request_run(ticket, approved_refund)
    services.action_run_confirm(run=run, actor=customer)
    client.force_login(agent)

    page = client.get(reverse("admin:support_actionrun_change", args=[run.pk])).content.decode()
    assert reverse("admin:support_actionrun_approve", args=[run.pk]) in page
    assert "A-1001" in page

    client.post(reverse("admin:support_actionrun_reject", args=[run.pk]), {"reason": "No."})
    run.refresh_from_db()
    assert run.status == R.REJECTED

    response = client.post(reverse("admin:support_actionrun_approve", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == R.REJECTED  # refused: a rejected run stays rejected


@pytest.mark.django_db
@pytest.mark.parametrize("count", [2, 30])
def test_the_runs_changelist_does_not_query_per_row(
    approved_refund, org_a, agent, client, count, django_assert_max_num_queries
):
    for i in range(count):
        requester = CustomerFactory(username=f"r{i}", profile__organization=org_a)
        ticket = services.ticket_open(requester=requester, subject=f"T{i}", description="d")
        run = request_run(ticket, approved_refund, order_id=f"A-{i}")
        services.action_run_confirm(run=run, actor=requester)
        services.action_run_approve(run=run, actor=agent)
    client.force_login(agent)

    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:support_actionrun_changelist"))

    assert response.status_code == 200
    assert response.content.decode().count('class="field-ticket_link"') == count


@pytest.mark.django_db
def test_managers_define_actions_in_admin_and_agents_only_read_them(manager, agent, shop, client):
    client.force_login(manager)
    add = reverse("admin:support_httpaction_add")
    form = {
        "name": "cancel-subscription",
        "title": "Cancel the subscription",
        "description": "Cancels at the end of the period.",
        "method": "POST",
        "url_template": f"{shop.url}/api/subscriptions/{{subscription_id}}/cancel",
        "parameters_schema": json.dumps({"type": "object", "properties": {}}),
        "secret_env_var": "",
        "ticket_types": ["cancellation"],
        "changes_data": "on",
        "timeout_seconds": 10,
        "is_active": "on",
    }

    refused = client.post(add, form)
    assert refused.status_code == 200 and "must be a required parameter" in refused.content.decode()

    form["parameters_schema"] = json.dumps(
        {
            "type": "object",
            "properties": {"subscription_id": {"type": "string"}},
            "required": ["subscription_id"],
        }
    )
    assert client.post(add, form).status_code == 302
    action = HttpAction.objects.get()
    assert action.ticket_types == ["cancellation"] and action.changes_data

    client.force_login(agent)
    change = reverse("admin:support_httpaction_change", args=[action.pk])
    assert client.get(change).status_code == 200
    form["title"] = "Changed by an agent"
    client.post(change, form)
    action.refresh_from_db()
    assert action.title == "Cancel the subscription"
    assert Message.objects.count() == 0
