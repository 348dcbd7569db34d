"""Which address a mail was for, and which ticket a reply address names.

Our mail about a ticket says ``Reply-To: support+hd-20261202-0001.k3x9q2w7@acme.example``:
the support address, plus the ticket's reference and a token signed with ``SECRET_KEY``
(so nobody can write into a ticket by guessing a reference). A reply to it names its
ticket even when the customer's client drops ``In-Reply-To`` and ``References``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.utils import formataddr, parseaddr

from django.conf import settings

from support.models import SupportAddress, Ticket

_TOKEN_LENGTH = 8
_PLUS = re.compile(r"^(?P<local>[^+@]+)\+(?P<tag>[^@]+)@(?P<domain>.+)$")
_TAG = re.compile(r"^(?P<reference>hd-\d{8}-\d{4,})\.(?P<token>[a-z2-7]{8})$")


def normalize(address: str) -> str:
    """``"Dana <Dana@Acme.Example>"`` → ``dana@acme.example`` ('' when not an address)."""
    _, email = parseaddr(address or "")
    email = email.strip().lower()
    return email if "@" in email else ""


def _sign(reference: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"ticket-reply:{reference.lower()}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest).decode().lower()[:_TOKEN_LENGTH]


def ticket_tag(ticket: Ticket) -> str:
    """``hd-20261202-0001.k3x9q2w7``: the reference and its signature."""
    reference = ticket.reference.lower()
    return f"{reference}.{_sign(reference)}"


def reply_address(ticket: Ticket, support: SupportAddress | None = None) -> str:
    """The plus-address replies to this ticket go to (Reply-To of our mail)."""
    support = support or default_address()
    local, _, domain = (support.email if support else _default_from()).partition("@")
    return f"{local}+{ticket_tag(ticket)}@{domain}"


def reference_from_address(address: str) -> str | None:
    """The ticket reference a plus-address names, when its signature is right."""
    match = _PLUS.match(normalize(address))
    if not match:
        return None
    tag = _TAG.match(match["tag"])
    if not tag or not hmac.compare_digest(tag["token"], _sign(tag["reference"])):
        return None
    return tag["reference"].upper()


def base_address(address: str) -> str:
    """``support+anything@acme.example`` → ``support@acme.example``."""
    email = normalize(address)
    match = _PLUS.match(email)
    return f"{match['local']}@{match['domain']}" if match else email


def support_address_for(recipients: list[str]) -> SupportAddress | None:
    """The active support address (or one of its plus-addresses) among ``recipients``."""
    wanted = [base_address(r) for r in recipients if normalize(r)]
    if not wanted:
        return None
    found = {a.email.lower(): a for a in SupportAddress.objects.filter(is_active=True)}
    return next((found[w] for w in wanted if w in found), None)


def default_address() -> SupportAddress | None:
    return SupportAddress.objects.filter(is_active=True).order_by("-is_default", "pk").first()


def _default_from() -> str:
    return normalize(settings.DEFAULT_FROM_EMAIL) or "support@localhost"


def from_header(support: SupportAddress | None) -> str:
    """``Acme Support <support@acme.example>`` (else ``DEFAULT_FROM_EMAIL``)."""
    if support is None:
        return settings.DEFAULT_FROM_EMAIL
    return formataddr((support.name, support.email)) if support.name else support.email
