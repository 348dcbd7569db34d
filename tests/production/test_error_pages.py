"""The error pages of a production process (DEBUG=false, the collected static files), each
rendered by the handler the URLconf names, while PostgreSQL cannot be reached: 500 and 400
are rendered without the request, and none of the four may need the database."""

import json
import subprocess
import sys

from tests.conftest import BASE_DIR
from tests.production.conftest import production_env

SCRIPT = """
import json
import django
django.setup()
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.test import RequestFactory
from django.urls import get_resolver

request = RequestFactory().get("/somewhere/", HTTP_HOST="localhost", secure=True)
request.user = AnonymousUser()
resolver = get_resolver()
pages = {}
for code, exception in [(400, SuspiciousOperation("x")), (403, PermissionDenied("x")),
                        (404, Http404("x")), (500, None)]:
    handler = resolver.resolve_error_handler(code)
    response = handler(request) if exception is None else handler(request, exception)
    pages[code] = [response.status_code, response.content.decode()]
print(json.dumps(pages))
"""

HEADINGS = {
    "400": "We could not understand that request",
    "403": "This page is not open to you",
    "404": "We couldn't find that page",
    "500": "Something went wrong on our side",
}


def test_error_pages_render_in_production_without_the_database(collected_static):
    assert collected_static.result.returncode == 0, collected_static.result.stderr
    env = production_env(
        STATIC_ROOT=str(collected_static.root),
        DATABASE_URL="postgres://nobody@127.0.0.1:9/unreachable",  # nothing listens there
    )

    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    pages = json.loads(result.stdout.strip().splitlines()[-1])
    for code, heading in HEADINGS.items():
        status, html = pages[code]
        assert status == int(code)
        assert heading in html, html
    # The portal's pages link the fingerprinted, compressed static files of the manifest.
    assert collected_static.manifest["paths"]["css/helpdesk.css"] in pages["404"][1]
    assert "/static/" not in pages["500"][1]  # the last resort needs no static file
