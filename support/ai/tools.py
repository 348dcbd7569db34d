"""The tools the AI agent works with, and the deterministic plan of the offline provider.

With Anthropic and OpenAI the agent works by tool use (``integrations.llm`` runs the
bounded loop, ``HELPDESK_AI_MAX_TOOL_STEPS`` requests at most): the model may call

- ``search_knowledge_base(query)``: another hybrid search, its passages as the first ones;
- ``get_customer_history()``: the requester's other tickets (reference, subject, status,
  type, when), newest first;
- ``action_<name>(…)``: an HTTP action staff defined in admin (``support.models.HttpAction``)
  and allowed on the ticket's type. A read-only one runs now and its answer goes back to
  the model; one that changes data is only *requested*: once the answer is applied, the
  customer is asked to confirm it on the ticket (and an agent to approve it when the
  action requires that) before it runs (``support.services.actions``);
- ``create_follow_up(subject, description)``: a separate request of the customer becomes a
  ticket of its own once the answer is applied (one per analysis);
- ``escalate_to_human(reason)``: the ticket goes to people, with that reason.

Nothing a tool asks for is written while the model is still thinking: the requests are
collected here (:class:`Toolbox`) and applied by the pipeline in the transaction that
writes the AI's answer, so a failed or superseded analysis leaves nothing behind. Every
call, with its arguments, result or error and duration, goes into the ticket's AI trace.

The offline provider cannot choose tools; :func:`local_plan` chooses for it, by rules
anyone can read: a read-only action whose parameters the message spells out (each
required parameter has a ``pattern`` in its schema and the message matches it), and the
customer's history when the message refers to an earlier exchange.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from integrations.llm import Tool, ToolCall
from knowledge.search import Scope, search
from support.ai import confidence as conf
from support.ai import language as lang

MAX_RESULT_TEXT = 4000
#: How the description of a follow-up the AI opened begins (then the original's reference).
FOLLOW_UP_MARK = "Follow-up of "
HISTORY_LIMIT = 10
#: A message that refers to an earlier exchange: the offline plan reads the history.
_REFERS_BACK = re.compile(
    r"\b(again|still|last time|previous(ly)?|earlier|other ticket|my tickets?|"
    r"already (asked|wrote|reported|contacted))\b",
    re.IGNORECASE,
)

SEARCH = Tool(
    name="search_knowledge_base",
    description="Search the help center's articles; returns the best passages with their "
    "article ids (cite those ids).",
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for."}},
        "required": ["query"],
        "additionalProperties": False,
    },
)
HISTORY = Tool(
    name="get_customer_history",
    description="The customer's other tickets, newest first: reference, subject, status, "
    "type and when it was opened.",
    input_schema={
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    },
)
FOLLOW_UP = Tool(
    name="create_follow_up",
    description="Open a separate ticket for another, unrelated request the customer made in "
    "this message (at most one). It is opened when your answer is sent.",
    input_schema={
        "type": "object",
        "properties": {"subject": {"type": "string"}, "description": {"type": "string"}},
        "required": ["subject", "description"],
        "additionalProperties": False,
    },
)
ESCALATE = Tool(
    name="escalate_to_human",
    description="Hand the ticket to a person of the support team, with the reason. Use it "
    "when the articles and tools cannot solve the request.",
    input_schema={
        "type": "object",
        "properties": {"reason": {"type": "string"}},
        "required": ["reason"],
        "additionalProperties": False,
    },
)


@dataclass
class ActionRequest:
    action: Any  # support.models.HttpAction
    arguments: dict


@dataclass
class Toolbox:
    """The tools offered on one ticket, their execution, and what they asked for."""

    ticket: Any = None  # support.models.Ticket, None when evaluating without a ticket
    scope: Scope = field(default_factory=Scope)
    actions: dict[str, Any] = field(default_factory=dict)  # tool name → HttpAction
    passages: list[dict] = field(default_factory=list)  # found by search_knowledge_base
    escalation: str = ""
    follow_up: dict | None = None
    action_requests: list[ActionRequest] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # read-only actions that answered

    def offer_actions(self, ticket_type: str) -> None:
        """The HTTP actions allowed on ``ticket_type`` (the ticket's, or triage's reading of
        a general one) become tools."""
        from support.services.actions import http_actions_for

        self.actions = {a.tool_name: a for a in http_actions_for(ticket_type)}

    @property
    def is_follow_up(self) -> bool:
        """A follow-up the AI opened opens none of its own (no chain of tickets)."""
        return bool(self.ticket is not None and self.ticket.description.startswith(FOLLOW_UP_MARK))

    @property
    def tools(self) -> list[Tool]:
        offered = [SEARCH]
        if self.ticket is not None:
            offered += [HISTORY, ESCALATE] if self.is_follow_up else [HISTORY, FOLLOW_UP, ESCALATE]
        offered += [
            Tool(name=name, description=_action_description(a), input_schema=_schema(a))
            for name, a in self.actions.items()
        ]
        return offered

    def execute(self, call: ToolCall) -> dict:
        """Run one call; a domain error (bad arguments, a failed HTTP call) is raised and
        goes back to the model as the tool's error."""
        if call.name == SEARCH.name:
            return self._search(str(call.arguments.get("query", "")))
        if call.name == HISTORY.name and self.ticket is not None:
            return self._history()
        if call.name == FOLLOW_UP.name and self.ticket is not None and not self.is_follow_up:
            if self.follow_up is not None:
                raise ValueError("One follow-up ticket per answer.")
            self.follow_up = {
                "subject": str(call.arguments.get("subject", ""))[:200].strip() or "Follow-up",
                "description": str(call.arguments.get("description", ""))[:5000].strip(),
            }
            return {"status": "will be opened when your answer is sent"}
        if call.name == ESCALATE.name and self.ticket is not None:
            self.escalation = str(call.arguments.get("reason", ""))[:500].strip() or "Asked"
            return {"status": "the ticket goes to a person when your answer is applied"}
        if call.name in self.actions:
            return self._action(self.actions[call.name], call.arguments)
        raise ValueError(f"No tool {call.name!r}.")

    # ---- the tools -------------------------------------------------------------------

    def _search(self, query: str) -> dict:
        results = search(query, scope=self.scope, limit=5, kind="agent")
        found = passages_of(results)
        self.passages += found
        return {"passages": found}

    def _history(self) -> dict:
        from support.selectors import customer_other_tickets

        tickets = customer_other_tickets(ticket=self.ticket, limit=HISTORY_LIMIT)
        return {
            "tickets": [
                {
                    "reference": t.reference,
                    "subject": t.subject,
                    "status": t.status,
                    "type": t.type,
                    "opened": t.created_at.date().isoformat(),
                }
                for t in tickets
            ]
        }

    def _action(self, action, arguments: dict) -> dict:
        from support.services.actions import action_arguments_validate, action_call

        arguments = action_arguments_validate(action, arguments)
        if not action.changes_data:
            result = action_call(action, arguments)
            self.records.append(action.name)
            body = result.get("body")
            text = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body
            return {"status": result.get("status"), "body": text[:MAX_RESULT_TEXT]}
        self.action_requests.append(ActionRequest(action=action, arguments=arguments))
        confirm = "the customer confirms it on the ticket"
        if action.requires_approval:
            confirm += ", then a person of the support team approves it"
        return {
            "status": "requested",
            "next": f"It runs only after {confirm}. Tell the customer what it will do and "
            "that they will be asked to confirm.",
        }


def passages_of(results) -> list[dict]:
    """Search results as the passages the model reads (and the offline provider answers
    from): the article, its best passage, similarity, retrieval strength and language."""
    out = []
    strengths = conf.retrieval_strengths([r.similarity for r in results])
    for r, strength in zip(results, strengths, strict=True):
        text = r.chunk.text if r.chunk else f"{r.article.title}\n\n{r.snippet}"
        language = lang.detect(text)
        similarity = round(r.similarity or 0.0, 4)
        out.append(
            {
                "article_id": r.article.pk,
                "title": r.article.title,
                "text": text,
                "similarity": similarity,
                "strength": strength,
                "url": f"{settings.SITE_URL}{r.article.get_absolute_url()}",
                "language": language.code,
                "language_name": language.name,
            }
        )
    return out


def local_plan(toolbox: Toolbox, text: str) -> list[dict]:
    """The offline provider's calls, by rules (module docstring)."""
    plan: list[dict] = []
    if toolbox.ticket is not None and _REFERS_BACK.search(text):
        plan.append({"name": HISTORY.name, "arguments": {}})
    for name, action in toolbox.actions.items():
        if action.changes_data:
            continue  # changes are the customer's to ask for and a model's to propose
        arguments = _spelled_out(action.parameters_schema or {}, text)
        if arguments is not None and _mentions(action, text):
            plan.append({"name": name, "arguments": arguments})
    return plan


def _spelled_out(schema: dict, text: str) -> dict | None:
    """Each required parameter from the message by its schema's ``pattern``; None when one
    has no pattern or the message does not match it."""
    arguments = {}
    for key in schema.get("required", []):
        spec = (schema.get("properties") or {}).get(key) or {}
        pattern = spec.get("pattern")
        if not pattern:
            return None
        found = re.search(pattern.strip("^$"), text)
        if found is None:
            return None
        value = found.group(0)
        arguments[key] = int(value) if spec.get("type") == "integer" and value.isdigit() else value
    return arguments


def _mentions(action, text: str) -> bool:
    """The message names what the action is about: a word of its title (4 letters or more)."""
    words = {w for w in re.findall(r"[a-z]{4,}", action.title.lower())}
    return bool(words & set(re.findall(r"[a-z]{4,}", text.lower())))


def _action_description(action) -> str:
    note = ""
    if action.changes_data:
        note = " It changes data: it runs only after the customer confirms"
        note += " and an agent approves." if action.requires_approval else "."
    return f"{action.title}: {action.description}{note}"[:1000]


def _schema(action) -> dict:
    schema = dict(action.parameters_schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema
