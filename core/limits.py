"""How much a person may send: one table of maximum lengths, and the checks every door
shares (portal forms, the REST API, the chat and ticket sockets, later the email channel).

Each door enforces the same numbers its own way and answers in its own shape: a field
error ``{"field": ["Ensure this field has no more than N characters."]}`` with 400 in the
API, a form error on the pages, an ``error`` frame (code ``too_long``) on a socket.

Beside the lengths, text that cannot be stored is refused before it reaches a service:
NUL characters (PostgreSQL text cannot hold them), lone surrogates (not encodable as
UTF-8), and JSON nested deeper than :data:`MAX_JSON_DEPTH` (no input of ours nests more
than three levels; Python's parser would recurse until it fails).
"""

from __future__ import annotations

import re

from django.conf import settings

# ---- lengths, in characters ------------------------------------------------------------

#: Ticket subject (``Ticket.subject``).
SUBJECT = 200
#: Ticket description as the customer first writes it (portal, API, chat, email).
TICKET_DESCRIPTION = 20_000
#: A reply or internal note in a ticket's conversation (also a chat message).
MESSAGE_BODY = 20_000
#: Why someone escalates a ticket or asks for a person.
REASON = 2_000
#: Short free text beside an action: a CSAT comment, a review note, a rejection reason.
COMMENT = 2_000
#: A note sent to the voters with a roadmap status change.
NOTE = 5_000
#: Escalation topic (``Escalation.topic``).
TOPIC = 30
#: Titles: articles, feature requests.
TITLE = 200
#: An article's one-paragraph summary (``Article.summary``).
SUMMARY = 300
#: An article's Markdown body (staff write it; long guides exist).
ARTICLE_BODY = 100_000
#: A feature request's description.
FEATURE_DESCRIPTION = 10_000
#: A category's name (``Category.name``) and description.
CATEGORY_NAME = 100
CATEGORY_DESCRIPTION = 2_000
#: A person's first or last name (``User.first_name``).
NAME = 150
#: An anonymized training example's question or answer.
TRAINING_TEXT = 20_000
#: What a search box or ``?search=`` takes (``SearchLog.query`` keeps this much).
SEARCH_QUERY = 300
#: Any single value of a query string (filters, ordering, search): longer is refused
#: with 400 before a view runs.
QUERY_VALUE = 1_000

# ---- structure -------------------------------------------------------------------------

#: Deepest nesting of arrays and objects accepted in a JSON body or frame.
MAX_JSON_DEPTH = 32

TOO_LONG = "Ensure this field has no more than {limit} characters."
NUL_MESSAGE = "Null characters are not allowed."
SURROGATE_MESSAGE = "Invalid Unicode (a lone surrogate) is not allowed."
DEPTH_MESSAGE = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is not accepted."
INVALID_CHARACTERS = "invalid_characters"

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


class InvalidInput(ValueError):
    """Input no door accepts; ``code`` names why (``invalid_characters``, ``too_deep``)."""

    def __init__(self, message: str, *, code: str = INVALID_CHARACTERS):
        super().__init__(message)
        self.message = message
        self.code = code


def too_long_message(limit: int) -> str:
    return TOO_LONG.format(limit=limit)


def bad_character_message(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL or a lone surrogate), or None when it can."""
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return None
    return NUL_MESSAGE if found.group() == "\x00" else SURROGATE_MESSAGE


def text_error(value: str, limit: int) -> str | None:
    """What is wrong with a text field's ``value`` under ``limit``, or None."""
    return bad_character_message(value) or (too_long_message(limit) if len(value) > limit else None)


def check_json(data, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`InvalidInput` when parsed JSON nests deeper than ``max_depth`` or
    holds a NUL or a lone surrogate in any string or key. Iterative: no recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            problem = bad_character_message(value)
            if problem:
                raise InvalidInput(problem)
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise InvalidInput(DEPTH_MESSAGE, code="too_deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    stack.append((key, depth))
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def max_request_bytes() -> int:
    """The largest request body accepted at all: a message with every attachment it may
    carry, plus the form fields. Anything larger is answered 413 before it is parsed."""
    return (
        settings.HELPDESK_ATTACHMENT_MAX_BYTES * settings.HELPDESK_ATTACHMENT_MAX_FILES
        + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    )
