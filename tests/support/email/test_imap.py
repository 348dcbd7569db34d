"""The IMAP door end to end, against a real IMAP server: Debian's Dovecot, installed when
missing (as root, like Chromium for the browser tests) and started once per session on a
free loopback port with a private configuration. Mail is delivered by IMAP APPEND; the
poll is the ``support.tasks.poll_mailbox`` task run in the test's process."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import imapclient
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connections
from django.db.models.signals import post_save
from django.urls import reverse

from core.errors import DomainError, NotPermitted
from integrations.email.imap import ImapError, ImapMailbox
from support import services
from support.email import imap_poll
from support.models import InboundEmail, Mailbox, Message, SupportAddress, Ticket
from support.tasks import poll_mailbox, poll_mailboxes
from tests.servers import free_port

pytestmark = pytest.mark.django_db

SUPPORT = "support@acme.example"
PASSWORD_ENV = "HELPDESK_TEST_IMAP_PASSWORD"
ACCOUNTS = 100
#: A second loopback address of the test server, where it does not offer MOVE.
NO_MOVE_HOST = "127.0.0.2"


# ======================================================================================
# A private Dovecot
# ======================================================================================


def _dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None
    )


def _install_dovecot() -> str | None:
    """``apt-get install dovecot-imapd`` when running as root on Debian (as ``make
    browser`` installs Chromium); the binary, or None."""
    if _dovecot_binary() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "dovecot-imapd"],
            env=env,
            capture_output=True,
            check=False,
        )
    return _dovecot_binary()


class Dovecot:
    """One Dovecot master (``dovecot -F -c <conf>``) on 127.0.0.1, everything (config,
    sockets, state, mail, log) in a temporary directory. Plain text, no TLS: the
    ``security="none"`` of local test servers. Accounts are added to its passwd-file,
    which Dovecot reads again when it changes."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        # As root, Dovecot's login and mail processes must run as someone else, who has
        # to reach the directory (mkdtemp makes it private).
        self.root.chmod(0o755)
        self.port = free_port()
        # One account per test, each with its own maildir.
        self._passwords = {f"desk{n}": f"pw-{os.urandom(6).hex()}" for n in range(ACCOUNTS)}
        self.users = self.root / "users"
        self.users.write_text(
            "".join(f"{name}:{{PLAIN}}{word}::::::\n" for name, word in self._passwords.items())
        )
        self.log = self.root / "dovecot.log"
        self.process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            user, group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        else:
            user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        mail = self.root / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            shutil.chown(mail, user, group)
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(
            f"""
protocols = imap
listen = 127.0.0.1, {NO_MOVE_HOST}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
mail_location = maildir:{mail}/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users}
  default_fields = uid={user} gid={group} home={mail}/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1, {NO_MOVE_HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
# The same server without MOVE (RFC 6851), as older servers are.
local {NO_MOVE_HOST} {{
  protocol imap {{
    imap_capability = IMAP4rev1 LITERAL+ SASL-IR UIDPLUS IDLE NAMESPACE UNSELECT
  }}
}}
"""
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe,
            ):
                if probe.recv(64).startswith(b"* OK"):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not answer:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server; ``crash``: kill every process of it at once (the master, its
        login and mail processes), as a machine going down would."""
        if self.process is None or self.process.poll() is not None:
            return
        if crash:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Its login and mail processes go with the master; wait until the port is free.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.05)
            except OSError:
                return

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def add_account(self) -> tuple[str, str]:
        """A fresh account (written before the start: no reload to wait for)."""
        return self._passwords.popitem()

    def client(self, username: str, password: str) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(username, password)
        return client

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot():
    binary = _install_dovecot()
    if binary is None:
        message = "Dovecot is not installed (apt-get install dovecot-imapd; as root it is done)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = Dovecot(binary)
    server.start()
    yield server
    server.cleanup()


class Account:
    """An IMAP account of the test Dovecot and a desk ``Mailbox`` reading it."""

    def __init__(self, server: Dovecot, username: str, password: str) -> None:
        self.server, self.username, self.password = server, username, password

    @contextlib.contextmanager
    def imap(self, folder: str = "INBOX"):
        client = self.server.client(self.username, self.password)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.select_folder(folder)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        with self.imap(folder) as client:
            answer = client.append(folder, raw)
        return int(answer.split(b"APPENDUID ")[1].split()[1].rstrip(b"]"))

    def flags(self, folder: str = "INBOX") -> dict[int, set[bytes]]:
        with self.imap(folder) as client:
            found = client.fetch(client.search(["ALL"]), ["FLAGS"])
        return {uid: set(data[b"FLAGS"]) for uid, data in found.items()}


@pytest.fixture
def support_address(db):
    return SupportAddress.objects.create(email=SUPPORT, name="Acme Support", is_default=True)


@pytest.fixture
def account(dovecot, monkeypatch):
    username, password = dovecot.add_account()
    monkeypatch.setenv(PASSWORD_ENV, password)
    return Account(dovecot, username, password)


@pytest.fixture
def mailbox(account, support_address):
    return Mailbox.objects.create(
        name=f"Support ({account.username})",
        host="127.0.0.1",
        port=account.server.port,
        security=Mailbox.Security.NONE,
        username=account.username,
        password_env=PASSWORD_ENV,
        address=support_address,
    )


def mail(
    *,
    sender: str = "Dana Reyes <dana@client.example>",
    subject: str = "The printer is on fire",
    body: str = "It started this morning.\n",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = message_id or make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=policy.SMTP)


SEEN_FLAGGED = {imapclient.SEEN, imapclient.FLAGGED}


# ======================================================================================
# Polling
# ======================================================================================


def test_new_mail_opens_a_ticket_is_flagged_and_moves_the_watermark(account, mailbox):
    uid = account.deliver(mail(subject="Printer on fire"))

    assert poll_mailbox(mailbox.pk) == 1

    ticket = Ticket.objects.get()
    assert (ticket.subject, ticket.channel, ticket.requester.email) == (
        "Printer on fire",
        "email",
        "dana@client.example",
    )
    inbound = InboundEmail.objects.get()
    assert (inbound.door, inbound.ticket, inbound.recipients) == ("imap", ticket, [SUPPORT])
    assert account.flags()[uid] >= SEEN_FLAGGED
    mailbox.refresh_from_db()
    assert (mailbox.last_uid, mailbox.last_error) == (uid, "")
    assert mailbox.uidvalidity and mailbox.last_polled_at

    # Nothing new: nothing read, nothing recorded.
    assert poll_mailbox(mailbox.pk) == 0
    assert InboundEmail.objects.count() == 1
    assert Ticket.objects.count() == 1


def test_mail_already_there_and_new_mail_arrive_in_uid_order(account, mailbox):
    first = account.deliver(mail(subject="First"))
    assert poll_mailbox(mailbox.pk) == 1
    second = account.deliver(mail(subject="Second"))
    third = account.deliver(mail(subject="Third"))

    assert poll_mailbox(mailbox.pk) == 2

    assert list(Ticket.objects.order_by("pk").values_list("subject", flat=True)) == [
        "First",
        "Second",
        "Third",
    ]
    assert all(flags >= SEEN_FLAGGED for flags in account.flags().values())
    mailbox.refresh_from_db()
    assert mailbox.last_uid == third > second > first


def test_processed_mail_can_be_moved_to_a_folder_created_on_demand(account, mailbox):
    mailbox.after_processing = Mailbox.AfterProcessing.MOVE
    mailbox.move_to = "Processed"
    mailbox.save()
    account.deliver(mail())

    assert poll_mailbox(mailbox.pk) == 1

    assert Ticket.objects.count() == 1
    assert account.flags("INBOX") == {}
    assert len(account.flags("Processed")) == 1
    mailbox.refresh_from_db()
    assert mailbox.last_error == ""


def test_without_move_processed_mail_is_copied_deleted_and_expunged(account, mailbox):
    mailbox.host = NO_MOVE_HOST
    mailbox.after_processing = Mailbox.AfterProcessing.MOVE
    mailbox.move_to = "Archive"
    mailbox.save()
    account.deliver(mail())
    with ImapMailbox.connect(
        host=NO_MOVE_HOST,
        port=account.server.port,
        security="none",
        username=account.username,
        password=account.password,
    ) as imap:
        assert not imap._client.has_capability("MOVE")

    assert poll_mailbox(mailbox.pk) == 1

    mailbox.refresh_from_db()
    assert mailbox.last_error == ""
    assert account.flags("INBOX") == {}  # expunged, not only marked \Deleted
    assert len(account.flags("Archive")) == 1
    assert Ticket.objects.count() == 1


def test_a_recreated_folder_new_uidvalidity_reads_again_without_duplicates(account, mailbox):
    mailbox.folder = "Support"
    mailbox.save()
    already = mail(subject="Read before")
    account.deliver(already, "Support")
    assert poll_mailbox(mailbox.pk) == 1
    mailbox.refresh_from_db()
    before = mailbox.uidvalidity

    with account.imap() as client:
        client.delete_folder("Support")
        client.create_folder("Support")
    account.deliver(already, "Support")  # the same mail, under a UID that means nothing now
    newest = account.deliver(mail(subject="New after the move"), "Support")

    assert poll_mailbox(mailbox.pk) == 2

    mailbox.refresh_from_db()
    assert mailbox.uidvalidity != before
    assert mailbox.last_uid == newest
    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "New after the move",
        "Read before",
    ]
    assert InboundEmail.objects.count() == 2
    assert all(flags >= SEEN_FLAGGED for flags in account.flags("Support").values())


def test_mail_refused_ignored_or_unreadable_is_recorded_and_marked_processed(
    account, mailbox, settings
):
    settings.HELPDESK_EMAIL_MAX_BYTES = 4000
    uids = [
        account.deliver(mail(subject="Huge", body="x" * 10_000)),  # refused: too large
        account.deliver(mail(subject="Away", headers={"Auto-Submitted": "auto-replied"})),
        account.deliver(b"\xff\xfe\x00 not a mail at all \x00\r\n"),  # no From, no headers
    ]

    assert poll_mailbox(mailbox.pk) == 3

    outcomes = dict(InboundEmail.objects.values_list("subject", "outcome"))
    assert outcomes["Huge"] == InboundEmail.Outcome.REFUSED
    assert outcomes["Away"] == InboundEmail.Outcome.IGNORED
    assert InboundEmail.objects.count() == 3
    assert not Ticket.objects.exists()
    flags = account.flags()
    assert all(flags[uid] >= SEEN_FLAGGED for uid in uids)
    mailbox.refresh_from_db()
    assert (mailbox.last_uid, mailbox.last_error) == (uids[-1], "")


def test_a_wrong_or_missing_password_is_recorded_not_raised(account, mailbox, monkeypatch):
    account.deliver(mail())
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")

    assert poll_mailbox(mailbox.pk) == 0

    mailbox.refresh_from_db()
    assert "login" in mailbox.last_error.lower()
    assert not InboundEmail.objects.exists()

    monkeypatch.delenv(PASSWORD_ENV)
    assert poll_mailbox(mailbox.pk) == 0
    mailbox.refresh_from_db()
    assert PASSWORD_ENV in mailbox.last_error
    assert mailbox.last_uid == 0

    monkeypatch.setenv(PASSWORD_ENV, account.password)
    assert poll_mailbox(mailbox.pk) == 1
    mailbox.refresh_from_db()
    assert mailbox.last_error == ""


def test_the_server_stopping_midway_loses_nothing_and_reads_nothing_twice(
    dovecot, account, mailbox
):
    uids = [account.deliver(mail(subject=f"Mail {n}")) for n in range(3)]

    def stop_after_first(sender, instance, created, **kwargs):
        if created:
            post_save.disconnect(stop_after_first, sender=InboundEmail)
            dovecot.stop(crash=True)  # recorded; the server is gone before it is flagged

    post_save.connect(stop_after_first, sender=InboundEmail)
    try:
        assert poll_mailbox(mailbox.pk) == 0
        mailbox.refresh_from_db()
        assert mailbox.last_error.startswith("IMAP ")
        assert mailbox.last_uid == 0
        assert InboundEmail.objects.count() == 1

        # Down: the next beat run records that and returns.
        assert poll_mailbox(mailbox.pk) == 0
        mailbox.refresh_from_db()
        assert "connection" in mailbox.last_error.lower()
    finally:
        post_save.disconnect(stop_after_first, sender=InboundEmail)
        dovecot.stop()
        dovecot.start()

    assert poll_mailbox(mailbox.pk) == 3  # the first again (deduplicated), then the rest

    assert sorted(Ticket.objects.values_list("subject", flat=True)) == [
        "Mail 0",
        "Mail 1",
        "Mail 2",
    ]
    assert InboundEmail.objects.count() == 3
    assert Message.objects.count() == 3
    flags = account.flags()
    assert all(flags[uid] >= SEEN_FLAGGED for uid in uids)
    mailbox.refresh_from_db()
    assert (mailbox.last_uid, mailbox.last_error) == (uids[-1], "")


def test_the_same_message_id_by_smtp_and_by_imap_is_one_message(account, mailbox):
    raw = mail(message_id="<same-mail@client.example>")
    services.email_receive(raw, door="smtp", recipients=[SUPPORT])
    uid = account.deliver(raw)

    assert poll_mailbox(mailbox.pk) == 1

    inbound = InboundEmail.objects.get()
    assert inbound.door == "smtp"
    assert Ticket.objects.count() == 1
    assert Message.objects.filter(ticket=inbound.ticket).count() == 1
    assert account.flags()[uid] >= SEEN_FLAGGED


def test_a_mailbox_being_polled_is_not_polled_by_a_second_worker(account, mailbox):
    account.deliver(mail())
    held, release = threading.Event(), threading.Event()

    def other_worker():
        with imap_poll._exclusive(mailbox.pk) as mine:
            assert mine
            held.set()
            release.wait(10)
        connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert held.wait(10)
        assert poll_mailbox(mailbox.pk) == 0
        assert not InboundEmail.objects.exists()
    finally:
        release.set()
        worker.join(10)

    assert poll_mailbox(mailbox.pk) == 1


def test_the_beat_task_polls_each_active_mailbox(account, mailbox, settings):
    from config.celery import app

    idle = Mailbox.objects.create(
        name="Idle",
        host="127.0.0.1",
        port=account.server.port,
        security=Mailbox.Security.NONE,
        username="nobody-here",
        password_env="UNSET_VARIABLE",
        is_active=False,
    )
    account.deliver(mail())
    app.conf.task_always_eager = True
    try:
        assert poll_mailboxes() == 1
    finally:
        app.conf.task_always_eager = False

    assert Ticket.objects.count() == 1
    idle.refresh_from_db()
    assert idle.last_polled_at is None


# ======================================================================================
# The adapter
# ======================================================================================


def test_uids_after_the_last_one_is_empty_though_imap_answers_with_the_last(account):
    account.deliver(mail())
    last = account.deliver(mail())
    with ImapMailbox.connect(
        host="127.0.0.1",
        port=account.server.port,
        security="none",
        username=account.username,
        password=account.password,
    ) as imap:
        imap.select("INBOX")
        assert imap.uids_after(last) == []
        assert imap.uids_after(last - 1) == [last]
        assert dict(imap.fetch_raw([last])).keys() == {last}
        # Read without \Seen: PEEK.
    assert imapclient.SEEN not in account.flags()[last]


def test_a_server_that_is_not_there_is_one_readable_error():
    with pytest.raises(ImapError, match=r"connection to 127\.0\.0\.1:\d+ failed"):
        ImapMailbox.connect(
            host="127.0.0.1",
            port=free_port(),
            security="none",
            username="u",
            password="p",
            timeout=2,
        )


# ======================================================================================
# Setup and admin
# ======================================================================================


def test_mailbox_save_is_for_managers_and_a_new_folder_starts_the_watermark_again(
    mailbox, manager, agent
):
    Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=7, last_uid=42)
    mailbox.refresh_from_db()
    mailbox.folder = "Support"

    with pytest.raises(NotPermitted):
        services.mailbox_save(mailbox=mailbox, actor=agent)
    services.mailbox_save(mailbox=mailbox, actor=manager)

    mailbox.refresh_from_db()
    assert (mailbox.folder, mailbox.uidvalidity, mailbox.last_uid) == ("Support", None, 0)

    mailbox.after_processing, mailbox.move_to = Mailbox.AfterProcessing.MOVE, "Support"
    with pytest.raises(DomainError):
        services.mailbox_save(mailbox=mailbox, actor=manager)


def test_admin_tests_the_connection_polls_now_and_never_shows_the_password(
    client, manager, account, mailbox
):
    client.force_login(manager)
    account.deliver(mail())
    changelist = reverse("admin:support_mailbox_changelist")

    page = client.get(reverse("admin:support_mailbox_change", args=[mailbox.pk]))
    assert page.status_code == 200
    assert PASSWORD_ENV.encode() in page.content
    assert account.password.encode() not in page.content

    answer = client.post(
        changelist,
        {"action": "test_connection_action", ACTION_CHECKBOX_NAME: [mailbox.pk]},
        follow=True,
    )
    assert "holds 1 mail" in answer.content.decode()

    answer = client.post(
        changelist, {"action": "poll_now_action", ACTION_CHECKBOX_NAME: [mailbox.pk]}, follow=True
    )
    assert "1 new mail read" in answer.content.decode()
    assert Ticket.objects.count() == 1

    os.environ[PASSWORD_ENV] = "wrong"
    answer = client.post(
        changelist,
        {"action": "test_connection_action", ACTION_CHECKBOX_NAME: [mailbox.pk]},
        follow=True,
    )
    assert "login as" in answer.content.decode()


def test_behind_pgbouncer_poll_now_queues_a_worker_poll_instead_of_reading_in_the_request(
    client, manager, account, mailbox, settings
):
    from core.models import OutboxItem

    settings.DATABASE_PGBOUNCER = True
    client.force_login(manager)
    account.deliver(mail())
    answer = client.post(
        reverse("admin:support_mailbox_changelist"),
        {"action": "poll_now_action", ACTION_CHECKBOX_NAME: [mailbox.pk]},
        follow=True,
    )
    assert "a worker polls it now" in answer.content.decode()
    assert Ticket.objects.count() == 0
    queued = OutboxItem.objects.get(task="support.tasks.poll_mailbox")
    assert queued.args == [mailbox.pk]
