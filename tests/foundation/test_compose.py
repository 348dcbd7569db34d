"""docker-compose.yml runs the same stack for Docker users."""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import BASE_DIR


def _compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def _one_machine(services: dict) -> dict:
    """What ``docker compose up`` starts: the services outside any profile."""
    return {name: spec for name, spec in services.items() if not spec.get("profiles")}


def _scale_env() -> dict[str, str]:
    lines = (BASE_DIR / "deploy" / "scale.env").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}`` with ``variables`` (``$$`` stays a literal ``$``)."""
    return re.sub(
        r"(?<!\$)\$\{(\w+):-([^}]*)\}",
        lambda m: variables.get(m.group(1)) or m.group(2),
        value,
    )


def test_compose_runs_the_whole_stack_with_healthchecks():
    services = _one_machine(_compose()["services"])

    assert set(services) == {"db", "redis", "web", "worker", "beat"}
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    for name in ("db", "redis", "web"):
        assert "test" in services[name]["healthcheck"], name
    for name in ("web", "worker", "beat"):
        env = {k: _interpolate(str(v), {}) for k, v in services[name]["environment"].items()}
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis:")
        # One machine: no PgBouncer, replica, Sentinel or split queues.
        assert env["HELPDESK_CELERY_QUEUES"] == "single"
        assert env["DATABASE_PGBOUNCER"] == "false"
        assert env["DATABASE_REPLICA_URL"] == env["REDIS_SENTINELS"] == ""
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    # The one worker consumes every queue.
    assert _interpolate(services["worker"]["command"], {}).endswith("-Q celery,ai,email")
    assert "pgdata" in _compose()["volumes"]


def test_the_scale_profile_splits_web_workers_and_data_stores():
    services = _compose()["services"]
    variables = _scale_env()

    def command(name: str) -> str:
        return _interpolate(services[name]["command"], variables)

    def env(name: str) -> dict[str, str]:
        return {
            k: _interpolate(str(v), variables) for k, v in services[name]["environment"].items()
        }

    webs = [n for n, s in services.items() if "uvicorn" in str(s.get("command", ""))]
    assert len(webs) >= 2
    beats = [n for n, s in services.items() if "celery -A config beat" in str(s.get("command"))]
    assert beats == ["beat"]  # exactly one beat, whatever the profile
    workers = {
        n: re.search(r"-Q (\S+)", command(n)).group(1).split(",")
        for n, s in services.items()
        if "celery -A config worker" in str(s.get("command"))
    }
    assert workers == {"worker": ["celery"], "worker-ai": ["ai"], "worker-email": ["email"]}

    for name in [*webs, *workers, "beat"]:
        assert env(name)["HELPDESK_CELERY_QUEUES"] == "split", name
        assert env(name)["REDIS_SENTINELS"].count("sentinel-") == 3, name
    for name in webs:
        assert env(name)["DATABASE_URL"].endswith("@pgbouncer:6432/helpdesk")
        assert env(name)["DATABASE_PGBOUNCER"] == "true"
        assert "@pgbouncer:6432/helpdesk_replica" in env(name)["DATABASE_REPLICA_URL"]
    for name in [*workers, "beat"]:  # session advisory locks: PgBouncer's session pool
        assert env(name)["DATABASE_URL"].endswith("@pgbouncer:6432/helpdesk_session"), name
    # Migrations go straight to PostgreSQL, not through transaction pooling.
    assert variables["MIGRATE_DATABASE_URL"].endswith("@db:5432/helpdesk")

    ini = (BASE_DIR / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", ini, re.M)
    assert re.search(r"^helpdesk_session = .*pool_mode=session", ini, re.M)
    assert re.search(r"^helpdesk_replica = host=db-replica ", ini, re.M)
    assert "replica-entrypoint.sh" in str(services["db-replica"]["entrypoint"])
    assert services["db-replica"]["image"] == services["db"]["image"]
    sentinels = [n for n, s in services.items() if "sentinel.sh" in str(s.get("command"))]
    assert len(sentinels) == 3
    for name in [
        "web-2",
        "lb",
        "worker-ai",
        "worker-email",
        "pgbouncer",
        "db-replica",
        "redis-replica",
        *sentinels,
    ]:
        assert services[name]["profiles"] == ["scale"], name


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
@pytest.mark.parametrize(
    "options",
    [[], ["--env-file", "deploy/scale.env", "--profile", "scale"]],
    ids=["one-machine", "scale"],
)
def test_docker_compose_config_parses(options):
    result = subprocess.run(
        ["docker-compose", *options, "config", "-q"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
