"""IMAP mailboxes the desk reads: their setup (``mailbox_save``) and what each poll
leaves on the row (``mailbox_record_poll``: the UID watermark, the last error)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, NotPermitted
from core.roles import is_manager
from support.models import Mailbox
from support.services._validation import full_clean

__all__ = ["mailbox_queue_poll", "mailbox_record_poll", "mailbox_save"]

#: Errors are kept readable and short on the row.
MAX_ERROR_CHARS = 2000


@transaction.atomic
def mailbox_save(*, mailbox: Mailbox, actor) -> Mailbox:
    """Create or change a mailbox (managers). The password is never stored: only the name
    of the environment variable that holds it. Pointing the mailbox at another server,
    account or folder starts its watermark again (UIDs belong to one folder); the
    Message-ID dedupe keeps mail already read from becoming tickets twice."""
    if not is_manager(actor):
        raise NotPermitted("Only managers can change mailboxes.")
    mailbox.password_env = mailbox.password_env.strip()
    mailbox.folder = mailbox.folder.strip() or "INBOX"
    mailbox.move_to = mailbox.move_to.strip()
    if mailbox.after_processing == Mailbox.AfterProcessing.MOVE:
        if not mailbox.move_to:
            raise DomainError("Name the folder processed mail is moved to.", field="move_to")
        if mailbox.move_to == mailbox.folder:
            raise DomainError(
                "Processed mail must move to another folder than the one read.", field="move_to"
            )
    full_clean(mailbox)
    if mailbox.pk is not None:
        before = Mailbox.objects.select_for_update().filter(pk=mailbox.pk).first()
        if before is not None and (before.host, before.username, before.folder) != (
            mailbox.host,
            mailbox.username,
            mailbox.folder,
        ):
            mailbox.uidvalidity, mailbox.last_uid = None, 0
    mailbox.save()
    return mailbox


@transaction.atomic
def mailbox_queue_poll(*, mailbox: Mailbox, actor) -> None:
    """Ask a worker to poll the mailbox now (managers): the poll holds a session lock,
    which a web request behind PgBouncer's transaction pooling cannot keep."""
    from core.outbox import schedule_after_commit

    if not is_manager(actor):
        raise NotPermitted("Only managers can poll mailboxes.")
    schedule_after_commit("support.tasks.poll_mailbox", mailbox.pk)


@transaction.atomic
def mailbox_record_poll(
    *,
    mailbox_id: int,
    uidvalidity: int | None = None,
    last_uid: int | None = None,
    error: str | None = None,
) -> Mailbox | None:
    """What a poll found, saved as it goes (after each mail, so a crash re-reads at most
    one mail, which the Message-ID dedupe absorbs).

    - ``uidvalidity`` other than the stored one: the folder was recreated and its UIDs
      mean something else; the watermark starts again at ``last_uid`` (or 0).
    - ``last_uid``: the watermark only moves forward within one UIDVALIDITY.
    - ``error``: ``""`` clears the last error (a poll went through), a text records it;
      ``None`` leaves it. Either way the poll time is recorded.
    """
    mailbox = Mailbox.objects.select_for_update().filter(pk=mailbox_id).first()
    if mailbox is None:
        return None
    fields = ["last_polled_at"]
    mailbox.last_polled_at = timezone.now()
    if uidvalidity is not None and uidvalidity != mailbox.uidvalidity:
        mailbox.uidvalidity = uidvalidity
        mailbox.last_uid = max(last_uid or 0, 0)
        fields += ["uidvalidity", "last_uid"]
    elif last_uid is not None and last_uid > mailbox.last_uid:
        mailbox.last_uid = last_uid
        fields.append("last_uid")
    if error is not None and error[:MAX_ERROR_CHARS] != mailbox.last_error:
        mailbox.last_error = error[:MAX_ERROR_CHARS]
        fields.append("last_error")
    mailbox.save(update_fields=fields)
    return mailbox
