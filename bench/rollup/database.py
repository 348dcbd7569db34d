"""The bench servers (embedded PostgreSQL + Valkey of ``.data/bench``) and the
benchmark's own database on them: everything before Django is set up."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from config import embedded  # needs no settings

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATABASE = "analytics_bench"
FACTS_FILE = "analytics_rollup.json"


def services_dir() -> Path:
    configured = os.environ.get("HELPDESK_SERVICES_DIR")
    root = Path(configured).resolve() if configured else BASE_DIR / ".data" / "bench"
    if root.name in {"dev", "test"} and root.parent == BASE_DIR / ".data":
        sys.exit(f"refusing to load a benchmark into {root}: use .data/bench")
    return root


def _admin_conninfo(pg) -> str:
    return f"host={pg.socket_dir} port={pg.port} user={pg.user} dbname=postgres"


def database_exists(pg) -> bool:
    import psycopg

    with psycopg.connect(_admin_conninfo(pg), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()


def recreate_database(pg) -> None:
    import psycopg

    with psycopg.connect(_admin_conninfo(pg), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def configure_environment(root: Path) -> tuple:
    """Point Django at the bench servers' own database and Valkey, whatever the shell
    or a developer's .env says: nothing here may touch the dev or test data."""
    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        sys.exit("unset DATABASE_URL and REDIS_URL: this benchmark uses its own servers")
    pg = embedded.ensure_postgres(root)
    redis = embedded.ensure_redis(root)
    os.environ["HELPDESK_SERVICES_DIR"] = str(root)
    os.environ["HELPDESK_ENV_FILE"] = ""
    os.environ["DATABASE_URL"] = embedded.socket_database_url(
        pg.user, pg.socket_dir, pg.port, DATABASE
    )
    os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("DEBUG", "true")  # settings refuse DEBUG off without a real key
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return pg, redis
