"""Mail that reaches the desk: one entry, :func:`email_receive`, for every door (the SMTP
receiver, IMAP mailboxes, providers' inbound webhooks), and the admin's actions on it.

What :func:`email_receive` does with a mail, in this order:

1. **Size**: over ``HELPDESK_EMAIL_MAX_BYTES`` → recorded ``refused`` (headers kept only).
2. **Parse** (:func:`support.email.parsing.parse_email`), then **store**: one
   :class:`InboundEmail` row with the raw bytes as a file, committed on its own before any
   decision. Its ``Message-ID`` is unique: the same mail arriving again (two doors, a retry)
   returns the existing row and makes nothing new (a row still ``received`` after a failure
   is processed again).
3. **Decide**, in one transaction holding the row's lock (so a duplicate, a retry and an
   agent's "process again" never decide twice):

   a. no sender address → ``ignored``; mail from one of our own support addresses →
      ``ignored`` (a loop);
   b. safety (:func:`support.email.safety.classify`): auto-replies, bounces, bulk mail and
      loops → ``ignored`` (no ticket, no answer); spam → ``spam`` (the spam queue in admin,
      where "Not spam: process it" runs this step again without the spam check);
   c. the sender: a known account (allauth's ``EmailAddress``, else ``User.email``, case
      insensitive); a disabled account → ``refused``;
   d. per-sender rate limit (``HELPDESK_EMAIL_PER_SENDER_PER_HOUR`` mails an hour,
      whatever became of them; staff exempt) → ``refused``: loop protection;
   e. threading: ``In-Reply-To`` / ``References`` against ``Message.email_message_id``
      first (the most recent match); else the signed plus-address among the recipients,
      else an ``HD-YYYYMMDD-NNNN`` reference in the subject, both only when the sender may
      write on that ticket (the requester, someone of its organization or of one of its
      verified domains, a participant, staff); else no ticket;
   f. staff: on a ticket their mail is an agent reply; a staff member cannot open a ticket
      by mail → ``refused`` (they work in admin, and a forged From must not open tickets
      in their name);
   g. an unknown sender becomes a customer without a usable password, with an unverified
      ``EmailAddress`` (so "forgot password" reaches them and they can claim the account),
      placed in the organization of their VERIFIED mail domain;
   h. a matched ticket that is closed → a new ticket, ``follow_up_of`` the closed one
      (``follow_up``; appended to an open follow-up when there already is one); else the
      reply is added (``appended``; ``message_add`` reopens a resolved ticket); no ticket
      → a new one (``created``) after the sender's ticket budget
      (:func:`support.budget.ticket_budget_take`), a spent budget → ``refused``;
   i. To and Cc addresses (minus our support addresses, the sender and the requester), and
      a sender who is not the requester, become the ticket's participants.

   The body is the new part of a reply (``reply_text``, else the text) for replies and the
   whole text for a new ticket; attachments (and inline images) follow the portal's limits,
   and those that do not fit are left out with a note in the message, never a failure.
   The message keeps the mail's ``Message-ID`` so the next reply threads to it.

A domain refusal (a spent budget, a closed conversation) records ``refused`` with its
reason. Anything unexpected is logged and leaves the row as it was (``received``) with the
error as its reason: the raw mail stays, and the admin's "Process again" retries it. A
database outage is raised to the door (the SMTP receiver answers 451, the sender retries).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import re
import unicodedata
import uuid
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction

from config import metrics
from core import limits
from core.errors import Conflict, DomainError, NotPermitted
from core.roles import is_agent, is_manager
from support import events
from support.budget import ticket_budget_take
from support.email.addresses import base_address, normalize, reference_from_address
from support.models import (
    OPEN_STATUSES,
    CustomerProfile,
    InboundEmail,
    Message,
    OrganizationDomain,
    SupportAddress,
    Ticket,
    TicketChannel,
    TicketEvent,
    TicketParticipant,
    TicketStatus,
)
from support.services._validation import full_clean
from support.services.accounts import customer_register
from support.services.tickets import (
    ALLOWED_ATTACHMENT_TYPES,
    message_add,
    survivor_id,
    ticket_open,
)

__all__ = [
    "email_receive",
    "inbound_email_process",
    "organization_domain_save",
    "support_address_save",
]

logger = logging.getLogger(__name__)

Outcome = InboundEmail.Outcome

#: Safety verdicts that are dropped without a ticket or an answer.
IGNORED_KINDS = frozenset({"auto_reply", "bounce", "bulk", "loop"})
#: At most this many new participants from one mail (a Cc of hundreds is not a conversation).
MAX_NEW_PARTICIPANTS = 20
NO_SUBJECT = "(no subject)"
#: Database errors that mean "not now" rather than "never": raised to the door.
OUTAGE_ERRORS = (OperationalError, InterfaceError)

_REFERENCE = re.compile(r"\bHD-\d{8}-\d{4,}\b", re.IGNORECASE)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_USERNAME_CHARS = re.compile(r"[^\w.+-]")


# ======================================================================================
# The entry
# ======================================================================================


def email_receive(raw: bytes, *, door: str, recipients: list[str] | None = None) -> InboundEmail:
    """Record a mail that reached ``door`` and make of it what it is (see the module's
    docstring); returns its :class:`InboundEmail` (the existing one for a duplicate).
    ``recipients``: the envelope's (SMTP ``RCPT TO``), else the mail's To and Cc."""
    if door not in InboundEmail.Door.values:
        raise DomainError(f"Unknown door “{door}”.", field="door")
    try:
        inbound = _receive(raw, door=door, recipients=recipients)
    except Exception:
        metrics.email_received(door=door, outcome="error")
        raise
    metrics.email_received(door=door, outcome=inbound.outcome)
    return inbound


def _receive(raw: bytes, *, door: str, recipients: list[str] | None) -> InboundEmail:
    raw = bytes(raw)
    if len(raw) > settings.HELPDESK_EMAIL_MAX_BYTES:
        return _record_oversized(raw, door=door, recipients=recipients)

    from support.email.parsing import parse_email

    try:
        parsed = parse_email(raw)
    except Exception as error:  # a mail we cannot read is kept for people to look at
        logger.exception("inbound mail could not be parsed")
        return _store_unreadable(raw, door=door, recipients=recipients, error=error)

    inbound, created = _store(raw, door=door, recipients=recipients, parsed=parsed)
    if not created and inbound.outcome != Outcome.RECEIVED:
        return inbound  # the same mail again: one message
    return _process(inbound.pk, parsed=parsed)


@transaction.atomic
def inbound_email_process(*, inbound: InboundEmail, actor, not_spam: bool = False) -> InboundEmail:
    """The admin's actions on a stored mail: "Process again" (a mail left ``received`` by
    a failure) and, with ``not_spam``, "Not spam: process it" (decided again without the
    spam check)."""
    if not is_agent(actor):
        raise NotPermitted("Only staff can process mail.")
    if not_spam:
        if inbound.outcome != Outcome.SPAM:
            raise Conflict("Only mail in the spam queue can be marked as not spam.")
        return _process(
            inbound.pk,
            check_spam=False,
            from_outcomes=(Outcome.SPAM,),
            note=f"marked not spam by {actor.get_username()}",
        )
    if inbound.outcome != Outcome.RECEIVED:
        raise Conflict(f"This mail was already handled ({inbound.get_outcome_display().lower()}).")
    return _process(inbound.pk, note=f"processed again by {actor.get_username()}")


@transaction.atomic
def support_address_save(*, address: SupportAddress, actor) -> SupportAddress:
    """Create or change a support address (managers); stored in lower case."""
    if not is_manager(actor):
        raise NotPermitted("Only managers can change support addresses.")
    address.email = normalize(address.email) or address.email
    full_clean(address)
    address.save()
    return address


@transaction.atomic
def organization_domain_save(*, domain: OrganizationDomain, actor) -> OrganizationDomain:
    """Create or change an organization's mail domain (managers); lower case, no ``@``."""
    if not is_manager(actor):
        raise NotPermitted("Only managers can change organizations' mail domains.")
    domain.domain = domain.domain.strip().lower().lstrip("@")
    full_clean(domain)
    domain.save()
    return domain


# ======================================================================================
# Storing the mail
# ======================================================================================


def _message_id(value: str, raw: bytes) -> str:
    value = (value or "").strip()
    if value:
        return (value if value.startswith("<") else f"<{value.strip('<>')}>")[:998]
    # No Message-ID: the content names it, so the same bytes twice are still one mail.
    return f"<{hashlib.sha256(raw).hexdigest()[:40]}@inbound.invalid>"


def _address_list(values) -> list[tuple[str, str]]:
    """(name, address) pairs from what the parser gives (strings or pairs)."""
    found = []
    for value in values or ():
        if isinstance(value, tuple | list) and len(value) == 2:
            name, address = value
        else:
            name, address = parseaddr(str(value))
        address = normalize(address)
        if address:
            found.append((str(name or ""), address))
    return found


def _recipients(recipients: list[str] | None, parsed) -> list[str]:
    if recipients:
        return [normalize(r) for r in recipients if normalize(r)][:100]
    pairs = [
        *_address_list(getattr(parsed, "to", ())),
        *_address_list(getattr(parsed, "cc", ())),
        *_address_list(getattr(parsed, "delivered_to", ())),
    ]
    return [address for _, address in pairs][:100]


def _clean(text: str) -> str:
    return _UNSTORABLE.sub("", text or "")


def _save_row(row: InboundEmail, raw: bytes) -> tuple[InboundEmail, bool]:
    existing = InboundEmail.objects.filter(email_message_id=row.email_message_id).first()
    if existing is not None:
        return existing, False
    row.raw.save(f"{uuid.uuid4().hex}.eml", ContentFile(raw), save=False)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # the same mail, stored by another door a moment ago
        row.raw.delete(save=False)
        return InboundEmail.objects.get(email_message_id=row.email_message_id), False
    except BaseException:
        row.raw.delete(save=False)
        raise
    return row, True


def _store(raw: bytes, *, door: str, recipients, parsed) -> tuple[InboundEmail, bool]:
    name, sender = (getattr(parsed, "from_name", "") or ""), normalize(parsed.from_address)
    row = InboundEmail(
        email_message_id=_message_id(parsed.message_id, raw),
        door=door,
        from_address=sender[:320],
        from_name=_clean(name)[:200],
        recipients=[r[:320] for r in _recipients(recipients, parsed)],
        subject=_clean(parsed.subject or "")[:998],
        size=len(raw),
    )
    return _save_row(row, raw)


def _headers_of(raw: bytes):
    head = raw[:65536]
    end = head.find(b"\r\n\r\n")
    end = head.find(b"\n\n") if end < 0 else end
    head = head[: end if end >= 0 else len(head)]
    return head, BytesHeaderParser(policy=policy.compat32).parsebytes(head)


def _store_unreadable(raw: bytes, *, door: str, recipients, error: Exception) -> InboundEmail:
    _, headers = _headers_of(raw)
    name, sender = parseaddr(str(headers.get("From", "")))
    row = InboundEmail(
        email_message_id=_message_id(str(headers.get("Message-ID", "")), raw),
        door=door,
        reason=f"Could not be read: {error!r}"[:500],
        from_address=normalize(sender)[:320],
        from_name=_clean(name)[:200],
        recipients=[normalize(r)[:320] for r in (recipients or []) if normalize(r)][:100],
        subject=_clean(str(headers.get("Subject", "")))[:998],
        size=len(raw),
    )
    return _save_row(row, raw)[0]


def _record_oversized(raw: bytes, *, door: str, recipients) -> InboundEmail:
    head, headers = _headers_of(raw)
    limit = settings.HELPDESK_EMAIL_MAX_BYTES
    name, sender = parseaddr(str(headers.get("From", "")))
    row = InboundEmail(
        email_message_id=_message_id(str(headers.get("Message-ID", "")), raw),
        door=door,
        outcome=Outcome.REFUSED,
        reason=(
            f"Too large: {_human(len(raw))}, the limit is {_human(limit)} "
            "(only the headers are kept)."
        ),
        from_address=normalize(sender)[:320],
        from_name=_clean(name)[:200],
        recipients=[normalize(r)[:320] for r in (recipients or []) if normalize(r)][:100],
        subject=_clean(str(headers.get("Subject", "")))[:998],
        size=len(raw),
    )
    return _save_row(row, head)[0]


# ======================================================================================
# Deciding
# ======================================================================================


def _process(
    pk: int,
    *,
    parsed=None,
    check_spam: bool = True,
    from_outcomes: tuple[str, ...] = (Outcome.RECEIVED,),
    note: str = "",
) -> InboundEmail:
    """Decide what the stored mail ``pk`` becomes, once: under its row's lock, only while
    its outcome is one of ``from_outcomes``."""
    try:
        with transaction.atomic():
            inbound = InboundEmail.objects.select_for_update().get(pk=pk)
            if inbound.outcome not in from_outcomes:
                return inbound
            if parsed is None:
                from support.email.parsing import parse_email

                with inbound.raw.open("rb") as stored:
                    parsed = parse_email(stored.read())
            outcome, reason, ticket, message = _decide(inbound, parsed, check_spam=check_spam)
            _conclude(inbound, outcome, reason, note=note, ticket=ticket, message=message)
            return inbound
    except DomainError as refusal:
        return _conclude_refused(pk, refusal.message, from_outcomes=from_outcomes, note=note)
    except OUTAGE_ERRORS:
        raise
    except Exception as error:
        logger.exception("inbound mail %s could not be processed", pk)
        # The outcome stays (received, or spam for "not spam"): the same action retries.
        InboundEmail.objects.filter(pk=pk, outcome__in=from_outcomes).update(
            reason=f"Processing failed: {error!r}"[:500]
        )
        return InboundEmail.objects.get(pk=pk)


def _conclude(inbound, outcome, reason, *, note="", ticket=None, message=None) -> None:
    inbound.outcome = outcome
    inbound.reason = "; ".join(part for part in (reason, note) if part)[:500]
    inbound.ticket = ticket
    inbound.message = message
    inbound.save(update_fields=["outcome", "reason", "ticket", "message"])


def _conclude_refused(pk: int, reason: str, *, from_outcomes, note: str) -> InboundEmail:
    with transaction.atomic():
        inbound = InboundEmail.objects.select_for_update().get(pk=pk)
        if inbound.outcome in from_outcomes:
            _conclude(inbound, Outcome.REFUSED, reason, note=note)
        return inbound


def _decide(inbound: InboundEmail, parsed, *, check_spam: bool):
    """(outcome, reason, ticket, message) for the locked, stored mail ``inbound``."""
    from support.email.outbound import loop_token
    from support.email.safety import classify

    sender = normalize(parsed.from_address)
    if not sender:
        return Outcome.IGNORED, "No sender address.", None, None
    ours = {email.lower() for email in SupportAddress.objects.values_list("email", flat=True)}
    if base_address(sender) in ours:
        return Outcome.IGNORED, "loop: sent from one of our support addresses", None, None

    verdict = classify(
        parsed, loop_token=loop_token(), spam_threshold=settings.HELPDESK_EMAIL_SPAM_THRESHOLD
    )
    if verdict.kind in IGNORED_KINDS:
        return Outcome.IGNORED, f"{verdict.kind}: {verdict.reason}", None, None
    if verdict.kind == "spam" and check_spam:
        return Outcome.SPAM, verdict.reason, None, None

    _lock_sender(sender)  # one decision at a time per sender: one account, a true count
    user = _find_user(sender)
    if user is not None and not user.is_active:
        return Outcome.REFUSED, "The sender's account is disabled.", None, None
    staff = is_agent(user)
    if not staff and _over_sender_rate(inbound, sender):
        return (
            Outcome.REFUSED,
            f"More than {settings.HELPDESK_EMAIL_PER_SENDER_PER_HOUR} mails from this "
            "sender within an hour (loop protection).",
            None,
            None,
        )

    ticket, how = _thread(parsed, inbound.recipients, sender=sender, user=user)
    if ticket is None and staff:
        return (
            Outcome.REFUSED,
            "Staff cannot open tickets by mail (open it in admin, for the customer).",
            None,
            None,
        )
    if user is None:
        user = _customer_for(sender, parsed.from_name or "")
    files, dropped = _attachments(parsed)

    if ticket is not None:
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.merged_into_id and not staff:
            # A merged duplicate stays closed: the reply goes on to its survivor.
            merged = ticket.reference
            ticket = Ticket.objects.select_for_update().get(pk=survivor_id(ticket))
            how = f"{how}, {merged} merged into {ticket.reference}"
        if ticket.status == TicketStatus.CLOSED and not staff:
            open_follow_up = (
                ticket.follow_ups.filter(status__in=sorted(OPEN_STATUSES))
                .order_by("-created_at")
                .first()
            )
            if open_follow_up is None:
                new = _open_ticket(parsed, user, files, dropped, follow_up_of=ticket)
                message = _mark(new.messages.order_by("created_at", "id").first(), inbound)
                _add_participants(new, parsed, sender=sender, user=user)
                return (
                    Outcome.FOLLOW_UP,
                    f"{ticket.reference} is closed (matched by {how})",
                    new,
                    message,
                )
            ticket, how = open_follow_up, f"{how}, the open follow-up of {ticket.reference}"
        message = message_add(
            ticket=ticket,
            author=user,
            body=_body(parsed.reply_text or parsed.text, dropped, limits.MESSAGE_BODY),
            sender_kind=Message.SenderKind.AGENT if staff else Message.SenderKind.CUSTOMER,
            attachments=files,
        )
        _mark(message, inbound)
        _add_participants(ticket, parsed, sender=sender, user=user)
        return Outcome.APPENDED, f"matched by {how}", ticket, message

    new = _open_ticket(parsed, user, files, dropped)
    message = _mark(new.messages.order_by("created_at", "id").first(), inbound)
    _add_participants(new, parsed, sender=sender, user=user)
    return Outcome.CREATED, "", new, message


def _lock_sender(sender: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"helpdesk-mail:{sender}"])


def _over_sender_rate(inbound: InboundEmail, sender: str) -> bool:
    earlier = InboundEmail.objects.filter(
        from_address=sender,
        pk__lt=inbound.pk,
        received_at__gte=inbound.received_at - timedelta(hours=1),
    )
    return earlier.count() >= settings.HELPDESK_EMAIL_PER_SENDER_PER_HOUR


def _find_user(sender: str):
    """The account of ``sender`` (its verified address first), or None."""
    found = (
        EmailAddress.objects.filter(email__iexact=sender)
        .select_related("user")
        .order_by("-verified", "-primary", "pk")
        .first()
    )
    if found is not None:
        return found.user
    return get_user_model().objects.filter(email__iexact=sender).order_by("pk").first()


# ---- threading ----------------------------------------------------------------------


def _id_variants(values) -> list[str]:
    found = []
    for value in values or ():
        for token in str(value).split():
            bare = token.strip().strip("<>").strip()
            if bare:
                found += [f"<{bare}>", bare]
    return list(dict.fromkeys(found))[:200]


def _thread(parsed, recipients, *, sender: str, user) -> tuple[Ticket | None, str]:
    """The ticket a mail continues and how it was found, or (None, "")."""
    ids = _id_variants([*(parsed.in_reply_to or []), *(parsed.references or [])])
    if ids:
        replied = (
            Message.objects.filter(email_message_id__in=ids)
            .select_related("ticket")
            .order_by("-created_at", "-id")
            .first()
        )
        if replied is not None:
            return replied.ticket, "In-Reply-To/References"
    addresses = [*recipients, *(a for _, a in _address_list(parsed.to))]
    addresses += [a for _, a in _address_list(parsed.cc)]
    for address in addresses:
        reference = reference_from_address(address)
        if reference:
            ticket = Ticket.objects.filter(reference=reference).first()
            if ticket is not None and _may_write(ticket, sender=sender, user=user):
                return ticket, "reply address"
    for reference in _REFERENCE.findall(parsed.subject or ""):
        ticket = Ticket.objects.filter(reference=reference.upper()).first()
        if ticket is not None and _may_write(ticket, sender=sender, user=user):
            return ticket, "subject reference"
    return None, ""


def _may_write(ticket: Ticket, *, sender: str, user) -> bool:
    """The requester, their organization (its people, its verified domains), a
    participant, staff."""
    if user is not None and (user.pk == ticket.requester_id or is_agent(user)):
        return True
    if ticket.organization_id is not None:
        if (
            user is not None
            and CustomerProfile.objects.filter(
                user=user, organization_id=ticket.organization_id
            ).exists()
        ):
            return True
        if (
            user is None
            and OrganizationDomain.objects.filter(
                organization_id=ticket.organization_id,
                domain=sender.rpartition("@")[2],
                is_verified=True,
            ).exists()
        ):
            return True
    return TicketParticipant.objects.filter(ticket=ticket, email__iexact=sender).exists()


# ---- people -------------------------------------------------------------------------


def _free_username(sender: str) -> str:
    User = get_user_model()
    local = unicodedata.normalize("NFKC", sender.partition("@")[0])
    base = _USERNAME_CHARS.sub("", local)[:30] or "customer"
    username, n = base, 1
    while User.objects.filter(username__iexact=username).exists():
        n += 1
        username = f"{base}{n}"
    return username


def _customer_for(sender: str, name: str):
    """A new customer for an unknown sender: no usable password (``create_user`` with
    None), an unverified address to claim the account by, the organization of a verified
    domain."""
    domain = (
        OrganizationDomain.objects.filter(domain=sender.rpartition("@")[2], is_verified=True)
        .select_related("organization")
        .first()
    )
    first, _, last = _clean(name).strip().strip("\"'").partition(" ")
    user = customer_register(
        username=_free_username(sender),
        email=sender,
        password=None,  # an unusable password: "forgot password" sets the first one
        first_name=first.strip()[: limits.NAME],
        last_name=last.strip()[: limits.NAME],
        organization=domain.organization if domain else None,
    )
    EmailAddress.objects.create(user=user, email=sender, primary=True, verified=False)
    return user


def _add_participants(ticket: Ticket, parsed, *, sender: str, user) -> None:
    ours = {email.lower() for email in SupportAddress.objects.values_list("email", flat=True)}
    requester = (ticket.requester.email or "").lower()
    wanted = _address_list(parsed.to) + _address_list(parsed.cc)
    if user is not None and user.pk != ticket.requester_id and not is_agent(user):
        wanted.insert(0, (parsed.from_name or "", sender))
    added, seen = 0, set()
    for name, email in wanted:
        if email in seen or base_address(email) in ours or email == requester:
            continue
        seen.add(email)
        if email == sender and (user is None or user.pk == ticket.requester_id or is_agent(user)):
            continue
        if added >= MAX_NEW_PARTICIPANTS:
            break
        _, created = TicketParticipant.objects.get_or_create(
            ticket=ticket,
            email=email,
            defaults={"name": _clean(name)[:200], "user": _find_user(email)},
        )
        added += created


# ---- content ------------------------------------------------------------------------


def _filename(attachment, index: int) -> str:
    name = os.path.basename((attachment.filename or "").replace("\\", "/"))
    name = _clean("".join(ch for ch in name if ch.isprintable())).strip(" .")
    content_type = (attachment.content_type or "").lower()
    if not name:
        name = f"attachment-{index}"
    if mimetypes.guess_type(name)[0] is None and content_type:
        name += mimetypes.guess_extension(content_type) or ""
    stem, extension = os.path.splitext(name)
    return stem[: 100 - len(extension)] + extension


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _attachments(parsed) -> tuple[list[SimpleUploadedFile], list[str]]:
    """The files the portal would accept, and notes on the others."""
    max_bytes = settings.HELPDESK_ATTACHMENT_MAX_BYTES
    max_files = settings.HELPDESK_ATTACHMENT_MAX_FILES
    files, dropped = [], []
    for index, attachment in enumerate(parsed.attachments or (), start=1):
        content_type = (attachment.content_type or "").lower()
        if attachment.inline and not content_type.startswith("image/"):
            continue  # an alternative body part, not a file
        name = _filename(attachment, index)
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = len(attachment.content or b"")
        if guessed not in ALLOWED_ATTACHMENT_TYPES:
            dropped.append(f"{name} (files of type {guessed} are not accepted)")
        elif size > max_bytes:
            dropped.append(f"{name} ({_human(size)}; the limit is {_human(max_bytes)})")
        elif len(files) >= max_files:
            dropped.append(f"{name} (at most {max_files} files per message)")
        else:
            files.append(SimpleUploadedFile(name, attachment.content, content_type=guessed))
    return files, dropped


def _body(text: str, dropped: list[str], limit: int) -> str:
    text = _clean(text).strip() or "(The email had no text.)"
    note = ""
    if dropped:
        note = "\n\n[Attachments not kept: " + "; ".join(dropped) + ".]"
    room = limit - len(note)
    if len(text) > room:
        marker = "\n\n[… the rest is in the original email]"
        text = text[: max(0, room - len(marker))].rstrip() + marker
    return (text + note)[:limit]


def _open_ticket(parsed, user, files, dropped, *, follow_up_of: Ticket | None = None) -> Ticket:
    ticket_budget_take(user=user, address=None)  # shared with the portal, API and chat
    text = (
        (parsed.reply_text or parsed.text) if follow_up_of else (parsed.text or parsed.reply_text)
    )
    ticket = ticket_open(
        requester=user,
        subject=_clean(parsed.subject or "").strip()[: limits.SUBJECT] or NO_SUBJECT,
        description=_body(text, dropped, limits.TICKET_DESCRIPTION),
        channel=TicketChannel.EMAIL,
        attachments=files,
    )
    if follow_up_of is not None:
        ticket.follow_up_of = follow_up_of
        ticket.save(update_fields=["follow_up_of", "updated_at"])
        events.field_changed_event(
            ticket=ticket,
            actor=None,
            actor_kind=TicketEvent.ActorKind.SYSTEM,
            field="follow_up_of",
            old="",
            new=follow_up_of.reference,
        )
    return ticket


def _mark(message: Message, inbound: InboundEmail) -> Message:
    """The message keeps the mail's Message-ID: the next reply names it."""
    message.email_message_id = inbound.email_message_id
    message.save(update_fields=["email_message_id"])
    return message
