"""A small process supervisor for the development stack (used by ``config.devstack``).

- Each program runs as a child process in its own session (its own process group), so the
  Ctrl-C typed in the terminal reaches only the supervisor, which then stops the children.
- Output is printed line by line with a ``HH:MM:SS name | `` prefix, as honcho and foreman
  print it (coloured per program when the output is a terminal and ``NO_COLOR`` is unset).
- A child that exits while the supervisor runs is restarted after a delay that starts at
  ``initial_delay`` (1 s) and doubles up to ``max_delay`` (30 s) while it keeps crashing;
  the delay starts again from ``initial_delay`` once a run lasted ``stable_after`` (60 s).
  What is left of the dead child's process group (Celery pool processes or uvicorn
  workers orphaned by a killed parent, still holding the port) is ended before the restart.
- :meth:`Supervisor.stop` (and SIGINT, SIGTERM, SIGHUP while :meth:`Supervisor.run` runs in
  the main thread) sends SIGTERM to every child's process group, waits ``grace`` seconds,
  then sends SIGKILL to whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

COLOURS = (36, 33, 32, 35, 34, 31)  # cyan, yellow, green, magenta, blue, red


@dataclass
class Program:
    """One supervised command and the state of its current child process."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay: float = 0.0  # the backoff used for the last restart (0 before any crash)
    restart_at: float | None = None
    leftover_group: int | None = None  # process group of a dead child, if any remains
    leftover_deadline: float = 0.0
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None


def describe_exit(returncode: int) -> str:
    """``-9 (SIGKILL)`` for a signal, ``3`` for an exit code."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"{returncode} ({signal.Signals(-returncode).name})"
    return str(returncode)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Run programs, restart the ones that die, stop them all on request."""

    def __init__(
        self,
        *,
        output: TextIO | None = None,
        initial_delay: float = 1.0,
        max_delay: float = 30.0,
        stable_after: float = 60.0,
        grace: float = 10.0,
        tick: float = 0.1,
        colour: bool | None = None,
    ) -> None:
        self.output = output or sys.stdout
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.grace = grace
        self.tick = tick
        if colour is None:
            isatty = getattr(self.output, "isatty", None)
            colour = bool(isatty and isatty()) and "NO_COLOR" not in os.environ
        self.colour = colour
        self.programs: dict[str, Program] = {}
        # A plain flag, not an Event: the signal handler must take no lock.
        self._stop_requested = False
        self._received: str | None = None  # the signal that asked to stop
        self._print_lock = threading.Lock()

    # ---- configuration ---------------------------------------------------------------

    def add(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
    ) -> Program:
        program = Program(
            name,
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd is not None else None,
        )
        self.programs[name] = program
        return program

    # ---- output ----------------------------------------------------------------------

    def log(self, name: str, line: str) -> None:
        width = max([len("system"), *(len(n) for n in self.programs)])
        prefix = f"{time.strftime('%H:%M:%S')} {name.ljust(width)} | "
        if self.colour:
            names = list(self.programs)
            code = COLOURS[names.index(name) % len(COLOURS)] if name in names else 1
            prefix = f"\033[0m\033[{code}m{prefix}\033[0m"
        with self._print_lock:
            self.output.write(prefix + line + "\n")
            self.output.flush()

    def _pump(self, program: Program, stream) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(stream.readline, b""):
                self.log(program.name, raw.decode("utf-8", "replace").rstrip("\r\n"))
        with contextlib.suppress(OSError):
            stream.close()

    # ---- lifecycle -------------------------------------------------------------------

    def _start(self, program: Program) -> None:
        program.restart_at = None
        if program.leftover_group is not None:
            # Orphans of the previous run would keep the port or the queue: end them now.
            _signal_group(program.leftover_group, signal.SIGKILL)
            program.leftover_group = None
        env = dict(program.env if program.env is not None else os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            process = subprocess.Popen(  # noqa: S603 (commands given by the caller)
                program.argv,
                env=env,
                cwd=program.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            self.log("system", f"{program.name} could not start: {error}")
            program.process = None
            self._schedule_restart(program, ran_for=0.0)
            return
        program.process = process
        program.started_at = time.monotonic()
        reader = threading.Thread(target=self._pump, args=(program, process.stdout), daemon=True)
        reader.start()
        program.readers = [r for r in program.readers if r.is_alive()] + [reader]
        self.log("system", f"{program.name} started (pid {process.pid})")

    def _schedule_restart(self, program: Program, *, ran_for: float) -> None:
        if program.delay == 0.0 or ran_for >= self.stable_after:
            program.delay = self.initial_delay
        else:
            program.delay = min(program.delay * 2, self.max_delay)
        program.restart_at = time.monotonic() + program.delay
        program.restarts += 1

    def _check(self, program: Program) -> None:
        now = time.monotonic()
        process = program.process
        if process is not None and process.poll() is not None:
            program.process = None
            ran_for = now - program.started_at
            if _group_alive(process.pid):
                _signal_group(process.pid, signal.SIGTERM)
                program.leftover_group = process.pid
                program.leftover_deadline = now + min(self.grace, 5.0)
            self._schedule_restart(program, ran_for=ran_for)
            self.log(
                "system",
                f"{program.name} exited with {describe_exit(process.returncode)} "
                f"after {ran_for:.1f} s; restarting in {program.delay:g} s",
            )
        if program.leftover_group is not None:
            if not _group_alive(program.leftover_group):
                program.leftover_group = None
            elif now >= program.leftover_deadline:
                _signal_group(program.leftover_group, signal.SIGKILL)
                program.leftover_group = None
        if program.restart_at is not None and now >= program.restart_at:
            self._start(program)

    def stop(self) -> None:
        """Ask :meth:`run` to stop every child and return (from any thread or a signal
        handler); :meth:`run` notices within one tick."""
        self._stop_requested = True

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    def run(self) -> int:
        """Start every program and supervise them until :meth:`stop` or a signal."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            for program in self.programs.values():
                if not self.stopping:
                    self._start(program)
            while not self._stop_requested:
                time.sleep(self.tick)
                for program in self.programs.values():
                    if not self._stop_requested:
                        self._check(program)
            if self._received:
                self.log("system", f"{self._received} received; stopping")
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum, _frame) -> None:
        # No logging here: the main thread may hold the print lock when the signal lands.
        if not self.stopping:
            self._received = signal.Signals(signum).name
        self.stop()

    def _stop_all(self) -> None:
        groups = []
        for program in self.programs.values():
            program.restart_at = None
            if program.process is not None:
                groups.append((program, program.process))
                self.log("system", f"stopping {program.name} (pid {program.process.pid})")
                _signal_group(program.process.pid, signal.SIGTERM)
            if program.leftover_group is not None:
                _signal_group(program.leftover_group, signal.SIGKILL)
                program.leftover_group = None
        deadline = time.monotonic() + self.grace
        for program, process in groups:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log("system", f"{program.name} did not stop in {self.grace:g} s; killing")
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            # Children of the child (pool processes, uvicorn workers) go with it.
            _signal_group(process.pid, signal.SIGKILL)
            program.process = None
        for program in self.programs.values():
            for reader in program.readers:
                reader.join(timeout=2)
        self.log("system", "all processes stopped")
