"""Plan an answer to a customer's question without writing anything: triage, retrieval,
the provider's structured answer, the confidence, and the route.

The pipeline applies a plan to a ticket; ``evaluate_agent`` scores plans against labels.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field

from django.conf import settings

from integrations.llm import Completion, LLMError
from knowledge.search import Scope, SearchResult, search
from support.ai import confidence as conf
from support.ai import language as lang
from support.ai import prompts
from support.ai.tools import Toolbox, local_plan, passages_of
from support.ai.triage import ExampleIndex, Triage, triage
from support.models import Escalation
from support.selectors import training_examples_similar

logger = logging.getLogger(__name__)

RESOLVE, ASK, ESCALATE = "resolve", "ask", "escalate"


@dataclass
class Plan:
    triage: Triage
    results: list[SearchResult]
    completion: Completion | None
    confidence: float
    decision: str
    escalation_kind: str = ""
    escalation_reason: str = ""
    error: str = ""
    examples_used: list[dict] = field(default_factory=list)
    training_example_ids: list[int] = field(default_factory=list)
    passages: list[dict] = field(default_factory=list)  # as sent to the model
    language: lang.Language | None = None  # the customer's
    strength: float = 0.0  # retrieval strength of the best article (support.ai.confidence)
    toolbox: Toolbox | None = None  # the tools offered, and what they asked for
    tool_calls: list[dict] = field(default_factory=list)  # each call, as the trace shows it
    tool_steps: int = 0  # model requests of the tool use (0: one plain request)

    @property
    def answer(self) -> str:
        return (self.completion.data.get("answer", "") if self.completion else "").strip()

    @property
    def retrieved_ids(self) -> set[int]:
        """The articles the model was shown: the search's, and those its tools found."""
        found = {p["article_id"] for p in self.toolbox.passages} if self.toolbox else set()
        return {r.article.pk for r in self.results} | found

    @property
    def cited(self) -> list[int]:
        if not self.completion:
            return []
        retrieved = self.retrieved_ids
        return [a for a in self.completion.data.get("cited_article_ids", []) if a in retrieved]

    @property
    def request_needs_human(self) -> bool:
        """The request itself is for people (policy rules, labelled neighbours), whether or
        not the help center covers it: what "needs a person" labels measure."""
        return bool(self.triage.policy) or self.triage.needs_human

    @property
    def needs_human(self) -> bool:
        """A person is needed whatever the confidence: policy, neighbours or the model."""
        model_says = bool(self.completion and self.completion.data.get("needs_human"))
        return bool(self.triage.policy) or self.triage.needs_human or model_says


_examples_lock = threading.Lock()


@functools.cache
def _seed_index() -> ExampleIndex:
    from integrations.embeddings import get_provider
    from support.ai.seed_examples import seed_rows

    with _examples_lock:
        return ExampleIndex.build(seed_rows(), get_provider())


def production_examples() -> ExampleIndex:
    """The labelled examples the agent learns from in production (seed set for now),
    built once per process."""
    return _seed_index()


def warm_up() -> None:
    """Ready what every analysis needs before the first one (a worker process calls it
    when it starts): the embedding model loaded and run once, the examples' index built."""
    from integrations.embeddings import get_provider

    provider = get_provider()
    if hasattr(provider, "warm_up"):
        provider.warm_up()
    production_examples()
    lang.warm_up()


def query_text(subject: str, question: str) -> str:
    """What is embedded and searched for a question (``plan``'s ``query_vector`` is its
    embedding)."""
    return f"{subject}\n{question}".strip()


def plan(
    *,
    question: str,
    subject: str = "",
    conversation: list[dict] | None = None,
    provider,
    scope: Scope | None = None,
    examples: ExampleIndex | None = None,
    exclude_example_id: str | None = None,
    customer_messages: int = 1,
    query_vector=None,
    embed_provider=None,
    retrieval_limit: int = 10,
    passages_for_answer: int = 5,
    learned_examples: int = 3,
    on_partial=None,
    toolbox: Toolbox | None = None,
) -> Plan:
    """``on_partial``: given, the provider streams and it receives the answer as it is
    written, unless triage already hands the request to people (then nobody should
    watch an answer being written that will not be sent).

    ``toolbox``: the tools of the ticket (``support.ai.tools``); given, the provider works
    by tool use (the offline one runs :func:`~support.ai.tools.local_plan`), except when it
    streams (a chat answer being written), which is one plain request."""
    from integrations.embeddings import get_provider as get_embeddings

    embed_provider = embed_provider or get_embeddings()
    text = query_text(subject, question)
    vector = query_vector if query_vector is not None else embed_provider.embed_query(text)
    found = triage(text, vector=vector, examples=examples, exclude_id=exclude_example_id)
    if toolbox is not None and toolbox.ticket is not None:
        ticket_type = toolbox.ticket.type
        toolbox.offer_actions(found.ticket_type if ticket_type == "general" else ticket_type)
    results = search(
        text, scope=scope or Scope(), limit=retrieval_limit, query_vector=vector, kind="agent"
    )
    neighbours = [label for _, label in found.neighbours[:3]]
    language = lang.detect(question)
    passages = passages_of(results[:passages_for_answer])
    # Approved, anonymized resolutions of similar tickets (the training loop) come first:
    # they carry answers that worked; the labelled seed neighbours follow.
    learned = training_examples_similar(vector, limit=learned_examples) if learned_examples else []
    examples_for_prompt = [
        {
            "question": e.anonymized_question,
            "ticket_type": e.ticket_type,
            "answer": e.anonymized_answer,
            "source": "approved_resolution",
        }
        for e in learned
    ] + [
        {
            "question": e.get("text", ""),
            "ticket_type": e.get("ticket_type"),
            "needs_human": e.get("needs_human"),
            **({"answer": e["answer"]} if e.get("answer") else {}),
        }
        for e in neighbours
    ]
    messages = prompts.build_messages(
        subject=subject,
        conversation=conversation or [{"from": "customer", "text": question}],
        passages=[_for_prompt(p) for p in passages],
        examples=examples_for_prompt,
        language=language.name,
    )
    # What a provider that works on data (local) needs, decisions included: each passage's
    # retrieval strength and language, the thresholds, all ours (integrations decides
    # nothing).
    context = {
        "passages": passages,
        "thresholds": conf.provider_thresholds(),
        "triage": {
            "ticket_type": found.ticket_type,
            "priority": found.priority,
            "sentiment": found.sentiment,
        },
        "language": language.as_context(),
    }

    completion, error, tool_calls, tool_steps = None, "", [], 0
    streaming = {}
    if on_partial is not None and not (found.policy or found.needs_human):
        streaming["on_partial"] = on_partial
    request = {
        "system": prompts.SYSTEM_PROMPT,
        "messages": messages,
        "schema": prompts.ANSWER_SCHEMA,
        "schema_name": prompts.SCHEMA_NAME,
    }
    try:
        if toolbox is not None and on_partial is None:
            run = provider.run_tools(
                **request,
                tools=toolbox.tools,
                execute=toolbox.execute,
                context={**context, "tool_plan": local_plan(toolbox, text)},
                max_steps=settings.HELPDESK_AI_MAX_TOOL_STEPS,
            )
            completion, tool_calls, tool_steps = run.completion, run.calls, run.steps
        else:
            completion = provider.complete(**request, context=context, **streaming)
    except LLMError as exc:
        error = str(exc)
        logger.warning("AI answer failed: %s", exc)

    strength = conf.retrieval_strengths([r.similarity for r in results])[0] if results else 0.0
    confidence = 0.0
    if completion is not None:
        confidence = conf.combine(
            self_rating=completion.data.get("confidence", 0.0),
            strength=strength,
            cited=completion.data.get("cited_article_ids", []),
            retrieved=[r.article.pk for r in results]
            + [p["article_id"] for p in (toolbox.passages if toolbox else [])],
            grounded=bool(toolbox and toolbox.records),
        )
    result = Plan(
        triage=found,
        results=results,
        completion=completion,
        confidence=confidence,
        decision=ASK,
        error=error,
        examples_used=neighbours,
        training_example_ids=[e.pk for e in learned],
        passages=passages,
        language=language,
        strength=strength,
        toolbox=toolbox,
        tool_calls=tool_calls,
        tool_steps=tool_steps,
    )
    _route(result, customer_messages=customer_messages)
    return result


def _for_prompt(passage: dict) -> dict:
    """A passage as the model reads it (the strength is ours, not the model's business)."""
    return {k: v for k, v in passage.items() if k not in ("strength", "language_name")}


def _route(plan_: Plan, *, customer_messages: int) -> None:
    t = plan_.triage
    data = plan_.completion.data if plan_.completion else {}
    if t.policy:
        topic, why = t.policy[0]
        kind = Escalation.Kind.CUSTOMER_REQUESTED if topic == "human" else Escalation.Kind.POLICY
        plan_.decision, plan_.escalation_kind = ESCALATE, kind
        plan_.escalation_reason = f"Always handled by people: {why}."
    elif plan_.completion is None:
        plan_.decision, plan_.escalation_kind = ESCALATE, Escalation.Kind.AI_UNAVAILABLE
        plan_.escalation_reason = f"AI unavailable: {plan_.error}"[:500]
    elif plan_.toolbox is not None and plan_.toolbox.escalation:
        plan_.decision, plan_.escalation_kind = ESCALATE, Escalation.Kind.COMPLEX
        plan_.escalation_reason = f"The AI handed it to people: {plan_.toolbox.escalation}"
    elif customer_messages > settings.HELPDESK_AI_MAX_CUSTOMER_MESSAGES:
        plan_.decision, plan_.escalation_kind = ESCALATE, Escalation.Kind.COMPLEX
        plan_.escalation_reason = f"{customer_messages} customer messages without a resolution."
    elif data.get("needs_human") or t.needs_human:
        plan_.decision, plan_.escalation_kind = ESCALATE, Escalation.Kind.COMPLEX
        plan_.escalation_reason = (
            data.get("needs_human_reason") or "Requests like this one need a person."
        )
    elif plan_.toolbox is not None and plan_.toolbox.action_requests:
        # Asked whatever the articles' strength: the customer confirms what was requested.
        plan_.decision = ASK
    elif plan_.confidence < settings.HELPDESK_AI_ESCALATE_BELOW:
        plan_.decision, plan_.escalation_kind = ESCALATE, Escalation.Kind.AI_LOW_CONFIDENCE
        plan_.escalation_reason = (
            f"AI confidence {plan_.confidence:.2f} is below {settings.HELPDESK_AI_ESCALATE_BELOW}."
        )
    elif plan_.confidence >= settings.HELPDESK_AI_AUTO_RESOLVE_AT:
        plan_.decision = RESOLVE
    else:
        plan_.decision = ASK
