"""Tags on tickets and the curated list of tags.

``HELPDESK_TAGS_FREE`` (default on): staff, rules and the AI create a tag by using a new
name; off: only names of the curated list (``Tag`` rows, managed by managers) may be
used, and an unknown name is refused naming it. Customers never tag. A ticket carries at
most :data:`MAX_TAGS_PER_TICKET` tags. Every change of a ticket's tags locks the ticket,
writes one ``tags_changed`` event (team-only) and updates the live pages after commit;
adding a tag the AI suggested takes it off ``Ticket.suggested_tags``.

AI triage suggests tags of the list whose ``keywords`` (one per line, whole words,
case-insensitive) occur in the ticket: :func:`tag_matcher` compiles the patterns once,
:func:`ticket_suggest_tags` records what it found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from core.errors import DomainError, NotPermitted
from core.roles import is_agent, is_manager
from support import events
from support.models import Message, Tag, Ticket, TicketEvent, TicketTag
from support.services._validation import full_clean
from support.side_effects import after_commit

__all__ = [
    "MAX_TAGS_PER_TICKET",
    "TAG_INPUT_PATTERN",
    "TagMatcher",
    "tag_delete",
    "tag_matcher",
    "tag_normalize",
    "tag_save",
    "ticket_dismiss_suggested_tag",
    "ticket_set_tags",
    "ticket_suggest_tags",
    "ticket_tag",
    "ticket_tag_suggestions",
]

MAX_TAGS_PER_TICKET = 20
#: What a name may look like as typed (letters in any case, spaces become hyphens): the
#: API's input pattern; :func:`tag_normalize` makes the stored form of it.
TAG_INPUT_PATTERN = r"^ *[A-Za-z0-9][A-Za-z0-9_.: -]*$"
_NAME_LENGTH = Tag._meta.get_field("name").max_length


# ======================================================================================
# Names and the curated list
# ======================================================================================


def tag_normalize(name) -> str:
    """A tag's stored form: trimmed, lower case, runs of spaces as one hyphen; refused
    (``DomainError`` on ``tags``) when empty, too long or with other characters."""
    if isinstance(name, Tag):
        return name.name
    if not isinstance(name, str):
        raise DomainError("A tag is a name (text).", field="tags")
    normal = re.sub(r"\s+", "-", name.strip().lower())
    if not normal:
        raise DomainError("A tag cannot be empty.", field="tags")
    if len(normal) > _NAME_LENGTH:
        raise DomainError(
            f"“{normal[:60]}…” is too long: a tag has at most {_NAME_LENGTH} characters.",
            field="tags",
        )
    for validator in Tag._meta.get_field("name").validators:
        try:
            validator(normal)
        except Exception as error:  # django's ValidationError: its message, on "tags"
            message = getattr(error, "messages", [str(error)])[0]
            raise DomainError(f"“{normal}”: {message}", field="tags") from None
    return normal


def _managers_only(actor) -> None:
    if not is_manager(actor):
        raise NotPermitted("Only managers can change the list of tags.")


@transaction.atomic
def tag_save(*, tag: Tag, actor) -> Tag:
    """Create or change a tag of the list (managers): its name is stored normalized."""
    _managers_only(actor)
    try:
        tag.name = tag_normalize(tag.name or "")
    except DomainError as error:
        raise DomainError(error.message, field="name") from None
    tag.keywords = "\n".join(
        line.strip() for line in (tag.keywords or "").splitlines() if line.strip()
    )
    if tag.pk is None:
        tag.created_by = actor
    full_clean(tag)
    tag.save()
    return tag


@transaction.atomic
def tag_delete(*, tag: Tag, actor) -> None:
    """Delete a tag of the list (managers); it leaves every ticket that had it."""
    _managers_only(actor)
    tag.delete()


# ======================================================================================
# Tags on a ticket
# ======================================================================================


def _may_tag(actor, actor_kind) -> None:
    if actor is None:
        if actor_kind in (None, TicketEvent.ActorKind.CUSTOMER):
            raise NotPermitted("Only staff, rules and the AI can tag tickets.")
        return
    if not is_agent(actor):
        raise NotPermitted("Only staff can tag tickets.")


def _resolve(names: Iterable, *, actor) -> list[Tag]:
    """The tags named (normalized, without repeats), created when the desk's tags are
    free; in curated mode an unknown name is refused."""
    wanted: list[str] = []
    for name in names:
        normal = tag_normalize(name)
        if normal not in wanted:
            wanted.append(normal)
    if len(wanted) > MAX_TAGS_PER_TICKET:
        raise DomainError(
            f"A ticket has at most {MAX_TAGS_PER_TICKET} tags ({len(wanted)} given).",
            field="tags",
        )
    found = {tag.name: tag for tag in Tag.objects.filter(name__in=wanted)}
    unknown = [name for name in wanted if name not in found]
    if unknown and not settings.HELPDESK_TAGS_FREE:
        listed = ", ".join(f"“{name}”" for name in unknown)
        raise DomainError(
            f"{listed} {'is' if len(unknown) == 1 else 'are'} not in the list of tags; "
            "a manager adds new tags.",
            field="tags",
        )
    for name in unknown:
        # Two agents may create one name at once: the second finds the first's row.
        found[name], _ = Tag.objects.get_or_create(name=name, defaults={"created_by": actor})
    return [found[name] for name in wanted]


def _apply(ticket: Ticket, target: list[Tag], *, actor, actor_kind) -> Ticket:
    """Make ``target`` the locked ticket's tags: one event, the suggestions updated."""
    links = list(ticket.ticket_tags.select_related("tag"))
    current = {link.tag.name: link for link in links}
    wanted = {tag.name: tag for tag in target}
    if len(wanted) > MAX_TAGS_PER_TICKET:
        raise DomainError(
            f"A ticket has at most {MAX_TAGS_PER_TICKET} tags; remove one first.", field="tags"
        )
    added = [name for name in wanted if name not in current]
    removed = [name for name in current if name not in wanted]
    if not added and not removed:
        return ticket
    kind = actor_kind or events.actor_kind_of(actor)
    TicketTag.objects.filter(pk__in=[current[name].pk for name in removed]).delete()
    TicketTag.objects.bulk_create(
        [
            TicketTag(ticket=ticket, tag=wanted[name], added_by=actor, added_by_kind=kind)
            for name in added
        ]
    )
    fields = ["updated_at"]
    if any(name in ticket.suggested_tags for name in added):
        ticket.suggested_tags = [name for name in ticket.suggested_tags if name not in added]
        fields.append("suggested_tags")
    ticket.save(update_fields=fields)
    events.tags_changed_event(
        ticket=ticket,
        actor=actor,
        old=sorted(current),
        new=sorted(wanted),
        actor_kind=actor_kind,
    )
    after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


def _lock(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


@transaction.atomic
def ticket_set_tags(*, ticket: Ticket, tags: Iterable, actor, actor_kind=None) -> Ticket:
    """Replace the ticket's tags by ``tags`` (names or ``Tag`` rows)."""
    _may_tag(actor, actor_kind)
    target = _resolve(tags, actor=actor)
    return _apply(_lock(ticket), target, actor=actor, actor_kind=actor_kind)


@transaction.atomic
def ticket_tag(
    *, ticket: Ticket, add: Iterable = (), remove: Iterable = (), actor, actor_kind=None
) -> Ticket:
    """Add ``add`` and take off ``remove`` (names), leaving the ticket's other tags as
    they are: the ticket page's buttons, bulk actions and rules."""
    _may_tag(actor, actor_kind)
    adding = _resolve(add, actor=actor)
    removing = {tag_normalize(name) for name in remove}
    ticket = _lock(ticket)
    current = list(Tag.objects.filter(ticket_tags__ticket=ticket).order_by("name"))
    target = [tag for tag in current if tag.name not in removing]
    target += [tag for tag in adding if tag.name not in {t.name for t in target}]
    return _apply(ticket, target, actor=actor, actor_kind=actor_kind)


@transaction.atomic
def ticket_dismiss_suggested_tag(*, ticket: Ticket, name: str, actor) -> Ticket:
    """Drop one of the AI's suggested tags without adding it (staff)."""
    _may_tag(actor, None)
    ticket = _lock(ticket)
    if name in ticket.suggested_tags:
        ticket.suggested_tags = [n for n in ticket.suggested_tags if n != name]
        ticket.save(update_fields=["suggested_tags", "updated_at"])
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket


# ======================================================================================
# Suggestions (AI triage)
# ======================================================================================


def _keyword_pattern(keyword: str) -> str:
    words = [re.escape(word) for word in keyword.split()]
    return r"\s+".join(words)


@dataclass(frozen=True)
class TagMatcher:
    """The list's keyword patterns, compiled once (one pattern per tag)."""

    patterns: tuple[tuple[str, re.Pattern], ...]

    def matches(self, text: str) -> list[str]:
        return [name for name, pattern in self.patterns if pattern.search(text or "")]


def tag_matcher() -> TagMatcher:
    """A matcher for the tags of the list that have keywords (whole words, any case)."""
    patterns = []
    for name, keywords in Tag.objects.exclude(keywords="").values_list("name", "keywords"):
        alternatives = [_keyword_pattern(k) for k in keywords.splitlines() if k.strip()]
        if alternatives:
            pattern = r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"
            patterns.append((name, re.compile(pattern, re.IGNORECASE)))
    return TagMatcher(tuple(patterns))


def ticket_tag_suggestions(ticket: Ticket, *, matcher: TagMatcher | None = None) -> list[str]:
    """Tags of the list whose keywords occur in the ticket's subject, description or
    customer messages, and that the ticket does not carry yet."""
    matcher = matcher or tag_matcher()
    if not matcher.patterns:
        return []
    customer_text = ticket.messages.filter(
        sender_kind=Message.SenderKind.CUSTOMER, is_internal=False
    ).values_list("body", flat=True)
    text = "\n".join([ticket.subject or "", ticket.description or "", *customer_text])
    carried = set(ticket.tags.values_list("name", flat=True))
    return [name for name in matcher.matches(text) if name not in carried]


@transaction.atomic
def ticket_suggest_tags(*, ticket: Ticket, tags: Iterable[str]) -> Ticket:
    """Record the AI's suggested tags (names of the list the ticket does not carry):
    they wait for an agent to accept them (no event: nothing on the ticket changed)."""
    ticket = _lock(ticket)
    carried = set(ticket.tags.values_list("name", flat=True))
    known = set(Tag.objects.filter(name__in=list(tags)).values_list("name", flat=True))
    suggested = sorted(known - carried)
    if suggested != sorted(ticket.suggested_tags):
        ticket.suggested_tags = suggested
        ticket.save(update_fields=["suggested_tags", "updated_at"])
        after_commit("ticket_changed", ticket_id=ticket.pk)
    return ticket
