"""docker-compose.yml runs the same stack for Docker users."""

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import BASE_DIR


def _compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_compose_runs_the_whole_stack_with_healthchecks():
    services = _compose()["services"]

    assert set(services) == {"db", "redis", "web", "worker", "beat"}
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    for name in ("db", "redis", "web"):
        assert "test" in services[name]["healthcheck"], name
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis:")
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert "pgdata" in _compose()["volumes"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_parses():
    result = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
