"""The story of a desk's past, told the same way to the demo and to the benchmark.

:func:`desk_history` yields, day after day, what happened at a helpdesk: the tickets
opened that day, each with the story of what then happened to it, the help-center
searches, and each article's views and votes. Pure Python, no database, deterministic:
the same :class:`Desk` gives the same history. Customers, agents and articles are
positions (0 is the busiest customer, the most read article); writers map them to rows.

A ticket's story is a list of :class:`Step`, one per action the product takes, in time
order, each with its instant:

``open``            the customer opens the ticket (``ticket_open``)
``ai``              the AI agent's turn (``support.ai.pipeline``): new → analyzing at
                    ``started``, → ai_responding at ``responding``, then at ``at`` its
                    message is recorded and the ticket routed: resolved, the customer
                    asked, or escalated to people with the AI's attempt
``customer_reply``  the requester writes (``message_add``); a resolved ticket reopens
``agent_reply``     an agent answers (``message_add``): the one who has the ticket, or
                    the story's agent, who takes it first when nobody has it
``escalate``        the agent hands the ticket to a specialist team (``ticket_escalate``)
``resolve``, ``close``  the agent settles it (``ticket_resolve``, ``ticket_close``)
``rate``            the requester rates the outcome (``ticket_rate``)

The stories follow the services' rules: a customer's message on a ticket nobody has
makes it new, and the AI analyses every new ticket, so an answered question or a
reopened ticket always gets an ``ai`` step next; the AI resolves from 0.85 confidence,
asks between 0.7 and 0.85 and escalates below (the settings' defaults), or whatever its
confidence when the rules say people handle it (billing disputes, a request for a
person). An agent only acts after an escalation, except to close an unanswered question.
The AI escalates less as the history goes on, and the mix of models shifts.

Nothing happens from ``Desk.end`` on: a story stops before its first step at or after it
(a customer's message goes with the AI's turn that follows it), so no ticket is left new
or half analysed.

Two writers tell the same stories: ``analytics.demo`` through the services with the
clock set to each step (six weeks, a few hundred tickets), and ``bench/rollup`` with
COPY (a year, a million tickets), row for row what the services write.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

OPEN, AI, CUSTOMER_REPLY, AGENT_REPLY = "open", "ai", "customer_reply", "agent_reply"
ESCALATE, RESOLVE, CLOSE, RATE = "escalate", "resolve", "close", "rate"

#: What the AI decides (``support.ai.planner``).
RESOLVED, ASKED, ESCALATED = "resolve", "ask", "escalate"
#: The settings' defaults of the AI's routing (HELPDESK_AI_ESCALATE_BELOW, …_RESOLVE_AT).
ESCALATE_BELOW, RESOLVE_AT = 0.7, 0.85

#: The paths a story can take (``TicketStory.path``).
PATH_AI_RESOLVED = "ai_resolved"
PATH_AI_RESOLVED_REOPENED = "ai_resolved_reopened_escalated"
PATH_ASKED_AI_RESOLVED = "asked_then_ai_resolved"
PATH_ASKED_ESCALATED = "asked_then_escalated"
PATH_ASKED_UNANSWERED = "asked_unanswered"
PATH_ASKED_CLOSED = "asked_unanswered_closed"
PATH_ESCALATED = "escalated_agent_resolved"
PATH_ESCALATED_TWICE = "escalated_twice_agent_resolved"

# ======================================================================================
# The shape of the desk
# ======================================================================================

#: type, share of tickets, chance that the AI escalates it (at the start; it improves)
TYPES = [
    ("bug", 0.15, 0.35),
    ("feature", 0.08, 0.25),
    ("billing", 0.17, 0.40),
    ("account", 0.20, 0.25),
    ("cancellation", 0.05, 0.70),
    ("general", 0.35, 0.22),
]
#: priority, share, factor on the agents' response time
PRIORITIES = [
    ("low", 0.20, 1.6),
    ("normal", 0.55, 1.0),
    ("high", 0.20, 0.6),
    ("urgent", 0.05, 0.35),
]
CHANNELS = [("web", 0.50), ("email", 0.25), ("chat", 0.15), ("api", 0.10)]
#: Share of tickets where the AI asks a question first.
P_ASK = 0.15
#: How much better the AI gets: its chance to escalate, times this at the start …
ESCALATION_START, ESCALATION_END = 1.3, 0.7  # … and this at the end of the history
WEEKDAY_FACTOR = [1.15, 1.10, 1.05, 1.00, 0.90, 0.45, 0.40]  # Monday … Sunday
#: Agents' response-time and rating factors, by position (cycled for more agents).
AGENT_SPEED = [0.6, 0.8, 1.0, 1.0, 1.2, 1.5, 0.9, 0.7, 1.1, 2.0]
AGENT_QUALITY = [0.8, 1.0, 0.9, 1.1, 1.0, 1.3, 0.9, 1.0, 1.2, 1.6]
#: Share of the agents in the general queue; the others take billing and cancellations.
GENERAL_AGENTS = 0.7


@dataclass(frozen=True)
class Model:
    """An AI model of the history: its median latency, how often its resolutions come
    back (a factor), and its share of the analyses at the start and at the end."""

    name: str
    latency_ms: int
    reopen_factor: float
    share_start: float
    share_end: float


#: The demo's two models: the cheaper one takes over during the weeks.
DEMO_MODELS = (
    Model("claude-sonnet-4-5", 6500, 0.75, 0.7, 0.4),
    Model("gpt-4.1-mini", 3500, 1.1, 0.3, 0.6),
)
#: The benchmark's three (Haiku grows from 20 to 50 %, Sonnet falls from 50 to 40 %).
BENCH_MODELS = (
    Model("claude-haiku-4-5-20251001", 2500, 1.4, 0.2, 0.5),
    Model("claude-sonnet-4-5-20250929", 6500, 0.75, 0.5, 0.4),
    Model("gpt-4.1-mini-2025-04-14", 3500, 1.1, 0.3, 0.1),
)

SUBJECTS = {
    "bug": [
        "Export to CSV fails with an error",
        "Dashboard shows a blank page",
        "Notifications arrive twice",
        "Search returns no results",
        "Mobile app crashes on login",
        "Attachments fail to upload",
    ],
    "feature": [
        "Dark mode for the web app",
        "Bulk edit of records",
        "Slack integration",
        "Custom fields on reports",
        "Two-factor authentication with an app",
        "Higher API rate limit",
    ],
    "billing": [
        "Charged twice this month",
        "Invoice shows the wrong VAT number",
        "Change of payment card",
        "Refund for unused seats",
        "Upgrade to the annual plan",
        "Receipt for the last payment",
    ],
    "account": [
        "Cannot reset my password",
        "Change the account owner",
        "Add a teammate to the workspace",
        "Locked out after too many attempts",
        "Change of email address",
        "Enable single sign-on",
    ],
    "cancellation": [
        "Cancel my subscription",
        "Close our company account",
        "Downgrade to the free plan",
        "Stop the automatic renewal",
        "Delete all our data",
        "Pause the subscription for two months",
    ],
    "general": [
        "How do I export my data?",
        "Where can I find the API key?",
        "What are your support hours?",
        "How do I invite my team?",
        "Is there a mobile app?",
        "How do I change the language?",
    ],
}
DETAILS = [
    "It started this morning and happens every time.",
    "Could you help me with this, please?",
    "We need this sorted before our month-end close.",
    "I tried the help center article but it did not help.",
    "This is blocking several people in our team.",
]
ANSWERS = {
    "bug": "This is a known issue fixed in the latest release: reload the page after "
    "clearing the cache and it works again.",
    "feature": "Thanks for the idea! It is on our roadmap; you can vote for it on the "
    "public roadmap to follow its progress.",
    "billing": "I have checked your account: the duplicate charge was reversed and the "
    "refund reaches your card within 5 business days.",
    "account": "You can do this under Settings › Account; I have sent you a link that "
    "walks you through it step by step.",
    "cancellation": "Your subscription will stop at the end of the current period; your "
    "data stays available for export for 30 days.",
    "general": "Yes: the help center article linked below explains it with screenshots, "
    "it takes about two minutes.",
}
QUESTION = "To look into this, could you tell me which account and browser you are using?"
#: The system message of an AI escalation, as ``support.ai.pipeline`` writes it.
HANDOVER_NOTICE = "Thanks for your message. A person from our team will take it from here."
CUSTOMER_ANSWER = "I use the web app in Chrome, on our main account."
CUSTOMER_BACK = "Sorry, it is happening again since yesterday."
AGENT_ANSWER = "Hi, thanks for your patience. "
AGENT_FIX = "I had a closer look and fixed it on our side; it should not come back."
LOW_RATING_COMMENT = "It took too long and did not solve my problem."
SEARCHES = [
    "export csv",
    "reset password",
    "api key",
    "invite team",
    "change email",
    "invoice vat",
    "refund",
    "cancel subscription",
    "single sign-on",
    "two factor authentication",
    "mobile app",
    "dark mode",
    "change language",
    "delete account",
    "slack integration",
    "webhooks",
    "rate limit",
    "custom fields",
    "annual plan",
    "payment card",
]
#: Searches the help center has no good answer for (content gaps).
GAP_SEARCHES = [
    "gdpr data processing agreement",
    "hipaa compliance",
    "on-premise installation",
    "zapier webhook retry",
    "invoice in polish",
    "sandbox environment",
]


@dataclass(frozen=True)
class Desk:
    """Who and what a history is about, how busy it is, and when it happens.

    ``tickets`` and ``searches`` are totals over the ``days`` days from ``start``, spread
    by weekday (quiet weekends), a 50 % growth over the period, some noise and three
    times the volume on ``incident_days`` (positions in the period). Times of day follow
    office hours in ``time_zone``. Nothing happens from ``end`` on (default: midnight
    after the last day).
    """

    start: dt.date
    days: int
    tickets: int
    customers: int
    agents: int
    articles: int = 0
    searches: int = 0
    time_zone: str = "UTC"
    end: dt.datetime | None = None
    seed: int = 7
    models: tuple[Model, ...] = DEMO_MODELS
    incident_days: tuple[int, ...] = ()

    def __post_init__(self):
        if self.customers < 1 or self.agents < 1:
            raise ValueError("a history needs customers and agents")
        if self.end is None:
            end = self.start + dt.timedelta(days=self.days)
            midnight = dt.datetime.combine(end, dt.time.min, tzinfo=ZoneInfo(self.time_zone))
            object.__setattr__(self, "end", midnight.astimezone(dt.UTC))

    @property
    def general_agents(self) -> int:
        """Agents 0 … n-1 take the general queue, the others billing and cancellations."""
        if self.agents == 1:
            return 1
        return max(1, min(self.agents - 1, round(GENERAL_AGENTS * self.agents)))


# ======================================================================================
# What a history is made of
# ======================================================================================


@dataclass(frozen=True, slots=True)
class Handover:
    """An escalation: its kind, the reason given, and the topic that routes it."""

    kind: str
    reason: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Analysis:
    """One run of the AI agent: what it wrote, decided, cost and cited."""

    model: str
    decision: str
    confidence: float
    sentiment: float
    input_tokens: int
    output_tokens: int
    latency_ms: int
    answer: str
    reasoning: str
    question: str = ""
    cited: tuple[int, ...] = ()
    handover: Handover | None = None

    @property
    def message(self) -> str:
        """The AI's message as ``support.ai.pipeline`` writes it: the answer (with the
        question it asks), or for an escalation the attempt, kept for the team."""
        if self.decision == ESCALATED:
            return f"AI attempt (not sent to the customer): {self.answer}"
        return f"{self.answer}\n\n{self.question}" if self.question else self.answer


@dataclass(frozen=True, slots=True)
class Step:
    """One action at ``at``: ``body`` of a message, ``analysis`` (with ``started`` and
    ``responding``) of an AI turn, ``handover`` of an agent's escalation, ``rating`` and
    ``comment`` of a rating."""

    kind: str
    at: dt.datetime
    body: str = ""
    analysis: Analysis | None = None
    started: dt.datetime | None = None
    responding: dt.datetime | None = None
    handover: Handover | None = None
    rating: int | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class TicketStory:
    """One ticket: how it was opened and what happened to it (``steps[0]`` opens it)."""

    number: int  # its place in the whole history, in the order of opening (0, 1, …)
    customer: int
    agent: int  # who handles it when people do (unless somebody has it already)
    subject: str
    description: str
    type: str
    priority: str
    channel: str
    path: str
    steps: tuple[Step, ...]

    @property
    def opened_at(self) -> dt.datetime:
        return self.steps[0].at


@dataclass(frozen=True, slots=True)
class Search:
    """A help-center (or API) search: its results are (article, similarity), best first."""

    at: dt.datetime
    query: str
    source: str
    results: tuple[tuple[int, float], ...]
    customer: int | None


@dataclass(frozen=True, slots=True)
class ArticleDay:
    """An article's readers' counters of one day (views and "was this helpful?")."""

    day: dt.date
    article: int
    views: int
    helpful_votes: int
    not_helpful_votes: int


@dataclass(frozen=True)
class Day:
    """What happened on one local day: the tickets opened (their stories run on), the
    searches and the articles' counters."""

    day: dt.date
    tickets: tuple[TicketStory, ...]
    searches: tuple[Search, ...] = ()
    articles: tuple[ArticleDay, ...] = ()


# ======================================================================================
# Telling it
# ======================================================================================


def desk_history(desk: Desk) -> Iterator[Day]:
    """The desk's days in order, with the tickets opened on each (in opening order)."""
    tickets, searches = _volumes(desk)
    tz = ZoneInfo(desk.time_zone)
    number = 0
    for index in range(desk.days):
        day = desk.start + dt.timedelta(days=index)
        # Each day draws from its own generator, seeded by the day.
        rng = random.Random(f"{desk.seed}/{day.isoformat()}")  # noqa: S311 (not secrets)
        midnight = dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.UTC)
        next_midnight = dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time.min, tzinfo=tz
        ).astimezone(dt.UTC)
        length = (next_midnight - midnight).total_seconds()
        progress = index / max(desk.days - 1, 1)
        opened = sorted(_time_of_day(rng, day, length) for _ in range(tickets[index]))
        stories = []
        for seconds in opened:
            at = midnight + _seconds(seconds)
            off_hours = seconds < 8 * 3600 or seconds >= 18 * 3600 or day.weekday() >= 5
            story = _ticket(desk, rng, number, at, progress, off_hours=off_hours)
            if story is not None:
                stories.append(story)
                number += 1
        found = tuple(
            sorted(
                (_search(desk, rng, midnight, day, length) for _ in range(searches[index])),
                key=lambda s: s.at,
            )
        )
        yield Day(
            day=day,
            tickets=tuple(stories),
            searches=tuple(s for s in found if s.at < desk.end),
            articles=tuple(_article_days(desk, rng, day, tickets[index]))
            if midnight < desk.end
            else (),
        )


def _volumes(desk: Desk) -> tuple[list[int], list[int]]:
    """Tickets and searches per day: exact totals, shaped by weekday, growth, noise and
    incidents (cumulative rounding keeps the totals)."""
    rng = random.Random(f"{desk.seed}/volumes")  # noqa: S311 (not secrets)
    weights = []
    for index in range(desk.days):
        day = desk.start + dt.timedelta(days=index)
        weight = (
            (0.8 + 0.4 * index / max(desk.days - 1, 1))
            * WEEKDAY_FACTOR[day.weekday()]
            * (0.85 + 0.3 * rng.random())
            * (3 if index in desk.incident_days else 1)
        )
        weights.append(weight)
    total = sum(weights)

    def spread(count: int) -> list[int]:
        out, cumulative = [], 0.0
        for weight in weights:
            before = round(count * cumulative / total)
            cumulative += weight
            out.append(round(count * cumulative / total) - before)
        return out

    return spread(desk.tickets), spread(desk.searches)


def _time_of_day(rng: random.Random, day: dt.date, length: float) -> float:
    """Seconds after midnight: mostly office hours (around 13:30), some at any time."""
    office = 0.5 if day.weekday() >= 5 else 0.85
    office_hours = rng.random() < office
    seconds = 48600 + 11520 * rng.gauss(0, 1) if office_hours else 86400 * rng.random()
    return seconds % length


def _pick(rng: random.Random, choices) -> tuple:
    u, cumulative = rng.random(), 0.0
    for choice in choices[:-1]:
        cumulative += choice[1]
        if u < cumulative:
            return choice
    return choices[-1]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(sigma * rng.gauss(0, 1))


def _seconds(value: float) -> dt.timedelta:
    return dt.timedelta(seconds=value)


def _model(desk: Desk, rng: random.Random, progress: float) -> Model:
    shares = [m.share_start + (m.share_end - m.share_start) * progress for m in desk.models]
    u, cumulative = rng.random() * sum(shares), 0.0
    for model, share in zip(desk.models, shares, strict=True):
        cumulative += share
        if u < cumulative:
            return model
    return desk.models[-1]


def _cited(desk: Desk, rng: random.Random) -> tuple[int, ...]:
    """0 to 3 articles, the popular ones more often."""
    if not desk.articles:
        return ()
    count = int(rng.random() * 4)
    picked: list[int] = []
    for power in (2.5, 1.5, 1.0)[:count]:
        article = min(desk.articles - 1, int(desk.articles * rng.random() ** power))
        if article not in picked:
            picked.append(article)
    return tuple(picked)


class _Turns:
    """The steps of a story as it is told, cut at the desk's end: a turn (a step, with
    the AI's answer to a customer's message) happens whole, or it and what follows does
    not happen yet."""

    def __init__(self, end: dt.datetime):
        self.end = end
        self.steps: list[Step] = []
        self.closed = False

    def add(self, *steps: Step) -> bool:
        if self.closed or steps[-1].at >= self.end:
            self.closed = True
            return False
        self.steps.extend(steps)
        return True


def _ticket(
    desk: Desk,
    rng: random.Random,
    number: int,
    opened: dt.datetime,
    progress: float,
    *,
    off_hours: bool,
) -> TicketStory | None:
    type_, _, p_escalate = _pick(rng, TYPES)
    priority, _, priority_factor = _pick(rng, PRIORITIES)
    channel = _pick(rng, CHANNELS)[0]
    customer = min(desk.customers - 1, int(desk.customers * rng.random() ** 1.6))
    subject = rng.choice(SUBJECTS[type_])
    description = f"{subject}.\n\n{rng.choice(DETAILS)}"
    answer = ANSWERS[type_]
    billing = type_ in ("billing", "cancellation")
    general = desk.general_agents
    if billing and desk.agents > general:
        agent = general + int(rng.random() * (desk.agents - general))
    else:
        agent = int(rng.random() * general)
    speed = AGENT_SPEED[agent % len(AGENT_SPEED)]
    quality = AGENT_QUALITY[agent % len(AGENT_QUALITY)]
    model = _model(desk, rng, progress)
    sentiment = round(max(-1.0, min(1.0, 1.6 * rng.random() - 0.8)), 3)
    p_escalate *= ESCALATION_START + (ESCALATION_END - ESCALATION_START) * progress
    u = rng.random()
    flow = "E" if u < p_escalate else ("A" if u < p_escalate + P_ASK else "R")

    def agent_delay() -> float:
        median = 1800 * speed * priority_factor * (3 if off_hours else 1)
        return min(259200, 30 + _lognormal(rng, median, 1.0))

    def ai_turn(after: dt.datetime, decision: str, handover: Handover | None = None) -> Step:
        latency = int(min(60000, max(600, _lognormal(rng, model.latency_ms, 0.35))))
        started = after + _seconds(1 + 2 * rng.random())
        responding = started + _seconds(latency / 1000)
        reply, question = f"Thanks for reaching out! {answer}", ""
        if decision == RESOLVED:
            confidence = RESOLVE_AT + (0.99 - RESOLVE_AT) * rng.random() ** 0.7
        elif decision == ASKED:
            confidence = ESCALATE_BELOW + (RESOLVE_AT - ESCALATE_BELOW) * rng.random()
            reply, question = "Thanks for reaching out!", QUESTION
        elif handover is not None and handover.kind == "ai_low_confidence":
            confidence = 0.05 + (ESCALATE_BELOW - 0.06) * rng.random() ** 0.8
            reason = f"AI confidence {confidence:.2f} is below {ESCALATE_BELOW}."
            handover, reply = Handover(handover.kind, reason, handover.topic), answer
        else:
            confidence, reply = 0.4 + 0.55 * rng.random(), answer
        analysis = Analysis(
            model=model.name,
            decision=decision,
            confidence=round(confidence, 4),
            sentiment=sentiment,
            input_tokens=1500 + int(3500 * rng.random() ** 1.4),
            output_tokens=150 + int(450 * rng.random()),
            latency_ms=latency,
            answer=reply,
            question=question,
            reasoning=f'Matched the help center on "{subject}".',
            cited=_cited(desk, rng),
            handover=handover,
        )
        return Step(
            AI,
            responding + _seconds(0.05),
            analysis=analysis,
            started=started,
            responding=responding,
        )

    def first_handover() -> Handover:
        u = rng.random()
        if billing and u < 0.7:
            return Handover(
                "policy", "Always handled by people: refund request or billing dispute.", "billing"
            )
        if u < 0.78:
            return Handover("ai_low_confidence", "")
        if u < 0.92:
            return Handover(
                "customer_requested", "Always handled by people: asked for a person.", "human"
            )
        return Handover("complex", "Requests like this one need a person.")

    story = _Turns(desk.end)
    open_step = Step(OPEN, opened, body=description)
    agent_handled = flow == "E"
    u_sub = rng.random()
    if flow == "R":
        first = ai_turn(opened, RESOLVED)
    elif flow == "A":
        first = ai_turn(opened, ASKED)
    else:
        first = ai_turn(opened, ESCALATED, first_handover())
    if not story.add(open_step, first):
        return None
    last = first.at
    reopened = False
    path = {"R": PATH_AI_RESOLVED, "A": PATH_ASKED_AI_RESOLVED, "E": PATH_ESCALATED}[flow]

    if flow == "R":
        # Less sure answers, and some models' answers, come back more often.
        reopened = rng.random() < 1.2 * (1 - first.analysis.confidence) * model.reopen_factor
        if reopened:
            path = PATH_AI_RESOLVED_REOPENED
            back = last + _seconds(min(1209600, _lognormal(rng, 72000, 1.0)))
            reply = Step(CUSTOMER_REPLY, back, body=CUSTOMER_BACK)
            again = ai_turn(back, ESCALATED, Handover("ai_low_confidence", ""))
            if story.add(reply, again):
                last, agent_handled = again.at, True
    elif flow == "A":
        if u_sub >= 0.85:
            path = PATH_ASKED_UNANSWERED
            if rng.random() < 0.6:
                closing = last + _seconds(86400 * (2 + 4 * rng.random()))
                if story.add(Step(CLOSE, closing)):
                    path = PATH_ASKED_CLOSED
        else:
            answered = last + _seconds(min(432000, _lognormal(rng, 10800, 1.2)))
            reply = Step(CUSTOMER_REPLY, answered, body=CUSTOMER_ANSWER)
            if u_sub < 0.5:
                again = ai_turn(answered, RESOLVED)
            else:
                path = PATH_ASKED_ESCALATED
                again = ai_turn(answered, ESCALATED, Handover("ai_low_confidence", ""))
            if story.add(reply, again):
                last = again.at
                agent_handled = u_sub >= 0.5
    delay = agent_delay()
    if agent_handled:
        replied = last + _seconds(delay)
        body = AGENT_FIX if reopened else AGENT_ANSWER + answer
        if story.add(Step(AGENT_REPLY, replied, body=body)):
            last = replied
            if flow == "E" and rng.random() < 0.10:
                path = PATH_ESCALATED_TWICE
                handed = last + _seconds(_lognormal(rng, 3600, 1.0))
                tier2 = Handover("complex", "Needs a specialist of Tier 2.", "security")
                if story.add(Step(ESCALATE, handed, handover=tier2)):
                    last = handed
                done = last + _seconds(_lognormal(rng, 14400, 1.0))
            else:
                median = 3600 if reopened else (1800 if flow == "A" else 5400)
                done = last + _seconds(_lognormal(rng, median, 1.1))
            if story.add(Step(RESOLVE, done)):
                last = done
    final = story.steps[-1]
    resolved = final.kind == RESOLVE or (final.kind == AI and final.analysis.decision == RESOLVED)
    if resolved and rng.random() < 0.41:
        if reopened:
            exponent = 1.3
        elif flow == "R":
            exponent = 0.4
        elif not agent_handled:
            exponent = 0.5
        else:
            exponent = 0.55 * quality * (1.6 if delay > 14400 else 1)
        rating = min(5, 1 + int(5 * rng.random() ** exponent))
        rated = last + _seconds(min(604800, 60 + _lognormal(rng, 7200, 1.3)))
        comment = LOW_RATING_COMMENT if rating <= 2 else ""
        story.add(Step(RATE, rated, rating=rating, comment=comment))
    return TicketStory(
        number=number,
        customer=customer,
        agent=agent,
        subject=subject,
        description=description,
        type=type_,
        priority=priority,
        channel=channel,
        path=path,
        steps=tuple(story.steps),
    )


def _search(desk: Desk, rng: random.Random, midnight, day: dt.date, length: float) -> Search:
    office_hours = rng.random() < 0.8
    seconds = 47000 + 12000 * rng.gauss(0, 1) if office_hours else 86400 * rng.random()
    at = midnight + _seconds(seconds % length)
    source = "help_center" if rng.random() < 0.85 else "api"
    signed_in = source == "api" or rng.random() < 0.55
    customer = int(desk.customers * rng.random()) if signed_in else None
    results: list[tuple[int, float]] = []
    u = rng.random()
    if u < 0.08:  # nothing good: none, or a few weak matches
        query = GAP_SEARCHES[int(u / 0.08 * len(GAP_SEARCHES))]
        count = int(3 * rng.random())
        best = 0.2 + 0.15 * rng.random()
    else:
        query = SEARCHES[int(((u - 0.08) / 0.92) ** 1.5 * len(SEARCHES))]
        count = 1 + int(9 * rng.random())
        best = 0.45 + 0.5 * rng.random()
    if desk.articles:
        articles = {min(desk.articles - 1, int(desk.articles * rng.random() ** 2))}
        while len(articles) < min(count, desk.articles):
            articles.add(int(desk.articles * rng.random()))
        similarity = best
        for article in sorted(articles):
            results.append((article, round(similarity, 4)))
            similarity *= 0.85
    return Search(at=at, query=query, source=source, results=tuple(results), customer=customer)


def _article_days(desk: Desk, rng: random.Random, day: dt.date, tickets: int):
    """Views and votes of each article on the day: popularity ~ 1/rank."""
    if not desk.articles:
        return
    harmonic = sum(1 / k for k in range(1, desk.articles + 1))
    for article in range(desk.articles):
        weight = (1 / (article + 1)) / harmonic
        helpful_share = 0.25 if article % 23 == 5 else 0.85
        views = int(tickets * 8 * weight * (0.5 + rng.random()))
        votes = views * 0.06 * (0.5 + rng.random())
        helpful, not_helpful = int(votes * helpful_share), int(votes * (1 - helpful_share))
        if views or helpful or not_helpful:
            yield ArticleDay(day, article, views, helpful, not_helpful)
