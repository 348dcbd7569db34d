"""The IMAP door: read the new mail of a :class:`~support.models.Mailbox` and hand each
one to :func:`support.services.email_receive` (``door="imap"``).

One poll (:func:`mailbox_poll`, run by the ``support.tasks.poll_mailbox`` task):

1. Only one poll of a mailbox at a time: a PostgreSQL advisory lock on the session
   (released when the poll ends, or when a dead worker's connection goes); a second
   worker finds it taken and returns.
2. The password is read from the environment variable the mailbox names; unset → the
   error is recorded on the mailbox, nothing else happens.
3. Connect, select the folder. Its UIDVALIDITY differs from the stored one (the folder
   was recreated, the server migrated) → the UIDs seen before mean nothing: the watermark
   starts again at 0. Mail read before is then read again, and the Message-ID dedupe of
   ``email_receive`` returns its existing row: no second ticket, no second message.
4. The UIDs above the watermark, oldest first, fetched ``BATCH`` at a time with
   ``BODY.PEEK[]`` (nothing marked read before it is processed). For each mail:
   ``email_receive``, then mark it processed (flagged, or moved), then save the
   watermark. A crash between two of these re-reads at most that one mail next time,
   which the dedupe absorbs. A mail the desk cannot read or refuses is still recorded
   (``InboundEmail``) and marked processed: it is not read again.
5. Any IMAP failure (server down, login refused, a connection lost midway) and a database
   outage stop the poll: the error is recorded on the mailbox, the mail not yet processed
   stays unmarked above the watermark, and the next beat run carries on from there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses

from django.db import connection

from integrations.email.imap import ImapError, ImapMailbox
from support.email.addresses import normalize
from support.models import Mailbox

logger = logging.getLogger(__name__)

#: Mails fetched per round trip.
BATCH = 50
#: At most this many mails per poll; the next beat run takes the rest.
MAX_PER_POLL = 500
#: Seconds a silent IMAP server is waited for.
TIMEOUT_SECONDS = 30.0
#: The advisory locks' namespace (first key of ``pg_try_advisory_lock(int, int)``).
_LOCK_NAMESPACE = 0x494D4150  # "IMAP"


def mailbox_poll(mailbox_id: int, *, limit: int = MAX_PER_POLL) -> int:
    """Poll one mailbox; how many mails were handed to the desk (duplicates included).
    Never raises for the mail server's sake: its failures are recorded on the mailbox."""
    with _exclusive(mailbox_id) as mine:
        if not mine:
            logger.info("mailbox %s is being polled by another worker", mailbox_id)
            return 0
        mailbox = Mailbox.objects.select_related("address").filter(pk=mailbox_id).first()
        if mailbox is None or not mailbox.is_active:
            return 0
        return _poll(mailbox, limit=limit)


def mailbox_test(mailbox: Mailbox) -> str:
    """Connect, log in and select the folder (nothing read, nothing recorded): a sentence
    saying what was found. Raises :class:`ImapError` with the reason it failed."""
    with _connect(mailbox) as imap:
        imap.select(mailbox.folder)
        count = len(imap.uids_after(0))
    return f"Connected to {mailbox.host}:{mailbox.port}; “{mailbox.folder}” holds {count} mail."


# --------------------------------------------------------------------------------------


def _poll(mailbox: Mailbox, *, limit: int) -> int:
    from support import services

    handed = 0
    try:
        with _connect(mailbox) as imap:
            uidvalidity = imap.select(mailbox.folder)
            last_uid = mailbox.last_uid
            if uidvalidity != mailbox.uidvalidity:
                if mailbox.uidvalidity is not None:
                    logger.warning(
                        "mailbox %s: UIDVALIDITY changed (%s → %s), reading it again",
                        mailbox.pk,
                        mailbox.uidvalidity,
                        uidvalidity,
                    )
                services.mailbox_record_poll(
                    mailbox_id=mailbox.pk, uidvalidity=uidvalidity, last_uid=0
                )
                last_uid = 0
            uids = imap.uids_after(last_uid)[: max(0, limit)]
            for uid, raw in imap.fetch_raw(uids, batch=BATCH):
                services.email_receive(raw, door="imap", recipients=_recipients(raw, mailbox))
                imap.mark_processed(uid, how=mailbox.after_processing, move_to=mailbox.move_to)
                services.mailbox_record_poll(mailbox_id=mailbox.pk, last_uid=uid)
                handed += 1
    except ImapError as error:
        logger.warning("mailbox %s: %s", mailbox.pk, error)
        services.mailbox_record_poll(mailbox_id=mailbox.pk, error=str(error))
        return handed
    except Exception as error:  # the desk could not take the mail now: it stays unmarked
        logger.exception("mailbox %s: mail could not be handed to the desk", mailbox.pk)
        _record_quietly(mailbox.pk, f"Mail not taken, will retry: {type(error).__name__}: {error}")
        return handed
    services.mailbox_record_poll(mailbox_id=mailbox.pk, error="")
    return handed


@contextmanager
def _connect(mailbox: Mailbox) -> Iterator[ImapMailbox]:
    password = os.environ.get(mailbox.password_env or "")
    if not password:
        raise ImapError(
            f"The environment variable “{mailbox.password_env}” holding the password is not set."
        )
    imap = ImapMailbox.connect(
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        username=mailbox.username,
        password=password,
        timeout=TIMEOUT_SECONDS,
    )
    with imap:
        yield imap


def _recipients(raw: bytes, mailbox: Mailbox) -> list[str]:
    """The mail's own To, Cc and Delivered-To (a plus-address there threads the reply),
    and the mailbox's support address (mail that reached it by Bcc names it nowhere)."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:65536])
    fields = [str(v) for name in ("To", "Cc", "Delivered-To") for v in headers.get_all(name, [])]
    found = [normalize(address) for _, address in getaddresses(fields)]
    if mailbox.address_id:
        found.append(normalize(mailbox.address.email))
    return list(dict.fromkeys(address for address in found if address))


def _record_quietly(mailbox_id: int, error: str) -> None:
    from support import services

    try:
        services.mailbox_record_poll(mailbox_id=mailbox_id, error=error)
    except Exception:  # the database itself is away: the log has it
        logger.exception("mailbox %s: could not record the error", mailbox_id)


@contextmanager
def _exclusive(mailbox_id: int) -> Iterator[bool]:
    """A PostgreSQL advisory lock on the session for this mailbox: held while it polls."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, int(mailbox_id)])
        mine = bool(cursor.fetchone()[0])
    try:
        yield mine
    finally:
        if mine:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, int(mailbox_id)]
                    )
            except Exception:  # the connection is gone, and the lock with it
                logger.warning("mailbox %s: advisory lock not released", mailbox_id)
