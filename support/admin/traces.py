"""The ticket page's "Why did the AI do this?" panel: the AI's decision traces of the
ticket, newest first (``support.ai.trace`` describes the steps), each rendered readably:
the triage's neighbours and the policy rules that fired, the retrieval candidates with
their full-text and vector ranks and fused scores, the passages sent, the model's
structured output (pretty JSON), the confidence components, and the route with its
reason. One query, at most ``MAX_TRACES`` traces; collapsed until opened (no script).
"""

from __future__ import annotations

import json

from django.conf import settings

from support import selectors
from support.admin.tickets import TICKET_PAGE_CONTEXT

#: Traces shown on the page (the API lists them all: ``/api/tickets/{ref}/ai-traces/``).
MAX_TRACES = 10


def ai_trace_context(ticket, request) -> dict:
    traces = list(selectors.ai_trace_list(user=request.user, ticket=ticket)[: MAX_TRACES + 1])
    return {
        "ai_traces": [_view(trace) for trace in traces[:MAX_TRACES]],
        "ai_traces_more": len(traces) > MAX_TRACES,
        "ai_traces_retention_days": settings.HELPDESK_AI_TRACE_RETENTION_DAYS,
    }


def _view(trace) -> dict:
    """The trace with its steps by name, and the model's output as indented JSON."""
    steps = {s.get("step"): s for s in trace.steps or [] if isinstance(s, dict)}
    model = steps.get("model") or {}
    output = model.get("output")
    calls = [
        {
            **call,
            "arguments_json": json.dumps(call.get("arguments") or {}, ensure_ascii=False),
            "result_json": json.dumps(call.get("result"), ensure_ascii=False),
        }
        for call in model.get("tool_calls") or []
        if isinstance(call, dict)
    ]
    return {
        "trace": trace,
        "steps": steps,
        "output_json": json.dumps(output, indent=2, ensure_ascii=False) if output else "",
        "tool_calls": calls,
    }


TICKET_PAGE_CONTEXT.append(ai_trace_context)
