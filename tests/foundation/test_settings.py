"""Production safety and migrations, checked in fresh processes with production env vars."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR, subprocess_env

STRONG_KEY = "k3y-" + "x9Q2mZ7pL4vR8sT1wY6bN3cF5hJ0dG" * 2


def production_env(**overrides: str) -> dict[str, str]:
    env = subprocess_env(
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="helpdesk.example.com",
        CSRF_TRUSTED_ORIGINS="https://helpdesk.example.com",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )
    env.pop("PYTEST_VERSION", None)  # a real production process, not a test
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_check_deploy_passes_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=production_env())

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The one finding left is HSTS preload, which stays an explicit opt-in
    # (SECURE_HSTS_PRELOAD=true): leaving the browsers' preload list takes months.
    assert re.findall(r"\((\w+\.\w\d+)\)", output) in ([], ["security.W021"]), output


@pytest.mark.django_db
def test_production_settings_turn_on_secure_cookies_hsts_and_proxy_header():
    script = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        " s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.DEBUG)"
    )
    result = manage("shell", "-c", script, env=production_env())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') False"
    )


@pytest.mark.parametrize("secret", [None, "", "django-insecure-abc"])
@pytest.mark.django_db
def test_production_refuses_to_start_without_a_real_secret_key(secret):
    result = manage("check", env=production_env(SECRET_KEY=secret))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_production_refuses_to_start_without_allowed_hosts():
    result = manage("check", env=production_env(ALLOWED_HOSTS=None))

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


@pytest.mark.parametrize("unset", [["DATABASE_URL"], ["REDIS_URL"], ["DATABASE_URL", "REDIS_URL"]])
def test_production_refuses_to_start_without_its_servers(unset, tmp_path):
    services = tmp_path / "services"
    env = production_env(HELPDESK_SERVICES_DIR=str(services), **dict.fromkeys(unset))

    result = manage("check", env=env)

    assert result.returncode != 0
    assert f"{' and '.join(unset)} must be set when DEBUG is off" in result.stderr
    assert "HELPDESK_EMBEDDED_SERVICES=true" in result.stderr  # the way out, for a trial
    assert not services.exists()  # no embedded server was started on the side


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="this session uses external servers"
)
def test_a_production_trial_may_ask_for_the_embedded_servers(settings):
    from config.embedded import default_services_dir

    env = production_env(
        DATABASE_URL=None,
        REDIS_URL=None,
        HELPDESK_EMBEDDED_SERVICES="true",
        HELPDESK_SERVICES_DIR=str(default_services_dir()),  # this session's, already running
    )

    result = manage(
        "shell", "-c", "from django.conf import settings; print(settings.REDIS_URL)", env=env
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == settings.REDIS_URL


@pytest.mark.django_db
def test_unknown_llm_provider_is_refused_with_a_clear_message():
    result = manage("check", env=production_env(HELPDESK_LLM_PROVIDER="gpt-from-the-moon"))

    assert result.returncode != 0
    assert "use local, anthropic or openai" in result.stderr


@pytest.mark.django_db
def test_models_and_migrations_agree():
    result = manage("makemigrations", "--check", "--dry-run", env=subprocess_env())

    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_come_from_the_environment_in_this_process(settings):
    from django.db import connections
    from django.db.backends.postgresql import base as postgresql

    # Django's PostgreSQL backend, with a pool that recovers at once after a restart.
    assert settings.DATABASES["default"]["ENGINE"] == "config.postgres"
    assert isinstance(connections["default"], postgresql.DatabaseWrapper)
    assert settings.CACHES["default"]["BACKEND"] == "config.cache.FailOpenRedisCache"
    assert settings.REDIS_URL.startswith("redis://")
    assert os.environ.get("PYTEST_VERSION")  # tests use their own services folder
