"""A small IMAP client over ``imapclient``: what polling a mailbox needs, nothing more.

- :meth:`ImapMailbox.select` returns the folder's UIDVALIDITY: when it changes, the UIDs
  seen before mean nothing any more (the caller starts its watermark again).
- :meth:`ImapMailbox.uids_after` is ``UID SEARCH UID n+1:*``; a server answers that range
  with the last message even when ``n+1`` is past it, so smaller UIDs are filtered out.
- :meth:`ImapMailbox.fetch_raw` reads ``BODY.PEEK[]``: nothing is marked read before the
  caller has processed it.
- :meth:`ImapMailbox.mark_processed` flags (``\\Seen`` and ``\\Flagged``) or moves the mail
  (``MOVE``, RFC 6851; else ``COPY`` + ``\\Deleted`` + ``UID EXPUNGE``), creating the
  target folder when it is missing.

Every failure (network, TLS, login refused, a ``NO``/``BAD`` answer) is raised as
:class:`ImapError` with a message a person can act on.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Literal

import imapclient
from imapclient.exceptions import IMAPClientError

Security = Literal["ssl", "starttls", "none"]

#: ``mark_processed(how=...)``
FLAG = "flag"
MOVE = "move"

_FAILURES = (IMAPClientError, OSError, ssl.SSLError, socket.timeout, EOFError)


class ImapError(Exception):
    """Anything that went wrong talking to the IMAP server, said readably."""


def _readable(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, bytes | bytearray):  # pragma: no cover - defensive
        text = error.decode(errors="replace")
    return text.removeprefix("b'").removesuffix("'") if text.startswith("b'") else text


@contextlib.contextmanager
def _errors(doing: str) -> Iterator[None]:
    try:
        yield
    except ImapError:
        raise
    except _FAILURES as error:
        raise ImapError(f"IMAP {doing} failed: {_readable(error)}") from error


class ImapMailbox:
    """One connection to one IMAP account. Use it as a context manager (logs out)."""

    def __init__(self, client: imapclient.IMAPClient) -> None:
        self._client = client
        self._folder: str | None = None

    # ---- connection ----------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        *,
        host: str,
        port: int,
        security: Security,
        username: str,
        password: str,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> ImapMailbox:
        """Connect and log in; ``security``: ``ssl`` (implicit TLS), ``starttls`` or
        ``none`` (plain text: local test servers only)."""
        if security not in ("ssl", "starttls", "none"):
            raise ImapError(f"Unknown IMAP security “{security}”.")
        context = ssl_context or ssl.create_default_context()
        with _errors(f"connection to {host}:{port}"):
            client = imapclient.IMAPClient(
                host,
                port=port,
                ssl=security == "ssl",
                ssl_context=context if security == "ssl" else None,
                timeout=timeout,
            )
        try:
            if security == "starttls":
                with _errors(f"STARTTLS with {host}:{port}"):
                    client.starttls(context)
            with _errors(f"login as {username}"):
                client.login(username, password)
        except ImapError:
            with contextlib.suppress(*_FAILURES):
                client.shutdown()
            raise
        return cls(client)

    def logout(self) -> None:
        """Log out; a connection already gone is not an error."""
        try:
            self._client.logout()
        except _FAILURES:
            with contextlib.suppress(*_FAILURES):
                self._client.shutdown()

    def __enter__(self) -> ImapMailbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.logout()

    # ---- reading ---------------------------------------------------------------------

    def select(self, folder: str) -> int:
        """Select ``folder`` (read-write: flags and moves follow); its UIDVALIDITY."""
        with _errors(f"select of “{folder}”"):
            answer = self._client.select_folder(folder)
        self._folder = folder
        value = answer.get(b"UIDVALIDITY")
        if value is None:
            raise ImapError(f"The server gave no UIDVALIDITY for “{folder}”.")
        return int(value)

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``, ascending."""
        with _errors("UID SEARCH"):
            found = self._client.search(["UID", f"{int(last_uid) + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def fetch_raw(self, uids: Iterable[int], *, batch: int = 50) -> Iterator[tuple[int, bytes]]:
        """``(uid, raw bytes)`` of each mail, in UID order, ``batch`` at a time, without
        marking anything read. A UID gone meanwhile (expunged elsewhere) is skipped."""
        ordered = sorted(uids)
        for start in range(0, len(ordered), max(1, batch)):
            chunk = ordered[start : start + max(1, batch)]
            with _errors("FETCH"):
                answer = self._client.fetch(chunk, ["BODY.PEEK[]"])
            for uid in chunk:
                data = answer.get(uid) or {}
                raw = data.get(b"BODY[]")
                if raw is not None:
                    yield uid, bytes(raw)

    # ---- after processing ------------------------------------------------------------

    def mark_processed(self, uid: int, *, how: str = FLAG, move_to: str = "") -> None:
        """Flag the mail ``\\Seen`` + ``\\Flagged``, or move it to ``move_to``."""
        if how == FLAG:
            with _errors(f"flagging of UID {uid}"):
                self._client.add_flags([uid], [imapclient.SEEN, imapclient.FLAGGED], silent=True)
            return
        if how != MOVE:
            raise ImapError(f"Unknown way to mark processed mail “{how}”.")
        if not move_to:
            raise ImapError("No folder to move processed mail to.")
        self.ensure_folder(move_to)
        with _errors(f"move of UID {uid} to “{move_to}”"):
            self._client.add_flags([uid], [imapclient.SEEN], silent=True)
            if self._client.has_capability("MOVE"):
                self._client.move([uid], move_to)
            else:
                self._client.copy([uid], move_to)
                self._client.delete_messages([uid], silent=True)
                if self._client.has_capability("UIDPLUS"):
                    self._client.uid_expunge([uid])
                else:
                    self._client.expunge()

    def ensure_folder(self, folder: str) -> None:
        """Create ``folder`` unless it exists."""
        with _errors(f"creation of “{folder}”"):
            if not self._client.folder_exists(folder):
                self._client.create_folder(folder)
                with contextlib.suppress(*_FAILURES):
                    self._client.subscribe_folder(folder)
