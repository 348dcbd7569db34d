"""The built-in SMTP receiver: the email channel's SMTP door (``manage.py run_smtp``, which
``make run`` starts beside the web server).

An aiosmtpd server on ``INBOUND_SMTP_HOST:INBOUND_SMTP_PORT`` that takes mail for the
active support addresses and their plus-addresses only, and answers:

- ``RCPT TO``: ``250`` for a support address (or ``support+anything@…``), ``550 5.1.1``
  for any other address, ``452 4.5.3`` beyond ``INBOUND_SMTP_MAX_RECIPIENTS``;
- ``MAIL FROM … SIZE=`` or ``DATA`` over ``HELPDESK_EMAIL_MAX_BYTES``: ``552``;
- ``DATA``: ``250 OK`` once :func:`support.services.email_receive` has returned, i.e. once
  the mail and what became of it (the ticket, the reply) are committed; ``451 4.3.0`` when
  the database cannot be reached (a temporary failure: the sending server keeps the mail
  and retries, nothing is lost). Refused, ignored and spam mail are answered 250 too: they
  are recorded, and bouncing them would feed the loops the refusals are there to stop;
- a connection beyond ``INBOUND_SMTP_MAX_CONNECTIONS`` gets ``421 4.7.0`` instead of the
  greeting.

As the final delivery server it adds ``Return-Path`` (the envelope sender, RFC 5321
§4.4) on top of the mail, so the safety checks see a bounce's empty ``<>``.

Django's database work runs in a pool of worker threads (the event loop never waits on
PostgreSQL), each job between ``close_old_connections()`` calls as Django's request cycle
does, so a connection broken by a database restart is replaced rather than reused.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.conf import settings
from django.db import close_old_connections

from support.email.addresses import support_address_for
from support.services.email import OUTAGE_ERRORS

logger = logging.getLogger(__name__)

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"
#: Threads (so PostgreSQL connections) the receiver uses for Django work at most.
DATABASE_THREADS = 8


def _in_django(function, *args):
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


def _is_ours(address: str) -> bool:
    return support_address_for([address]) is not None


def _receive(raw: bytes, recipients: list[str]):
    from support import services

    return services.email_receive(raw, door="smtp", recipients=recipients)


class InboundHandler:
    """aiosmtpd hooks: which recipients we take, and what a mail becomes."""

    def __init__(self, *, executor: ThreadPoolExecutor, max_recipients: int):
        self.executor = executor
        self.max_recipients = max_recipients

    async def _run(self, function, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _in_django, function, *args)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            ours = await self._run(_is_ours, address)
        except OUTAGE_ERRORS:
            logger.warning("inbound SMTP: database unavailable for RCPT", exc_info=True)
            return TEMPORARY_FAILURE
        if not ours:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        sender = (envelope.mail_from or "").replace("\r", "").replace("\n", "")
        raw = f"Return-Path: <{sender}>\r\n".encode() + envelope.original_content
        try:
            inbound = await self._run(_receive, raw, list(envelope.rcpt_tos))
        except OUTAGE_ERRORS:
            logger.warning("inbound SMTP: database unavailable, answered 451", exc_info=True)
            return TEMPORARY_FAILURE
        except Exception:
            logger.exception("inbound SMTP: the mail could not be recorded, answered 451")
            return TEMPORARY_FAILURE
        logger.info(
            "inbound SMTP: mail %s from %s: %s",
            inbound.pk,
            inbound.from_address,
            inbound.outcome,
            extra={"inbound_email_id": inbound.pk, "outcome": inbound.outcome},
        )
        return "250 OK"


class _Gate:
    """How many connections are served; only the event loop's thread touches it."""

    def __init__(self, limit: int):
        self.limit, self.open = limit, 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


class _LimitedSMTP(SMTP):
    def __init__(self, handler, *, gate: _Gate, **kwargs):
        super().__init__(handler, **kwargs)
        self._gate = gate

    async def _handle_client(self) -> None:
        # aiosmtpd 1.4's per-connection coroutine (it sends the greeting): the only place
        # a connection can be turned away before it is served.
        if not self._gate.enter():
            await self.push("421 4.7.0 Too many connections, try again later")
            self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            self._gate.leave()


class InboundController(Controller):
    """The receiver in a thread of its own (``start()`` / ``stop()``)."""

    def __init__(
        self,
        *,
        hostname: str | None = None,
        port: int | None = None,
        max_connections: int | None = None,
        max_recipients: int | None = None,
        data_size_limit: int | None = None,
    ):
        limit = max_connections or settings.INBOUND_SMTP_MAX_CONNECTIONS
        self._gate = _Gate(limit)
        # Database work of all connections shares a few threads (a few PostgreSQL
        # connections); the sessions beyond wait their turn, they are not refused.
        self.executor = ThreadPoolExecutor(
            max_workers=min(limit, DATABASE_THREADS), thread_name_prefix="smtp-django"
        )
        handler = InboundHandler(
            executor=self.executor,
            max_recipients=max_recipients or settings.INBOUND_SMTP_MAX_RECIPIENTS,
        )
        super().__init__(
            handler,
            hostname=hostname or settings.INBOUND_SMTP_HOST,
            port=port or settings.INBOUND_SMTP_PORT,
            server_hostname=socket.gethostname(),
            data_size_limit=data_size_limit or settings.HELPDESK_EMAIL_MAX_BYTES,
            ident="Helpdesk ESMTP",
        )

    def factory(self):
        return _LimitedSMTP(self.handler, gate=self._gate, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.executor.shutdown(wait=True)


def serve(*, host: str, port: int) -> None:
    """Run the receiver until SIGINT or SIGTERM."""
    # aiosmtpd logs every command of every session at INFO: only its problems here.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    controller = InboundController(hostname=host, port=port)
    controller.start()
    logger.info("inbound SMTP receiver listening on %s:%s", host, port)
    print(f"Inbound SMTP receiver listening on {host}:{port}", flush=True)
    try:
        stopping.wait()
    finally:
        controller.stop()
