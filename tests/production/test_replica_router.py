"""The read replica (config.db_router): which database each query goes to, and one real
run where the replica is the test database reached through a read-only role."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection, transaction

from config.db_router import REPLICA, ReplicaRouter, read_alias, replica_reads
from config.embedded import socket_database_url
from knowledge import services as kb_services
from knowledge.models import Article, Category, SearchLog
from support.models import Ticket
from tests.conftest import BASE_DIR, database_url, subprocess_env
from tests.factories import ManagerFactory

router = ReplicaRouter()


@pytest.fixture
def with_replica(settings, monkeypatch):
    """A ``replica`` entry in DATABASES, as DATABASE_REPLICA_URL makes (never connected to
    here: the router only decides)."""
    monkeypatch.setitem(settings.DATABASES, REPLICA, {**settings.DATABASES["default"]})


# ---- choices --------------------------------------------------------------------------


def test_without_a_replica_every_read_stays_on_default(settings):
    assert REPLICA not in settings.DATABASES  # the test settings have none

    with replica_reads():
        assert router.db_for_read(Article) is None  # Django's own choice: default
        assert read_alias() == "default"


def test_reads_go_to_the_replica_only_inside_replica_reads(with_replica):
    assert router.db_for_read(Article) is None
    with replica_reads():
        assert router.db_for_read(Article) == REPLICA
        assert read_alias() == REPLICA
    assert router.db_for_read(Ticket) is None
    assert read_alias() == "default"


def test_replica_reads_as_a_decorator_holds_for_the_call_only(with_replica):
    @replica_reads()
    def page():
        return router.db_for_read(Article)

    assert page() == REPLICA
    assert router.db_for_read(Article) is None


def test_writes_always_go_to_default(with_replica):
    with replica_reads():
        assert router.db_for_write(SearchLog) == "default"
        assert router.db_for_write(Ticket) == "default"


@pytest.mark.django_db
def test_a_read_inside_a_transaction_on_default_stays_on_default(with_replica):
    # pytest-django's test transaction is itself an atomic block on default.
    assert connection.in_atomic_block
    with replica_reads(), transaction.atomic():
        assert router.db_for_read(Article) is None
        assert read_alias() == "default"


def test_migrations_run_on_default_only_and_relations_cross_databases(with_replica):
    assert router.allow_migrate("default", "knowledge") is True
    assert router.allow_migrate(REPLICA, "knowledge") is False
    assert router.allow_relation(Article(), SearchLog()) is True


# ---- one real run ---------------------------------------------------------------------

READER = "helpdesk_replica_reader"

# Runs in a child process whose settings have DATABASE_REPLICA_URL: requests through
# Django's test client, each query counted on the database that ran it.
CHILD = r"""
import json, django
django.setup()
from django.db import connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.contrib.auth import get_user_model
import integrations.embeddings as embeddings
from config.db_router import replica_reads
from knowledge.models import Article, SearchLog

class FixedEmbeddings:  # the semantic half of search runs too, without loading a model
    def embed_query(self, text):
        return [0.05] * 384

embeddings.get_provider = lambda *a, **k: FixedEmbeddings()

def counted(call):
    with CaptureQueriesContext(connections["default"]) as on_default, \
            CaptureQueriesContext(connections["replica"]) as on_replica:
        response = call()
    return response, len(on_default), len(on_replica)

out = {"replica_user": connections["replica"].settings_dict["USER"]}
client = Client()
client.force_login(get_user_model().objects.get(username="replica-manager"))
for name, url in [("dashboard", "/dashboards/"), ("analytics_api", "/api/analytics/overview/")]:
    response, default_queries, replica_queries = counted(lambda: client.get(url))
    out[name] = {"status": response.status_code, "default": default_queries,
                 "replica": replica_queries}
logs_before = SearchLog.objects.count()
response, default_queries, replica_queries = counted(
    lambda: client.get("/api/search/", {"q": "streaming replica"}))
titles = [result["article"]["title"] for result in response.json()]
out["search"] = {"status": response.status_code, "default": default_queries,
                 "replica": replica_queries, "titles": titles,
                 "logged": SearchLog.objects.count() - logs_before}
_, default_queries, replica_queries = counted(lambda: client.get("/help/search/?q=replica"))
out["portal_search"] = {"default": default_queries, "replica": replica_queries}
with replica_reads(), transaction.atomic():
    _, default_queries, replica_queries = counted(lambda: Article.objects.count())
out["inside_atomic"] = {"default": default_queries, "replica": replica_queries}
try:
    SearchLog.objects.using("replica").create(query="forced onto the replica")
    out["write_on_replica"] = "written"
except Exception as error:
    out["write_on_replica"] = str(error).splitlines()[0]
print("RESULT " + json.dumps(out))
"""


def _reader_url() -> str:
    """The test database's URL, signed in as the read-only role."""
    parts = urlsplit(database_url())
    query = parse_qs(parts.query)
    return socket_database_url(READER, query["host"][0], query["port"][0], parts.path.lstrip("/"))


@pytest.fixture
def read_only_role(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN
                    CREATE ROLE {READER} LOGIN;
                  END IF;
                END $$;"""
        )
        cursor.execute(f"ALTER ROLE {READER} SET default_transaction_read_only = on")
        cursor.execute(f"GRANT pg_read_all_data TO {READER}")
    return _reader_url()


@pytest.mark.slow
def test_dashboards_analytics_and_search_read_from_the_replica_and_write_to_default(
    read_only_role,
):
    ManagerFactory(username="replica-manager")
    kb_services.article_create(
        title="Streaming replica lag",
        body="Dashboards may trail the primary by a moment.",
        category=Category.objects.create(name="Operations", slug="operations"),
        publish=True,
    )

    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=BASE_DIR,
        env=subprocess_env(DATABASE_REPLICA_URL=read_only_role),
        capture_output=True,
        text=True,
        timeout=120,
    )

    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["replica_user"] == READER
    # The pages work, and their figures come from the replica.
    for name in ("dashboard", "analytics_api", "search"):
        assert out[name]["status"] == 200, out
        assert out[name]["replica"] > 0, out
    assert out["portal_search"]["replica"] > 0, out
    # The search found the article on the replica, and its log row was written (on
    # default: the read-only role could not have written it).
    assert out["search"]["titles"] == ["Streaming replica lag"]
    assert out["search"]["logged"] == 1
    # Inside a transaction on default, reads stay there.
    assert out["inside_atomic"] == {"default": 1, "replica": 0}
    # A write that did reach the replica would fail: it is read-only.
    assert "read-only transaction" in out["write_on_replica"]
