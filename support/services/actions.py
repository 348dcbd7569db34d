"""HTTP actions the AI agent may call on a ticket, and the runs of those that change data.

Staff define :class:`~support.models.HttpAction` rows in admin (``http_action_save``).
The AI agent is offered the active ones for the ticket's type (``http_actions_for``):

- an action that only reads (order status) runs at once: the agent calls
  :func:`action_call` and gives the answer to the model; nothing is stored;
- an action that changes something outside (a refund, a cancellation) does not run when
  the AI asks: :func:`action_run_request` records an :class:`~support.models.ActionRun`
  awaiting the customer's confirmation. The customer confirms (or declines) on the portal
  or over the API; when the action requires it an agent then approves (or rejects) it in
  admin; only then is :func:`action_run_execute` owed through the outbox (the task
  ``support.tasks.execute_action_run``). It calls the action once and posts the outcome on
  the ticket: "Done: <title>." for the customer, or an internal note and the ticket handed
  to people when the call failed. Nothing is lost: a failure is recorded on the run, on
  the ticket and in its event log.

Calls go only to public addresses (``core.net``, as outbound webhooks), connect to the
address that was checked, follow no redirect, ignore proxy settings of the environment,
and stop at the action's timeout. The key is read from the environment variable the
action names, at call time; it is never stored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from urllib.parse import quote, urlsplit

from django.db import transaction
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Replace
from django.utils import timezone

from core.errors import Conflict, DomainError, NotPermitted
from core.net import check_url_syntax, pinned_request, resolve_public
from core.outbox import schedule_after_commit
from core.roles import is_agent, is_manager
from support import events
from support.models import (
    ACTION_RUN_TRANSITIONS,
    DONE_STATUSES,
    PENDING_ACTION_RUN_STATUSES,
    URL_PLACEHOLDER,
    ActionRun,
    Escalation,
    HttpAction,
    Message,
    Ticket,
    TicketEvent,
)
from support.services._validation import full_clean
from support.services.tickets import _lock, message_add, ticket_escalate, ticket_reopen
from support.side_effects import after_commit

__all__ = [
    "EXECUTE_TASK",
    "ActionFailed",
    "action_arguments_validate",
    "action_call",
    "action_run_approve",
    "action_run_confirm",
    "action_run_decline",
    "action_run_execute",
    "action_run_may_decide",
    "action_run_reject",
    "action_run_request",
    "action_runs_of",
    "http_action_check",
    "http_action_save",
    "http_actions_for",
]

logger = logging.getLogger(__name__)

R = ActionRun.Status
Kind = TicketEvent.Kind
AI = TicketEvent.ActorKind.AI
SYSTEM = Message.SenderKind.SYSTEM

#: The task that runs a queued run (through the outbox).
EXECUTE_TASK = "support.tasks.execute_action_run"
#: What is kept of an answer (and given to the model): JSON up to this many characters
#: once serialized, else the text cut here.
BODY_CHARS = 4000
#: What is read of an answer at most; a longer one is cut (and so kept as text).
READ_BYTES = 256 * 1024
#: Arguments larger than this (as JSON) are refused: no action needs a document.
MAX_ARGUMENTS_CHARS = 10_000
#: Errors kept on a run.
ERROR_CHARS = 2000
#: Methods whose other arguments go in the query string (the rest send a JSON body).
QUERY_METHODS = frozenset({HttpAction.Method.GET, HttpAction.Method.DELETE})


class ActionFailed(DomainError):
    """Calling an action did not work: the network, a timeout, a refused address, a
    missing key, or an answer that is not 2xx (``status`` and ``body`` say which)."""

    http_status = 502
    code = "action_failed"

    def __init__(self, message: str, *, status: int | None = None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


# ======================================================================================
# Definitions (staff, in admin) and what the AI is offered
# ======================================================================================


def http_actions_for(ticket_type: str) -> list[HttpAction]:
    """The active actions offered on tickets of ``ticket_type`` (those that name no type
    are offered on every type), by name."""
    return list(
        HttpAction.objects.filter(is_active=True)
        .filter(Q(ticket_types=[]) | Q(ticket_types__contains=[ticket_type]))
        .order_by("name")
    )


def _validator(schema: dict):
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def http_action_check(*, action: HttpAction) -> HttpAction:
    """What ``http_action_save`` refuses, checked without saving (the admin form puts the
    reason on the field): a URL template whose host is not fixed or that is not an
    http(s) URL, a schema that is not a valid JSON Schema object, placeholders that are
    not required parameters, approval on an action that changes nothing, then the model's
    own validation."""
    action.name = (action.name or "").strip()
    action.title = (action.title or "").strip()
    action.url_template = (action.url_template or "").strip()
    action.secret_env_var = (action.secret_env_var or "").strip()
    action.ticket_types = sorted(set(action.ticket_types or []))
    template = action.url_template
    if "{" in urlsplit(template).netloc or re.match(r"^[^:/]*\{", template):
        raise DomainError(
            "Placeholders may only be in the path or the query: the scheme and the host are fixed.",
            field="url_template",
        )
    try:
        check_url_syntax(re.sub(URL_PLACEHOLDER, "x", template))
    except DomainError as error:
        raise DomainError(error.message, field="url_template") from None
    schema = action.parameters_schema
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise DomainError(
            'Write a JSON Schema object: {"type": "object", "properties": {…}}.',
            field="parameters_schema",
        )
    if not isinstance(schema.get("properties"), dict):
        raise DomainError(
            "Name the parameters in “properties”, each with its schema ({} when there are none).",
            field="parameters_schema",
        )
    from jsonschema.exceptions import SchemaError

    try:
        _validator(schema)
    except SchemaError as error:
        raise DomainError(
            f"Not a valid JSON Schema: {error.message}", field="parameters_schema"
        ) from None
    if action.requires_approval and not action.changes_data:
        raise DomainError(
            "Only an action that changes data asks for approval: tick “changes data” too.",
            field="requires_approval",
        )
    full_clean(action)
    tool = action.name.replace("-", "_")
    same_tool = (
        HttpAction.objects.annotate(tool=Replace("name", Value("-"), Value("_")))
        .filter(tool=tool)
        .exclude(pk=action.pk)
    )
    if action.name and same_tool.exists():
        raise DomainError(
            f"Another action is offered to the AI as action_{tool} already (hyphens and "
            "underscores read the same): choose another name.",
            field="name",
        )
    return action


@transaction.atomic
def http_action_save(*, action: HttpAction, actor) -> HttpAction:
    """Create or change an action (managers): checked by :func:`http_action_check`."""
    if not is_manager(actor):
        raise NotPermitted("Only managers can change HTTP actions.")
    http_action_check(action=action)
    action.save()
    return action


# ======================================================================================
# Calling an action
# ======================================================================================


def action_arguments_validate(action: HttpAction, arguments: dict) -> dict:
    """The arguments if they fit the action's schema; else a DomainError on
    ``arguments`` whose message names the argument and what is wrong (the model reads
    it and may try again)."""
    if not isinstance(arguments, dict):
        raise DomainError("The arguments must be a JSON object.", field="arguments")
    if len(json.dumps(arguments, default=str)) > MAX_ARGUMENTS_CHARS:
        raise DomainError("The arguments are too long.", field="arguments")
    from jsonschema.exceptions import SchemaError, best_match

    try:
        validator = _validator(action.parameters_schema)
    except SchemaError as error:
        raise DomainError(
            f"The action's schema is not valid: {error.message}", field="parameters_schema"
        ) from None
    error = best_match(validator.iter_errors(arguments))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path)
        raise DomainError(
            f"{where}: {error.message}" if where else error.message, field="arguments"
        )
    for name in re.findall(URL_PLACEHOLDER, action.url_template):
        value = arguments.get(name)
        if value is None or value == "" or isinstance(value, dict | list):
            raise DomainError(
                f"{name}: a text or a number is needed (it is part of the address).",
                field="arguments",
            )
    return dict(arguments)


def _url_and_rest(action: HttpAction, arguments: dict) -> tuple[str, dict]:
    """The URL with its placeholders filled in (each value URL-quoted with nothing safe:
    a value can never add a path segment, a query or another host), and the arguments
    that were not placeholders."""
    used = set()

    def fill(match: re.Match) -> str:
        used.add(match.group(1))
        value = arguments[match.group(1)]
        if isinstance(value, bool):
            value = "true" if value else "false"
        return quote(str(value), safe="")

    url = re.sub(URL_PLACEHOLDER, fill, action.url_template)
    return url, {k: v for k, v in arguments.items() if k not in used}


def _query_value(value):
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return [_query_value(item) for item in value]
    return value


def _clean_text(text: str) -> str:
    """PostgreSQL text and jsonb take no NUL character."""
    return text.replace("\x00", "")


def _body_value(raw: bytes, *, complete: bool):
    """The answer as kept and given to the model: its JSON when it is JSON and short
    enough, else its text cut at ``BODY_CHARS``."""
    text = _clean_text(raw.decode("utf-8", errors="replace"))
    if complete and text.strip():
        try:
            value = json.loads(text)
        except ValueError:
            pass
        else:
            compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if len(compact) <= BODY_CHARS and "\\u0000" not in compact:
                return value
    return text[:BODY_CHARS]


def _short(body) -> str:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    text = " ".join(text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def action_call(action: HttpAction, arguments: dict, *, idempotency_key: str = "") -> dict:
    """Call the action now and return ``{"status": int, "body": JSON or text}``.

    The URL's placeholders are filled with URL-quoted values; the other arguments go in
    the query string (GET, DELETE) or as a JSON body. The host is resolved and checked
    (``core.net``) and the request goes to that checked address (the Host header and TLS
    still name the site); no redirect is followed, no proxy of the environment used, and
    the whole answer must arrive within the action's timeout. ``idempotency_key`` is sent
    as ``Idempotency-Key`` so that a server can tell a repeated call.

    Raises :class:`ActionFailed` on a refused address, a missing key, a network error or
    timeout, and any answer that is not 2xx (with its status and the start of its body);
    a DomainError on ``arguments`` when they do not fit the schema.
    """
    import httpx

    arguments = action_arguments_validate(action, arguments)
    url, rest = _url_and_rest(action, arguments)
    headers = {"Accept": "application/json", "User-Agent": "Helpdesk-Actions/1"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if action.secret_env_var:
        secret = os.environ.get(action.secret_env_var, "")
        if not secret:
            raise ActionFailed(
                f"The environment variable {action.secret_env_var}, which holds the key of "
                f"“{action.title}”, is not set in this process."
            )
        headers["Authorization"] = f"Bearer {secret}"
    params, body = None, None
    if action.method in QUERY_METHODS:
        params = {k: _query_value(v) for k, v in rest.items()} or None
    else:
        body = rest
    try:
        addresses = resolve_public(url)
    except DomainError as error:
        raise ActionFailed(f"refused: {error.message}") from None

    started = time.monotonic()
    total = float(action.timeout_seconds)
    try:
        with pinned_request(
            action.method,
            url,
            addresses,
            timeout=httpx.Timeout(total),
            headers=headers,
            params=params,
            json=body,
        ) as response:
            received, complete = b"", True
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) > READ_BYTES:
                    received, complete = received[:READ_BYTES], False
                    break
                if time.monotonic() - started > total:
                    raise httpx.ReadTimeout("the whole answer took too long")
    except httpx.TimeoutException:
        raise ActionFailed(f"No answer within {action.timeout_seconds} s.") from None
    except (httpx.HTTPError, OSError) as error:
        raise ActionFailed(_clean_text(f"{type(error).__name__}: {error}")) from None
    value = _body_value(received, complete=complete)
    status = response.status_code
    if response.is_redirect:
        location = response.headers.get("location", "?")
        raise ActionFailed(
            f"HTTP {status}: redirect to {location} not followed.", status=status, body=value
        )
    if not 200 <= status < 300:
        raise ActionFailed(f"HTTP {status}: {_short(value)}", status=status, body=value)
    return {"status": status, "body": value}


# ======================================================================================
# Runs of actions that change data
# ======================================================================================


def action_runs_of(*, ticket: Ticket) -> QuerySet[ActionRun]:
    """The runs of one ticket, newest first, with their action (and approver)."""
    return (
        ActionRun.objects.filter(ticket=ticket)
        .select_related("ticket", "action", "approved_by")
        .order_by("-created_at", "-id")
    )


def _lock_run(run: ActionRun) -> ActionRun:
    """The run's row, locked, with fresh values, its action and ticket."""
    return (
        ActionRun.objects.select_for_update(of=("self",))
        .select_related("action", "ticket")
        .get(pk=run.pk)
    )


def _move(run: ActionRun, status: str) -> None:
    if status not in ACTION_RUN_TRANSITIONS[run.status]:
        raise Conflict(
            f"This action is {R(run.status).label.lower()}: it cannot become "
            f"{R(status).label.lower()}.",
            code="invalid_transition",
        )
    run.status = status


def action_run_may_decide(*, ticket: Ticket, user) -> bool:
    """Whether ``user`` confirms or declines the ticket's actions: its requester, or an
    admin of the ticket's organization (never staff: the customer decides)."""
    return _may_confirm(ticket, user)


def _may_confirm(ticket: Ticket, actor) -> bool:
    """The ticket's requester, or an admin of the ticket's organization."""
    if actor is None or not actor.is_authenticated or is_agent(actor):
        return False
    if actor.pk == ticket.requester_id:
        return True
    profile = getattr(actor, "customer_profile", None)
    return bool(
        profile is not None
        and profile.is_org_admin
        and ticket.organization_id is not None
        and profile.organization_id == ticket.organization_id
    )


def _system_message(ticket: Ticket, body: str, *, internal: bool = False) -> Message:
    return message_add(
        ticket=ticket, author=None, body=body, sender_kind=SYSTEM, is_internal=internal
    )


@transaction.atomic
def action_run_request(
    *, ticket: Ticket, action: HttpAction, arguments: dict, actor_kind: str = AI
) -> ActionRun:
    """The AI (or another caller: ``actor_kind``) asks to run an action that changes
    data: the run waits for the customer's confirmation (event ``action_requested``).

    Asking again for the same action with the same arguments while a run is still
    pending returns that run. Refuses an inactive action, one not offered on the
    ticket's type, a read-only action (call :func:`action_call` for those: nothing to
    confirm), arguments that do not fit the schema, and a resolved or closed ticket.
    """
    if not action.is_active:
        raise DomainError(f"The action “{action.title}” is switched off.", field="action")
    if action.ticket_types and (ticket.type not in action.ticket_types):
        raise DomainError(
            f"The action “{action.title}” is not offered on {ticket.get_type_display()} tickets.",
            field="action",
        )
    if not action.changes_data:
        raise DomainError(
            f"“{action.title}” only reads: call it directly, there is nothing to confirm.",
            code="read_only",
        )
    arguments = action_arguments_validate(action, arguments)
    ticket = _lock(ticket)
    if ticket.status in DONE_STATUSES:
        raise Conflict(
            "The ticket is resolved or closed: no action is started on it.",
            code="invalid_transition",
        )
    pending = ActionRun.objects.filter(
        ticket=ticket, action=action, arguments=arguments, status__in=PENDING_ACTION_RUN_STATUSES
    ).first()
    if pending is not None:
        return pending
    run = ActionRun.objects.create(ticket=ticket, action=action, arguments=arguments)
    events.action_run_event(
        run=run,
        kind=Kind.ACTION_REQUESTED,
        actor_kind=actor_kind,
        metadata={"arguments": arguments},
    )
    after_commit("ticket_changed", ticket_id=ticket.pk)
    return run


def _queue(run: ActionRun) -> None:
    run.status = R.QUEUED
    schedule_after_commit(EXECUTE_TASK, run.pk)


@transaction.atomic
def action_run_confirm(*, run: ActionRun, actor) -> ActionRun:
    """The customer (the ticket's requester or their organization's admin) confirms:
    the run awaits an agent's approval when the action requires it, else it is queued
    (its execution owed through the outbox)."""
    run = _lock_run(run)
    if not _may_confirm(run.ticket, actor):
        raise NotPermitted(
            "Only the customer who opened the ticket (or their organization's admin) can "
            "confirm this."
        )
    target = R.AWAITING_APPROVAL if run.action.requires_approval else R.QUEUED
    _move(run, target)
    run.confirmed_at = timezone.now()
    if target == R.QUEUED:
        _queue(run)
    run.save(update_fields=["status", "confirmed_at", "updated_at"])
    events.action_run_event(run=run, kind=Kind.ACTION_CONFIRMED, actor=actor)
    if target == R.AWAITING_APPROVAL:
        _system_message(
            run.ticket,
            f"You confirmed “{run.action.title}”. A person from our team checks it before "
            "it is done.",
        )
    else:
        after_commit("ticket_changed", ticket_id=run.ticket_id)
    return run


@transaction.atomic
def action_run_decline(*, run: ActionRun, actor) -> ActionRun:
    """The customer declines: nothing runs; the conversation says so."""
    run = _lock_run(run)
    if not _may_confirm(run.ticket, actor):
        raise NotPermitted(
            "Only the customer who opened the ticket (or their organization's admin) can "
            "decline this."
        )
    _move(run, R.DECLINED)
    run.decided_at = timezone.now()
    run.save(update_fields=["status", "decided_at", "updated_at"])
    events.action_run_event(run=run, kind=Kind.ACTION_DECLINED, actor=actor)
    _system_message(run.ticket, f"You declined “{run.action.title}”: nothing was changed.")
    return run


@transaction.atomic
def action_run_approve(*, run: ActionRun, actor) -> ActionRun:
    """An agent approves a run the customer confirmed: it is queued."""
    if not is_agent(actor):
        raise NotPermitted("Only support staff can approve actions.")
    run = _lock_run(run)
    if run.status == R.AWAITING_CONFIRMATION:
        raise Conflict("The customer has not confirmed this action yet.", code="invalid_transition")
    _move(run, R.QUEUED)
    _queue(run)
    run.approved_by = actor
    run.decided_at = timezone.now()
    run.save(update_fields=["status", "approved_by", "decided_at", "updated_at"])
    events.action_run_event(run=run, kind=Kind.ACTION_APPROVED, actor=actor)
    after_commit("ticket_changed", ticket_id=run.ticket_id)
    return run


@transaction.atomic
def action_run_reject(*, run: ActionRun, actor, reason: str) -> ActionRun:
    """An agent rejects a run (awaiting the customer or their approval): nothing runs;
    the customer is told in the conversation, the reason stays with the team (an
    internal note)."""
    if not is_agent(actor):
        raise NotPermitted("Only support staff can reject actions.")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why the action is rejected.", field="reason")
    run = _lock_run(run)
    _move(run, R.REJECTED)
    run.decided_at = timezone.now()
    run.save(update_fields=["status", "decided_at", "updated_at"])
    events.action_run_event(run=run, kind=Kind.ACTION_REJECTED, actor=actor)
    _system_message(
        run.ticket,
        f"“{run.action.title}” was not carried out: our team will follow up with you here.",
    )
    message_add(
        ticket=run.ticket,
        author=actor,
        body=f"Rejected “{run.action.title}”: {reason}",
        is_internal=True,
    )
    return run


def action_run_execute(run_id: int) -> str:
    """Run a queued run once (the task's body); returns ``"succeeded"``, ``"failed"`` or
    ``"skipped"``.

    Only a queued run runs, and its row stays locked (SKIP LOCKED) through the call and
    the recording of its outcome: a redelivered task finds it locked or no longer queued
    and does nothing. (The call is bounded by the action's timeout, at most a minute.) A
    worker that dies mid-call leaves it queued for the outbox to send again; the
    ``Idempotency-Key`` header lets the server tell the repeat.

    Success: the status and body are stored and the customer reads "Done: <title>.".
    Failure (any error, never raised): the error is stored, the team gets an internal
    note, the customer is told a person takes over, and the ticket is escalated (reopened
    first when it was resolved or closed meanwhile).
    """
    with transaction.atomic():
        run = (
            ActionRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("action", "ticket")
            .filter(pk=run_id, status=R.QUEUED)
            .first()
        )
        if run is None:
            return "skipped"
        try:
            if not run.action.is_active:
                raise ActionFailed("The action was switched off before it ran.")
            result = action_call(
                run.action, run.arguments, idempotency_key=f"helpdesk-action-run-{run.pk}"
            )
        except DomainError as error:  # ActionFailed, or arguments the schema now refuses
            status, body = getattr(error, "status", None), getattr(error, "body", None)
            _record_failure(run, error.message, status=status, body=body)
            return R.FAILED
        except Exception as error:  # the outcome is recorded whatever went wrong
            logger.exception("action run %s failed", run.pk, extra={"ticket_id": run.ticket_id})
            _record_failure(run, f"{type(error).__name__}: {error}")
            return R.FAILED
        _record_success(run, result)
        return R.SUCCEEDED


def _record_success(run: ActionRun, result: dict) -> None:
    _move(run, R.SUCCEEDED)
    run.response_status, run.response_body, run.error = result["status"], result["body"], ""
    run.save(update_fields=["status", "response_status", "response_body", "error", "updated_at"])
    events.action_run_event(
        run=run, kind=Kind.ACTION_SUCCEEDED, metadata={"response_status": run.response_status}
    )
    _tell(run, lambda: _system_message(run.ticket, f"Done: {run.action.title}."))


def _record_failure(run: ActionRun, error: str, *, status=None, body=None) -> None:
    error = _clean_text(error)[:ERROR_CHARS]
    _move(run, R.FAILED)
    run.response_status, run.response_body, run.error = status, body, error
    run.save(update_fields=["status", "response_status", "response_body", "error", "updated_at"])
    events.action_run_event(
        run=run,
        kind=Kind.ACTION_FAILED,
        is_internal=True,
        metadata={"error": error[:500], "response_status": status},
    )
    title = run.action.title
    arguments = json.dumps(run.arguments, ensure_ascii=False)
    _tell(
        run,
        lambda: _system_message(
            run.ticket,
            f"“{title}” failed and was not done: {error}\nArguments: {arguments}\n"
            "The customer confirmed it; please check and finish it by hand.",
            internal=True,
        ),
    )
    _tell(
        run,
        lambda: _system_message(
            run.ticket,
            f"We could not complete “{title}” automatically. A person from our team takes "
            "it from here.",
        ),
    )
    _tell(run, lambda: _escalate(run, f"The action “{title}” failed: {error}"[:1000]))


def _escalate(run: ActionRun, reason: str) -> None:
    ticket = Ticket.objects.get(pk=run.ticket_id)
    if ticket.status in DONE_STATUSES:
        ticket = ticket_reopen(ticket=ticket, actor=None, reason="an action failed")
    ticket_escalate(
        ticket=ticket,
        kind=Escalation.Kind.COMPLEX,
        reason=reason,
        actor_kind=TicketEvent.ActorKind.SYSTEM,
    )


def _tell(run: ActionRun, step) -> None:
    """One follow-up of an outcome in its own savepoint: if it is refused (a merged
    ticket cannot be reopened…), the outcome itself is still recorded."""
    try:
        with transaction.atomic():
            step()
    except DomainError as error:
        logger.warning(
            "action run %s: a follow-up was refused: %s",
            run.pk,
            error.message,
            extra={"ticket_id": run.ticket_id},
        )
