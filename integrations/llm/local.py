"""The offline provider: no key, no network, no model of its own.

It answers from the data the agent passes as ``context``: the answer quotes the best
retrieved passage (and names its article); its self-rating is the retrieval strength;
triage fields come from the agent's triage (rules plus nearest labelled examples). So the
product works on a fresh machine and in tests, and honestly escalates what the help
center does not cover. Asked to stream, it hands over its answer in one piece.

It decides nothing of its own: the caller passes, in ``context``,

- ``passages``: ``[{article_id, title, text, similarity, url, strength}]``, ``strength``
  being the caller's retrieval strength (0..1) of that passage;
- ``triage``: ``{ticket_type, priority, sentiment}``;
- ``thresholds``: ``min_similarity`` (below it no passage is an answer: escalate) and
  ``confident_at`` (from it on, no clarifying question is added).

Missing values mean: no strength (0.0), every passage usable, never confident.

With ``language`` = ``{customer, customer_name}`` (the customer's language) and passages
that carry their own (``language``, ``language_name``), an answer from a passage in
another language says so in its first line (and in its reasoning), so the customer knows
why it is not in their language.

Tool use (``run_tools``): no model chooses the calls; the caller's planner prescribes them
in ``context["tool_plan"]`` (``[{name, arguments}]``) and they run in order through the
caller's ``execute``. Passages a ``search_knowledge_base`` call returns
(``{"passages": [...]}``, shaped as ``context["passages"]``) join the context's, then the
answer is made as ``complete`` makes it.

For the agents' copilot it writes an extractive summary (``copilot_summary``) and a reply
from the best passage (``copilot_reply``); rewriting and translating need a language
model, so ``copilot_rewrite`` and ``copilot_translation`` raise ``LLMError`` saying so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from integrations.llm.base import (
    Completion,
    LLMError,
    Message,
    PartialCallback,
    Tool,
    ToolCall,
    ToolRun,
    check_shape,
    execute_call,
)

MODEL = "local-extractive"
#: The tool whose results are passages the answer may come from.
SEARCH_TOOL = "search_knowledge_base"

#: What it answers, by schema name, and the method that does it.
ANSWERS = {
    "ticket_answer": "_answer",
    "copilot_summary": "_summary",
    "copilot_reply": "_reply",
}
#: What needs a language model: refused with the reason an agent reads.
OFFLINE_IMPOSSIBLE = {
    "copilot_rewrite": "Rewriting needs an AI model; the offline (local) provider cannot "
    "do it. Configure Anthropic or OpenAI (HELPDESK_LLM_PROVIDER).",
    "copilot_translation": "Translating needs an AI model; the offline (local) provider "
    "cannot do it. Configure Anthropic or OpenAI (HELPDESK_LLM_PROVIDER).",
}


class LocalProvider:
    name = "local"
    model = MODEL

    def complete(
        self,
        *,
        system: str,
        messages: list[Message],
        schema: dict,
        schema_name: str,
        context: dict | None = None,
        max_tokens: int = 1024,
        on_partial: PartialCallback | None = None,
    ) -> Completion:
        if schema_name in OFFLINE_IMPOSSIBLE:
            raise LLMError(OFFLINE_IMPOSSIBLE[schema_name])
        if schema_name not in ANSWERS or context is None:
            raise LLMError("The local provider only answers tickets from given passages.")
        started = time.perf_counter()
        data = check_shape(getattr(self, ANSWERS[schema_name])(context), schema)
        if on_partial is not None:
            on_partial(dict(data))  # no stream: the whole answer in one piece
        return Completion(
            data=data,
            model=MODEL,
            provider=self.name,
            latency_ms=round((time.perf_counter() - started) * 1000),
        )

    def run_tools(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[Tool],
        execute: Callable[[ToolCall], dict],
        schema: dict,
        schema_name: str,
        context: dict | None = None,
        max_steps: int = 4,
        max_tokens: int = 1024,
    ) -> ToolRun:
        """Run the prescribed calls (``context["tool_plan"]``), then answer. Deterministic:
        call ids ``local-1``, ``local-2``…, the step of a call is its place in the plan, and
        a failing call is recorded like the remote providers record it, then skipped."""
        started = time.perf_counter()
        context = dict(context or {})
        known = {tool.name for tool in tools}
        records: list[dict] = []
        for index, planned in enumerate(context.get("tool_plan") or [], start=1):
            call = ToolCall(
                id=f"local-{index}",
                name=planned["name"],
                arguments=dict(planned.get("arguments") or {}),
            )
            record = execute_call(call, step=index, execute=execute, known=known)
            records.append(record)
            found = record["result"] if call.name == SEARCH_TOOL else None
            if isinstance(found, dict) and isinstance(found.get("passages"), list):
                context["passages"] = _merge_passages(
                    context.get("passages", []), found["passages"]
                )
        completion = self.complete(
            system=system,
            messages=messages,
            schema=schema,
            schema_name=schema_name,
            context=context,
            max_tokens=max_tokens,
        )
        completion.latency_ms = round((time.perf_counter() - started) * 1000)
        return ToolRun(
            completion=completion, calls=records, steps=len(records) + 1, stopped="answered"
        )

    def _answer(self, context: dict) -> dict:
        passages = sorted(context.get("passages", []), key=lambda p: -p["similarity"])
        triage = context.get("triage", {})
        thresholds = context.get("thresholds", {})
        base = {
            "ticket_type": triage.get("ticket_type", "general"),
            "priority": triage.get("priority", "normal"),
            "sentiment": triage.get("sentiment", 0.0),
            "clarifying_question": "",
        }
        if not passages or passages[0]["similarity"] < thresholds.get("min_similarity", 0.0):
            return {
                **base,
                "answer": "",
                "cited_article_ids": [],
                "confidence": 0.0,
                "needs_human": True,
                "needs_human_reason": "No help article matches this question.",
                "reasoning": "Nothing in the help center is close to the question.",
            }
        best = passages[0]
        body = best["text"].split("\n\n", 1)[-1].strip()
        cited = [best["article_id"]]
        answer = f"Here is what our help center says in “{best['title']}”:\n\n{body}"
        second = next(
            (
                p
                for p in passages[1:]
                if p["article_id"] == best["article_id"]
                and p["similarity"] >= best["similarity"] - 0.05
            ),
            None,
        )
        if second is not None:
            answer += "\n\n" + second["text"].split("\n\n", 1)[-1].strip()
        if best.get("url"):
            answer += f"\n\nThe full article: {best['url']}"
        reasoning = f"Best match “{best['title']}” (similarity {best['similarity']:.2f})."
        other_language = _other_language(best, context.get("language") or {})
        if other_language:
            note, why = other_language
            answer = f"{note}\n\n{answer}"
            reasoning += f" {why}"
        strength = float(best.get("strength", 0.0))
        return {
            **base,
            "answer": answer,
            "cited_article_ids": cited,
            "confidence": round(strength, 3),
            "needs_human": False,
            "needs_human_reason": "",
            "clarifying_question": ""
            if strength >= thresholds.get("confident_at", float("inf"))
            else "Does this solve it? If not, tell us what you see and we'll take it from here.",
            "reasoning": reasoning,
        }

    # ---- the agents' copilot ------------------------------------------------------------
    #
    # ``copilot_summary``: context ``messages`` = ``[{from, text, internal}]`` in order
    # (``from``: customer, agent, ai, system). Extractive and deterministic: the customer's
    # request (their first message), what was tried (the first sentence of each answer and
    # note since), and the last state (who wrote last, and what).
    # ``copilot_reply``: context ``passages`` (as for ``ticket_answer``) and ``thresholds``
    # (``min_similarity``): the best passage as a reply the agent edits.

    def _summary(self, context: dict) -> dict:
        messages = [m for m in context.get("messages", []) if (m.get("text") or "").strip()]
        customer = [m for m in messages if m["from"] == "customer"]
        if not messages:
            return {"summary": "The conversation is empty."}
        request = customer[0] if customer else messages[0]
        lines = [f"Request: {_sentences(request['text'], 2)}"]
        tried = [
            m
            for m in messages[messages.index(request) + 1 :]
            if m["from"] in ("agent", "ai") and m["text"] != request["text"]
        ]
        if tried:
            lines.append("Tried:")
            for m in tried[-4:]:
                who = {"agent": "Agent", "ai": "AI"}[m["from"]]
                if m.get("internal"):
                    who += " (internal note)"
                lines.append(f"- {who}: {_sentences(m['text'], 1)}")
        else:
            lines.append("Tried: nothing yet.")
        last = messages[-1]
        if last is not request:
            who = {"customer": "the customer", "agent": "an agent", "ai": "the AI"}.get(
                last["from"], "the system"
            )
            lines.append(f"Last: {who} wrote: {_sentences(last['text'], 1)}")
        waiting = "us" if last["from"] == "customer" else "the customer"
        lines.append(f"Now: waiting for {waiting}.")
        return {"summary": "\n".join(lines)}

    def _reply(self, context: dict) -> dict:
        passages = sorted(context.get("passages", []), key=lambda p: -p["similarity"])
        minimum = context.get("thresholds", {}).get("min_similarity", 0.0)
        if not passages or passages[0]["similarity"] < minimum:
            return {"reply": "", "cited_article_ids": []}
        best = passages[0]
        body = best["text"].split("\n\n", 1)[-1].strip()
        reply = f"Hello,\n\nHere is what our help center says in “{best['title']}”:\n\n{body}"
        if best.get("url"):
            reply += f"\n\nThe full article: {best['url']}"
        reply += "\n\nDoes this solve it? If not, tell us what you see."
        return {"reply": reply, "cited_article_ids": [best["article_id"]]}


def _merge_passages(passages: list[dict], found: list[dict]) -> list[dict]:
    """The context's passages with those a search found: one passage per article the
    search returned, the one with the highest similarity of both lists."""
    best: dict = {}
    for passage in found:
        article = passage["article_id"]
        if article not in best or passage["similarity"] > best[article]["similarity"]:
            best[article] = passage
    kept = []
    for passage in passages:
        article = passage["article_id"]
        if article not in best:
            kept.append(passage)
        elif passage["similarity"] >= best[article]["similarity"]:
            best[article] = passage
    return kept + list(best.values())


def _other_language(passage: dict, language: dict) -> tuple[str, str] | None:
    """The note (first line of the answer) and the reasoning sentence when ``passage`` is
    not in the customer's language; None when it is, or when either is unknown."""
    theirs, ours = language.get("customer"), passage.get("language")
    if not theirs or not ours or _primary(theirs) == _primary(ours):
        return None
    theirs_name = language.get("customer_name") or theirs
    ours_name = passage.get("language_name") or ours
    note = (
        f"(This answer comes from our {ours_name} help center; "
        f"it is not available in {theirs_name} yet.)"
    )
    why = f"The article is in {ours_name}; the customer writes in {theirs_name}."
    return note, why


def _primary(code: str) -> str:
    return code.split("-")[0].split("_")[0].lower()  # "en-US" is English


def _sentences(text: str, count: int, limit: int = 300) -> str:
    """The first ``count`` sentences of ``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    parts = re.split(r"(?<=[.!?])\s+", flat)
    out = " ".join(parts[:count])
    return out if len(out) <= limit else out[: limit - 1].rstrip() + "…"
