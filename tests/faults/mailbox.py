"""An email backend for the fault-test stack: each message sent becomes one JSON line.

The stack's processes (web server, Celery worker children) set
``EMAIL_BACKEND=tests.faults.mailbox.JsonLinesBackend`` and ``HELPDESK_MAILBOX_FILE``; the
test reads the file back (``fault_stack.mails()``), so a test sees what customers would
have received, even from a worker that was killed and restarted in between.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

ENV_VAR = "HELPDESK_MAILBOX_FILE"


def as_dict(message) -> dict:
    """What a test asserts on: recipients, subject, bodies and the headers."""
    mime = message.message()
    return {
        "from": message.from_email,
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "reply_to": list(message.reply_to),
        "subject": message.subject,
        "body": message.body,
        "alternatives": [
            {"content": str(alternative[0]), "mimetype": alternative[1]}
            for alternative in getattr(message, "alternatives", [])
        ],
        "headers": {key: str(value) for key, value in mime.items()},
        "pid": os.getpid(),
    }


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class JsonLinesBackend(BaseEmailBackend):
    def __init__(self, fail_silently=False, **kwargs):
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.path = Path(os.environ[ENV_VAR])

    def send_messages(self, email_messages):
        lines = "".join(json.dumps(as_dict(m)) + "\n" for m in email_messages)
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            # Several worker processes may send at once: one whole batch per writer.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(lines)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return len(email_messages)
