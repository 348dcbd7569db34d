"""The embedded services: idempotent start, separate folders never collide, clean stop,
and a restart (after a stop or a crash) keeps the data and the address."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from config import embedded


@pytest.fixture
def services_dir():
    """A fresh folder outside pytest's tmp root: another pytest session resets that root to
    0700, and the embedded PostgreSQL (its own system user under root) then cannot reach
    its data folder any more."""
    root = Path(tempfile.mkdtemp(prefix="helpdesk-services-"))
    yield root
    embedded.stop(root)
    shutil.rmtree(root, ignore_errors=True)


def _written_to_the_append_only_file(url: str) -> None:
    """Wait until Valkey has fsynced everything written so far (WAITAOF covers this
    connection's write, hence all earlier ones). With ``appendfsync everysec`` a write
    answered while a background fsync is running reaches the file up to 2 s later."""
    client = redis.Redis.from_url(url)
    client.set("helpdesk:aof-barrier", "1")
    assert client.execute_command("WAITAOF", 1, 0, 5000) == [1, 0]
    client.close()


@pytest.mark.slow
def test_start_is_idempotent_and_stop_is_clean(services_dir):
    first_pg = embedded.ensure_postgres(services_dir)
    first_redis = embedded.ensure_redis(services_dir)

    second_pg = embedded.ensure_postgres(services_dir)
    second_redis = embedded.ensure_redis(services_dir)

    assert second_pg.pid == first_pg.pid
    assert (second_redis.pid, second_redis.port) == (first_redis.pid, first_redis.port)
    with psycopg.connect(
        host=first_pg.socket_dir, port=first_pg.port, user="postgres", dbname=first_pg.name
    ) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        assert conn.execute("SELECT '[1,2,3]'::vector <=> '[1,2,3]'::vector").fetchone()[0] == 0
    assert redis.Redis.from_url(first_redis.url).ping()

    assert embedded.stop(services_dir) == {"postgres": True, "redis": True}
    assert embedded.status(services_dir)["postgres_pid"] is None
    assert embedded.status(services_dir)["redis"] is None
    assert embedded.stop(services_dir) == {"postgres": False, "redis": False}


@pytest.mark.slow
def test_two_folders_get_separate_servers(services_dir, tmp_path, settings):
    other = embedded.ensure_redis(services_dir)
    this_session = redis.Redis.from_url(settings.REDIS_URL)
    this_session.set("helpdesk:collision-probe", "test-session")

    assert other.url != settings.REDIS_URL
    assert redis.Redis.from_url(other.url).get("helpdesk:collision-probe") is None
    pg = embedded.ensure_postgres(services_dir)
    assert pg.socket_dir != str(settings.DATABASES["default"]["HOST"])


def test_test_runs_use_their_own_services_folder():
    chosen = os.environ.get("HELPDESK_SERVICES_DIR")
    expected = Path(chosen).resolve() if chosen else embedded.BASE_DIR / ".data" / "test"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # each of a parallel session's processes has its own servers
        expected = expected.with_name(f"{expected.name}-{worker}")
    assert embedded.default_services_dir() == expected
    assert embedded.default_services_dir() != embedded.BASE_DIR / ".data" / "dev"


def test_each_parallel_test_process_gets_its_own_folder_and_children_keep_theirs(monkeypatch):
    monkeypatch.setenv("HELPDESK_SERVICES_DIR", "/srv/helpdesk/test")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert embedded.default_services_dir() == Path("/srv/helpdesk/test-gw1")
    # A server a test starts (no pytest marker) uses the folder it is given.
    monkeypatch.delenv("PYTEST_VERSION")
    assert embedded.default_services_dir() == Path("/srv/helpdesk/test")


@pytest.mark.slow
def test_start_after_stop_brings_back_the_same_addresses_and_the_data(services_dir):
    pg = embedded.ensure_postgres(services_dir)
    valkey = embedded.ensure_redis(services_dir)
    with _connect(pg) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('before the restart')")
    client = redis.Redis.from_url(valkey.url)
    client.set("helpdesk:kept", "before the restart")
    client.rpush("celery", "a queued task")
    client.close()

    assert embedded.stop(services_dir) == {"postgres": True, "redis": True}
    started = subprocess.run(
        [sys.executable, "-m", "config.embedded", "start", "--dir", str(services_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert started.stdout.splitlines() == [f"DATABASE_URL={pg.url}", f"REDIS_URL={valkey.url}"]
    with _connect(pg) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("before the restart",)]
    client = redis.Redis.from_url(valkey.url)
    assert client.get("helpdesk:kept") == b"before the restart"
    assert client.lrange("celery", 0, -1) == [b"a queued task"]
    client.close()


@pytest.mark.slow
def test_a_killed_valkey_comes_back_on_its_port_with_its_data(services_dir):
    first = embedded.ensure_redis(services_dir)
    client = redis.Redis.from_url(first.url)
    client.set("helpdesk:kept", "written before the crash")
    client.close()
    _written_to_the_append_only_file(first.url)

    os.kill(first.pid, signal.SIGKILL)
    os.waitpid(first.pid, 0)  # started by this process: reap it
    assert embedded.status(services_dir)["redis"] is None
    again = embedded.ensure_redis(services_dir)

    assert (again.url, again.pid != first.pid) == (first.url, True)
    client = redis.Redis.from_url(again.url)
    assert client.get("helpdesk:kept") == b"written before the crash"
    client.close()


@pytest.mark.slow
def test_when_its_port_is_taken_valkey_moves_and_says_so(services_dir, capsys):
    first = embedded.ensure_redis(services_dir)
    redis.Redis.from_url(first.url).set("helpdesk:kept", "yes")
    embedded.stop(services_dir)

    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        squatter.bind((first.host, first.port))
        squatter.listen()
        moved = embedded.ensure_redis(services_dir)
    warning = capsys.readouterr().err

    assert moved.port != first.port
    assert f"port {first.port} is taken by another program" in warning
    assert f"starting on port {moved.port} instead" in warning
    assert redis.Redis.from_url(moved.url).get("helpdesk:kept") == b"yes"
    embedded.stop(services_dir)
    assert embedded.ensure_redis(services_dir).port == moved.port  # the new port is kept


@pytest.mark.slow
def test_a_celery_message_waiting_for_a_worker_survives_a_valkey_crash(services_dir):
    from kombu import Connection, Queue

    from config.celery import ping

    first = embedded.ensure_redis(services_dir)
    with Connection(first.url) as conn:
        sent = ping.apply_async(args=["still here"], queue="no-consumer-yet", connection=conn)
    _written_to_the_append_only_file(first.url)

    os.kill(first.pid, signal.SIGKILL)
    os.waitpid(first.pid, 0)
    again = embedded.ensure_redis(services_dir)

    with Connection(again.url) as conn:
        message = Queue("no-consumer-yet", channel=conn.default_channel).get(accept=["json"])
        assert message is not None
        message.ack()
    assert (message.headers["task"], message.headers["id"]) == ("helpdesk.ping", sent.id)
    assert message.payload[0] == ["still here"]


def _connect(pg):
    return psycopg.connect(
        host=pg.socket_dir, port=pg.port, user="postgres", dbname=pg.name, autocommit=True
    )
