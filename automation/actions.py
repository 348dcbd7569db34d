"""The actions of rules: the *then* part of "when … if … then …".

A rule's ``actions`` is a JSON list, run in order; each item names its ``type`` and its
arguments (:data:`ACTIONS` says which, with labels, for forms and API clients):

====================  =================================================================
type                  arguments and what it does (always through a support service)
====================  =================================================================
assign_team           ``team`` (id): route the ticket to the team (``ticket_route``)
assign_person         ``user`` (id of active staff): assign (``ticket_assign``)
assign_round_robin    ``team`` (id): the team and its available member assigned least
                      recently (``ticket_route(round_robin=True)``)
set_priority          ``priority``: ``ticket_change_priority``
set_type              ``ticket_type``: ``ticket_update``
set_status            ``status`` (awaiting_customer, resolved, closed): ``ticket_resolve`` /
                      ``ticket_close`` / ``ticket_set_status``
add_note              ``body``: an internal note written by the system (``message_add``)
send_reply            ``body``: a public reply from the team (no author; signed by the
                      assignee, else "The support team"); the customer is emailed it
send_saved_reply      ``saved_reply`` (id): the same with the saved reply's text, then its
                      status change, as ``saved_reply_apply`` does
notify_email          ``to`` (assignee, team, requester or addresses), ``addresses`` (a list,
                      with ``to=addresses``), ``subject``, ``body``: an email sent after the
                      change commits (task ``automation.tasks.send_rule_email``, outbox)
escalate              ``topic``, ``reason``: ``ticket_escalate`` as a policy escalation (as
                      the customer's request with the topic ``human``)
call_webhook          ``endpoint`` (id): a delivery queued to the outbound webhook
add_tags              ``tags`` (names): ``ticket_tag(add=…)`` (new names are created unless
                      the desk's tags are curated)
remove_tags           ``tags`` (names): ``ticket_tag(remove=…)``
====================  =================================================================

Subjects and bodies may use the placeholders of saved replies (``{{ ticket.reference }}``,
``{{ ticket.subject }}``, ``{{ customer.first_name }}`` …).

:func:`run` runs each action in its own savepoint: an action the domain refuses
(:class:`DomainError`, :class:`Conflict`, a team that no longer exists) is rolled back
alone, recorded in the outcome and as a ticket event, and never fails the change that
triggered the rule. Each action done is recorded with ``rule_applied_event``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.contrib.auth import get_user_model
from django.core.validators import validate_email
from django.db import transaction

from automation.conditions import choices_of
from core.errors import DomainError

logger = logging.getLogger(__name__)

MAX_ACTIONS = 20
MAX_BODY = 10_000
RECIPIENTS = ("assignee", "team", "requester", "addresses")
SETTABLE_STATUSES = ("awaiting_customer", "resolved", "closed")


@dataclass(frozen=True)
class Arg:
    name: str
    label: str
    kind: str  # id, choice, text, long_text, emails, tags
    model: str = ""
    choices: Callable[[], list[tuple[str, str]]] | None = None
    required: bool = True
    max_length: int = 200

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "model": self.model,
            "required": self.required,
            "choices": [{"value": v, "label": str(lab)} for v, lab in (self.choices or list)()],
        }


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    args: tuple[Arg, ...]
    perform: Callable[..., str]

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label, "args": [a.describe() for a in self.args]}


# --------------------------------------------------------------------------------------
# Performing (each returns a short detail for the ticket's event log)
# --------------------------------------------------------------------------------------


def _team(team_id):
    from support.models import Team

    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise DomainError(f"Team {team_id} no longer exists.", field="team")
    return team


def _assign_team(ticket, args, rule) -> str:
    from support.services import ticket_route

    team = _team(args["team"])
    ticket_route(ticket=ticket, team=team, actor=None)
    return f"team {team.name}"


def _assign_round_robin(ticket, args, rule) -> str:
    from support.services import ticket_route

    team = _team(args["team"])
    ticket = ticket_route(ticket=ticket, team=team, actor=None, round_robin=True)
    who = ticket.assignee.get_username() if ticket.assignee_id else "nobody available"
    return f"team {team.name}, {who}"


def _assign_person(ticket, args, rule) -> str:
    from support.services import ticket_assign

    user = get_user_model().objects.filter(pk=args["user"]).first()
    if user is None:
        raise DomainError(f"User {args['user']} no longer exists.", field="user")
    ticket_assign(ticket=ticket, assignee=user, actor=None)
    return user.get_username()


def _set_priority(ticket, args, rule) -> str:
    from support.services import ticket_change_priority

    ticket_change_priority(
        ticket=ticket, priority=args["priority"], actor=None, actor_kind="system"
    )
    return args["priority"]


def _set_type(ticket, args, rule) -> str:
    from support.services import ticket_update

    ticket_update(ticket=ticket, actor=None, type=args["ticket_type"], actor_kind="system")
    return args["ticket_type"]


def _set_status(ticket, args, rule) -> str:
    from support import services

    status = args["status"]
    if status == "resolved":
        services.ticket_resolve(ticket=ticket, actor=None, actor_kind="system")
    elif status == "closed":
        services.ticket_close(ticket=ticket, actor=None, actor_kind="system")
    else:
        services.ticket_set_status(ticket=ticket, status=status, actor=None, actor_kind="system")
    return status


def _add_note(ticket, args, rule) -> str:
    from support.models import Message
    from support.services import message_add

    message_add(
        ticket=ticket,
        author=None,
        body=args["body"],
        sender_kind=Message.SenderKind.SYSTEM,
        is_internal=True,
    )
    return args["body"][:100]


# Signs a rule's saved reply when nobody is assigned: {{ agent.first_name }}.
_TEAM_SIGNATURE = SimpleNamespace(first_name="The support team", get_username=lambda: "support")


def _reply_as_team(ticket, text: str):
    """A public reply from the team (no author), placeholders filled in; signed by the
    assignee when there is one. The customer is emailed it like any reply."""
    from support import services
    from support.models import Message

    signer = ticket.assignee if ticket.assignee_id else _TEAM_SIGNATURE
    return services.message_add(
        ticket=ticket,
        author=None,
        body=services.saved_reply_render(SimpleNamespace(body=text), ticket=ticket, agent=signer),
        sender_kind=Message.SenderKind.AGENT,
    )


def _send_reply(ticket, args, rule) -> str:
    _reply_as_team(ticket, args["body"])
    return args["body"][:100]


def _send_saved_reply(ticket, args, rule) -> str:
    from support import services
    from support.models import SavedReply

    reply = SavedReply.objects.filter(pk=args["saved_reply"]).first()
    if reply is None:
        raise DomainError(f"Saved reply {args['saved_reply']} no longer exists.")
    if not reply.is_active:
        raise DomainError(f"The saved reply “{reply.title}” is archived.")
    _reply_as_team(ticket, reply.body)  # sent by the team, not by a person
    if reply.new_status == "resolved":
        services.ticket_resolve(ticket=ticket, actor=None, actor_kind="system")
    elif reply.new_status == "closed":
        services.ticket_close(ticket=ticket, actor=None, actor_kind="system")
    elif reply.new_status:
        services.ticket_set_status(
            ticket=ticket, status=reply.new_status, actor=None, actor_kind="system"
        )
    return reply.title


def _notify_email(ticket, args, rule) -> str:
    from core.outbox import schedule_after_commit

    schedule_after_commit(
        "automation.tasks.send_rule_email",
        ticket.pk,
        getattr(rule, "pk", None),
        args["to"],
        list(args.get("addresses") or []),
        args["subject"],
        args["body"],
    )
    return f"email to {args['to']}"


def _escalate(ticket, args, rule) -> str:
    from support.models import Escalation
    from support.services import ticket_escalate

    topic = args.get("topic", "")
    if type(ticket).objects.filter(pk=ticket.pk, status="escalated").exists():
        # Already with people (another rule of the same run escalated it): once is enough.
        return "already escalated"
    # A customer asking for a person is their request, not the desk's policy.
    kind = Escalation.Kind.CUSTOMER_REQUESTED if topic == "human" else Escalation.Kind.POLICY
    ticket_escalate(
        ticket=ticket,
        kind=kind,
        reason=args.get("reason") or f"Rule “{getattr(rule, 'name', '')}”",
        topic=args.get("topic", ""),
        actor=None,
        actor_kind="system",
    )
    return args.get("topic") or "escalated"


def _add_tags(ticket, args, rule) -> str:
    from support.services import ticket_tag

    ticket_tag(ticket=ticket, add=args["tags"], actor=None, actor_kind="system")
    return ", ".join(args["tags"])


def _remove_tags(ticket, args, rule) -> str:
    from support.services import ticket_tag

    ticket_tag(ticket=ticket, remove=args["tags"], actor=None, actor_kind="system")
    return ", ".join(args["tags"])


def _call_webhook(ticket, args, rule) -> str:
    from automation import webhooks

    delivery = webhooks.queue_rule_call(endpoint_id=args["endpoint"], ticket=ticket, rule=rule)
    if delivery is None:
        raise DomainError(f"Webhook endpoint {args['endpoint']} is gone or disabled.")
    return f"webhook {args['endpoint']}"


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------


def _status_choices():
    from support.models import TicketStatus

    return [(s, TicketStatus(s).label) for s in SETTABLE_STATUSES]


def _topic_choices():
    from support.ai.triage import POLICY_RULES

    topics: dict[str, str] = {}
    for topic, why, *_ in POLICY_RULES:  # one choice per topic (billing has two rules)
        topics[topic] = f"{topics[topic]}, {why}" if topic in topics else why
    return list(topics.items())


_TEAM = Arg("team", "Team", "id", model="support.Team")

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in [
        Action("assign_team", "Route to a team", (_TEAM,), _assign_team),
        Action(
            "assign_person",
            "Assign to a person",
            (Arg("user", "Agent", "id", model="auth.User"),),
            _assign_person,
        ),
        Action(
            "assign_round_robin",
            "Assign round-robin in a team",
            (_TEAM,),
            _assign_round_robin,
        ),
        Action(
            "set_priority",
            "Set the priority",
            (Arg("priority", "Priority", "choice", choices=choices_of("TicketPriority")),),
            _set_priority,
        ),
        Action(
            "set_type",
            "Set the type",
            (Arg("ticket_type", "Type", "choice", choices=choices_of("TicketType")),),
            _set_type,
        ),
        Action(
            "set_status",
            "Set the status",
            (Arg("status", "Status", "choice", choices=_status_choices),),
            _set_status,
        ),
        Action(
            "add_note",
            "Add an internal note",
            (Arg("body", "Note", "long_text", max_length=MAX_BODY),),
            _add_note,
        ),
        Action(
            "send_reply",
            "Reply to the customer",
            (Arg("body", "Reply", "long_text", max_length=MAX_BODY),),
            _send_reply,
        ),
        Action(
            "send_saved_reply",
            "Send a saved reply to the customer",
            (Arg("saved_reply", "Saved reply", "id", model="support.SavedReply"),),
            _send_saved_reply,
        ),
        Action(
            "notify_email",
            "Send an email",
            (
                Arg(
                    "to",
                    "To",
                    "choice",
                    choices=lambda: [
                        ("assignee", "The assignee"),
                        ("team", "The ticket's team"),
                        ("requester", "The customer"),
                        ("addresses", "These addresses"),
                    ],
                ),
                Arg("addresses", "Addresses", "emails", required=False),
                Arg("subject", "Subject", "text", max_length=200),
                Arg("body", "Body", "long_text", max_length=MAX_BODY),
            ),
            _notify_email,
        ),
        Action(
            "escalate",
            "Escalate to people",
            (
                Arg("topic", "Topic", "text", required=False, max_length=30),
                Arg("reason", "Reason", "text", max_length=500),
            ),
            _escalate,
        ),
        Action(
            "call_webhook",
            "Call a webhook",
            (Arg("endpoint", "Webhook endpoint", "id", model="automation.WebhookEndpoint"),),
            _call_webhook,
        ),
        Action("add_tags", "Add tags", (Arg("tags", "Tags", "tags"),), _add_tags),
        Action("remove_tags", "Remove tags", (Arg("tags", "Tags", "tags"),), _remove_tags),
    ]
}


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _fail(message: str) -> None:
    raise DomainError(message, field="actions")


def _model(label: str):
    from django.apps import apps

    if label == "auth.User":
        return get_user_model()
    return apps.get_model(label)


def _check_arg(arg: Arg, value: Any, where: str) -> Any:
    if value in (None, "", []):
        if arg.required:
            _fail(f"{where}: {arg.label.lower()} is required.")
        return [] if arg.kind in ("emails", "tags") else ""
    if arg.kind == "tags":
        return _check_tags(value, where)
    if arg.kind == "id":
        if isinstance(value, bool):
            _fail(f"{where}: {arg.label.lower()} is an id (a whole number).")
        try:
            value = int(value)
        except (TypeError, ValueError):
            _fail(f"{where}: {arg.label.lower()} is an id (a whole number), not “{value}”.")
        row = _model(arg.model).objects.filter(pk=value).first()
        if row is None:
            _fail(f"{where}: there is no {arg.label.lower()} with id {value}.")
        if arg.model == "auth.User":
            from core.roles import is_agent

            if not is_agent(row):
                _fail(f"{where}: {row.get_username()} is not active staff.")
        return value
    if arg.kind == "choice":
        allowed = [v for v, _ in arg.choices()]
        if value not in allowed:
            _fail(f"{where}: {arg.label.lower()} is one of: {', '.join(allowed)}.")
        return value
    if arg.kind in ("text", "long_text"):
        if not isinstance(value, str):
            _fail(f"{where}: {arg.label.lower()} is text.")
        value = value.strip()
        if arg.required and not value:
            _fail(f"{where}: {arg.label.lower()} is required.")
        if len(value) > arg.max_length:
            _fail(f"{where}: {arg.label.lower()} has at most {arg.max_length} characters.")
        return value
    if arg.kind == "emails":
        if isinstance(value, str):
            value = [part for part in re.split(r"[,;\s]+", value) if part]
        if not isinstance(value, list) or len(value) > 20:
            _fail(f"{where}: give at most 20 email addresses.")
        for address in value:
            try:
                validate_email(address)
            except Exception:
                _fail(f"{where}: “{address}” is not an email address.")
        return value
    raise AssertionError(arg.kind)  # pragma: no cover


def _check_tags(value: Any, where: str) -> list[str]:
    """Tag names (a list, or comma-separated), normalized; in curated mode each must be
    in the list of tags."""
    from django.conf import settings

    from support.models import Tag
    from support.services import MAX_TAGS_PER_TICKET, tag_normalize

    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value or len(value) > MAX_TAGS_PER_TICKET:
        _fail(f"{where}: give 1 to {MAX_TAGS_PER_TICKET} tag names.")
    names = []
    for name in value:
        try:
            normal = tag_normalize(name)
        except DomainError as error:
            _fail(f"{where}: {error.message}")
        if normal not in names:
            names.append(normal)
    if not settings.HELPDESK_TAGS_FREE:
        known = set(Tag.objects.filter(name__in=names).values_list("name", flat=True))
        unknown = [name for name in names if name not in known]
        if unknown:
            _fail(f"{where}: not in the list of tags: {', '.join(unknown)}.")
    return names


def validate(actions: Any) -> list:
    """The actions, checked and normalised; raises :class:`DomainError`
    (``field="actions"``) naming the faulty action. At least one action."""
    if not isinstance(actions, list) or not actions:
        _fail("Add at least one action.")
    if len(actions) > MAX_ACTIONS:
        _fail(f"A rule has at most {MAX_ACTIONS} actions.")
    checked = []
    for index, item in enumerate(actions, 1):
        where = f"Action {index}"
        if not isinstance(item, dict):
            _fail(f"{where}: expected an object with a “type”.")
        spec = ACTIONS.get(item.get("type"))
        if spec is None:
            _fail(f"{where}: unknown type “{item.get('type')}”; use one of: {', '.join(ACTIONS)}.")
        where = f"{where} ({spec.label.lower()})"
        known = {"type"} | {a.name for a in spec.args}
        unknown = set(item) - known
        if unknown:
            _fail(f"{where}: unknown argument(s) {', '.join(sorted(unknown))}.")
        normal = {"type": spec.name}
        for arg in spec.args:
            normal[arg.name] = _check_arg(arg, item.get(arg.name), where)
        if spec.name == "notify_email" and normal["to"] == "addresses" and not normal["addresses"]:
            _fail(f"{where}: give the addresses to write to.")
        checked.append(normal)
    return checked


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


def run(actions: list, *, ticket, rule) -> list[dict]:
    """Do ``actions`` to ``ticket`` for ``rule``, each in its own savepoint; the outcome
    lists each action with ``done`` or ``refused`` and why."""
    from support import events
    from support.models import Ticket

    outcome = []
    for item in actions or []:
        spec = ACTIONS.get(item.get("type"))
        name = item.get("type", "?")
        try:
            if spec is None:
                raise DomainError(f"Unknown action “{name}”.")
            with transaction.atomic():
                # Services lock and re-read the row; each action sees the last one's work.
                current = Ticket.objects.select_related("assignee", "requester", "team").get(
                    pk=ticket.pk
                )
                detail = spec.perform(current, item, rule)
        except Exception as error:  # a rule never fails the change that triggered it
            # The savepoint rolled the action back: its events were never written.
            events.take_unannounced(ticket.pk)
            if not isinstance(error, DomainError):
                logger.exception("rule %s: action %s failed", rule.pk, name)
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            outcome.append({"action": name, "result": "refused", "detail": message})
            events.rule_applied_event(
                ticket=ticket,
                rule_id=rule.pk,
                rule_name=rule.name,
                action=name,
                detail=f"refused: {message}"[:500],
            )
            continue
        outcome.append({"action": name, "result": "done", "detail": detail})
        events.rule_applied_event(
            ticket=ticket, rule_id=rule.pk, rule_name=rule.name, action=name, detail=detail
        )
    return outcome


# --------------------------------------------------------------------------------------
# The email of notify_email (run by automation.tasks.send_rule_email after commit)
# --------------------------------------------------------------------------------------


def recipients_for(ticket, to: str, addresses: list) -> list[str]:
    """Who ``to`` names on ``ticket`` now (the team: its contact, else its members)."""
    if to == "addresses":
        found = list(addresses)
    elif to == "requester":
        found = [ticket.requester.email]
    elif to == "assignee":
        found = [ticket.assignee.email] if ticket.assignee_id else []
    elif to == "team":
        team = ticket.team
        if team is None:
            found = []
        elif team.escalation_contact:
            found = [team.escalation_contact]
        else:
            found = list(
                team.members.filter(is_active=True).order_by("pk").values_list("email", flat=True)
            )
    else:
        found = []
    return [address for address in dict.fromkeys(found) if address]


def send_email(
    *, ticket_id: int, rule_id: int | None, to: str, addresses: list, subject: str, body: str
) -> int:
    """Send a rule's email about a ticket; returns how many emails left (0 or 1)."""
    from django.conf import settings
    from django.core.mail import EmailMessage

    from support.models import Ticket
    from support.services import saved_reply_render

    ticket = (
        Ticket.objects.select_related("requester", "assignee", "team").filter(pk=ticket_id).first()
    )
    if ticket is None:
        return 0
    recipients = recipients_for(ticket, to, addresses)
    if not recipients:
        logger.info("rule %s: nobody to email about ticket %s (%s)", rule_id, ticket_id, to)
        return 0
    signer = ticket.assignee if ticket.assignee_id else _TEAM_SIGNATURE

    def render(text: str) -> str:
        return saved_reply_render(SimpleNamespace(body=text), ticket=ticket, agent=signer)

    email = EmailMessage(
        subject=render(subject).replace("\n", " ")[:250],
        body=render(body),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        headers={"Auto-Submitted": "auto-generated", "X-Helpdesk-Ticket": ticket.reference},
    )
    return email.send()
