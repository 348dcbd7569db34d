"""The OpenAPI schema answers every caller of a freshly started process, even at once."""

from __future__ import annotations

import subprocess
import sys

from django.conf import settings

from tests.conftest import subprocess_env

SCRIPT = """
import threading
import django
django.setup()
from django.test import Client

statuses = []
def fetch():
    statuses.append(Client().get("/api/schema/", HTTP_HOST="localhost").status_code)

threads = [threading.Thread(target=fetch) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(statuses))
"""


def test_four_first_schema_requests_at_once_all_get_the_schema(db):
    # A new process: drf-spectacular loads its extensions on the first generation only.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=settings.BASE_DIR,
        env=subprocess_env(DEBUG="true", LOG_LEVEL="ERROR"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[200, 200, 200, 200]", result.stderr[-3000:]
