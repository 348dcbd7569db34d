"""The embedded services: idempotent start, separate folders never collide, clean stop."""

import psycopg
import pytest
import redis

from config import embedded


@pytest.fixture
def services_dir(tmp_path):
    root = tmp_path / "services"
    yield root
    embedded.stop(root)


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
    assert embedded.default_services_dir().name == "test"
