"""Who wrote an inbound mail: a person, or a machine we must not answer?

:func:`classify` reads the headers :func:`support.email.parsing.parse_email` kept and
returns a :class:`Verdict`. Only ``ok`` mail may get an automatic answer; what the door
does with the others (drop, keep without a ticket, quarantine) is its decision, not ours.

The rules are tried in this order, and the first that matches wins:

1. ``loop``: our own mail came back (``X-Helpdesk-Loop`` carries this helpdesk's token).
   Nothing else matters then: answering it, even as a bounce, feeds the loop. A bounce of
   our mail carries the token only inside the returned message, so it stays a bounce.
2. ``bounce``: a delivery report (``multipart/report; report-type=delivery-status``,
   ``X-Failed-Recipients``, From MAILER-DAEMON or postmaster). Reports also say
   ``Auto-Submitted: auto-replied`` (RFC 3464, RFC 3834); "this address is dead" is the
   more useful of the two facts.
3. ``auto_reply``: vacation notices and other answering machines (``Auto-Submitted``,
   ``X-Autoreply``, ``X-Autorespond``, ``X-Auto-Response-Suppress``, the subjects they
   use). They often also carry ``Precedence: bulk`` and an empty ``Return-Path``, which is
   why they come before bulk, and why an empty ``Return-Path`` on its own (RFC 3834 asks
   answering machines to send with one) counts as a bounce only after this step.
4. ``spam``: the filter in front of us said so (``X-Spam-Flag``, ``X-Spam-Status``, a score
   at or above the threshold). Spam dresses up as newsletters with ``List-Unsubscribe``,
   so the filter's word beats the bulk headers.
5. ``bulk``: newsletters and mailing lists (``Precedence: bulk|list|junk``, ``List-Id``,
   ``List-Unsubscribe``).
6. ``ok``: a person, as far as the headers tell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from support.email.parsing import ParsedEmail

__all__ = ["DEFAULT_SPAM_THRESHOLD", "Kind", "Verdict", "classify"]

DEFAULT_SPAM_THRESHOLD = 5.0


class Kind(StrEnum):
    OK = "ok"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    BULK = "bulk"
    SPAM = "spam"
    LOOP = "loop"


@dataclass(frozen=True)
class Verdict:
    kind: Kind  # a str: Verdict.kind == "bounce" works
    reason: str  # for a person reading the log: which header or pattern decided

    @property
    def is_ok(self) -> bool:
        """Written by a person: it may open a ticket and get an automatic answer."""
        return self.kind == Kind.OK


def classify(
    parsed: ParsedEmail,
    *,
    loop_token: str = "",
    spam_threshold: float = DEFAULT_SPAM_THRESHOLD,
) -> Verdict:
    """The verdict on one parsed mail (the order of the rules: see the module docstring)."""
    headers = parsed.headers
    if reason := _loop(headers, loop_token):
        return Verdict(Kind.LOOP, reason)
    if reason := _bounce(parsed):
        return Verdict(Kind.BOUNCE, reason)
    if reason := _auto_reply(parsed):
        return Verdict(Kind.AUTO_REPLY, reason)
    if reason := _null_sender(headers):
        return Verdict(Kind.BOUNCE, reason)
    if reason := _spam(headers, spam_threshold):
        return Verdict(Kind.SPAM, reason)
    if reason := _bulk(headers):
        return Verdict(Kind.BULK, reason)
    return Verdict(Kind.OK, "no sign of an automatic sender")


def _loop(headers: dict[str, str], loop_token: str) -> str:
    tokens = re.split(r"[\s,]+", headers.get("x-helpdesk-loop", ""))
    if loop_token and loop_token in tokens:
        return "X-Helpdesk-Loop carries this helpdesk's token: our own mail came back"
    return ""


_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


def _bounce(parsed: ParsedEmail) -> str:
    headers = parsed.headers
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/report") and _report_type(content_type) in (
        "delivery-status",
        "",
    ):
        return "a delivery status report (multipart/report)"
    if headers.get("x-failed-recipients"):
        return f"X-Failed-Recipients: {headers['x-failed-recipients']}"
    local_part = parsed.from_address.partition("@")[0]
    if local_part in _DAEMONS:
        return f"sent by {parsed.from_address}"
    return ""


def _report_type(content_type: str) -> str:
    match = re.search(r"report-type\s*=\s*\"?([\w.-]+)", content_type)
    return match.group(1) if match else ""


_AUTO_SUBJECT = re.compile(
    r"^\s*\[?\s*(?:"
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|"
    r"autoresponse|automatische antwort|abwesenheitsnotiz|abwesend|"
    r"r[ée]ponse automatique|absence du bureau|respuesta autom[áa]tica|"
    r"fuera de la oficina|risposta automatica|fuori sede|automatisch antwoord|"
    r"afwezigheidsmelding|automatiskt svar|不在通知|自動応答|自动回复"
    r")\b",
    re.IGNORECASE,
)
_SUPPRESS_TOKENS = {"all", "oof", "autoreply"}


def _auto_reply(parsed: ParsedEmail) -> str:
    headers = parsed.headers
    submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("x-autoreply", "x-autorespond"):
        if headers.get(name):
            return f"{name.title()}: {headers[name]}"
    if headers.get("x-autogenerated", "").lower() == "reply":
        return "X-Autogenerated: Reply"
    for name in ("precedence", "x-precedence"):
        if headers.get(name, "").lower() == "auto_reply":
            return f"{name.title()}: auto_reply"
    suppress = {
        token.strip().lower() for token in headers.get("x-auto-response-suppress", "").split(",")
    }
    if suppress & _SUPPRESS_TOKENS:
        return f"X-Auto-Response-Suppress: {headers['x-auto-response-suppress']}"
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/report") and _report_type(content_type) == (
        "disposition-notification"
    ):
        return "a read receipt (disposition notification)"
    if _AUTO_SUBJECT.search(parsed.subject):
        return f"the subject of an automatic reply: {parsed.subject[:80]!r}"
    return ""


def _null_sender(headers: dict[str, str]) -> str:
    if "return-path" in headers and headers["return-path"].strip("<> ") == "":
        return "empty Return-Path (<>): sent by a mail system"
    return ""


def _spam(headers: dict[str, str], threshold: float) -> str:
    if headers.get("x-spam-flag", "").strip().lower() == "yes":
        return "X-Spam-Flag: YES"
    status = headers.get("x-spam-status", "")
    if status.strip().lower().startswith("yes"):
        return f"X-Spam-Status: {status[:80]}"
    if headers.get("x-spam", "").strip().lower() in ("yes", "true"):
        return "X-Spam: Yes"
    scores = [("X-Spam-Score", headers.get("x-spam-score", ""))]
    scores.append(("X-Rspamd-Score", headers.get("x-rspamd-score", "")))
    status_score = re.search(r"score=(-?\d+(?:\.\d+)?)", status)
    if status_score:
        scores.append(("X-Spam-Status score", status_score.group(1)))
    for name, value in scores:
        score = _number(value)
        if score is not None and score >= threshold:
            return f"{name} {score:g} is at or above {threshold:g}"
    return ""


def _number(value: str) -> float | None:
    match = re.match(r"\s*(-?\d+(?:[.,]\d+)?)", value)
    if not match:
        return None
    try:
        return float(match.group(1).replace(",", "."))
    except ValueError:
        return None


def _bulk(headers: dict[str, str]) -> str:
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    for name, shown in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if headers.get(name):
            return f"{shown}: {headers[name][:80]}"
    return ""
