import json
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import connection

from tests.conftest import BASE_DIR, subprocess_env

CLOSED_PORT_URL = "redis://127.0.0.1:9"  # discard port: nothing listens there


def test_liveness_answers_ok(client):
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readiness_reports_every_component_up(client):
    response = client.get("/health/ready/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["components"]) == {"database", "pgvector", "redis", "celery_broker"}
    assert all(c["status"] == "up" for c in body["components"].values())
    assert body["components"]["pgvector"]["version"].startswith("0.")


@pytest.mark.django_db
def test_readiness_is_503_without_the_vector_extension(client):
    # Dropped inside the test's transaction, so it comes back on rollback.
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION vector CASCADE")

    response = client.get("/health/ready/")

    assert response.status_code == 503
    components = response.json()["components"]
    assert components["pgvector"]["status"] == "down"
    assert "not installed" in components["pgvector"]["error"]
    assert components["database"]["status"] == "up"


@pytest.mark.django_db
def test_readiness_is_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = CLOSED_PORT_URL
    settings.CELERY_BROKER_URL = CLOSED_PORT_URL + "/0"

    response = client.get("/health/ready/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["components"]["redis"]["status"] == "down"
    assert body["components"]["celery_broker"]["status"] == "down"
    assert body["components"]["database"]["status"] == "up"


@pytest.mark.django_db
def test_readiness_is_503_when_the_database_is_down():
    """A process whose database is unreachable reports it instead of crashing."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/health/ready/');"
        "print(json.dumps({'code': r.status_code, **r.json()}))"
    )
    env = subprocess_env(DATABASE_URL="postgres://nobody@127.0.0.1:9/nothing")

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout.strip().splitlines()[-1])
    assert body["code"] == 503
    assert body["components"]["database"]["status"] == "down"
    assert body["components"]["pgvector"]["status"] == "down"
    assert body["components"]["redis"]["status"] == "up"


def test_health_is_served_through_the_asgi_application():
    from config.asgi import application

    communicator = HttpCommunicator(
        application, "GET", "/health/", headers=[(b"host", b"localhost")]
    )
    response = async_to_sync(communicator.get_response)()

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}
