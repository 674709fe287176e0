"""``invoke farm``'s three actions on this checkout's farm: start, stop, status.

:func:`start` writes the plan and starts the farm's supervisor
(:mod:`mpforge.device.farm.supervisor`) through the executor, then waits for it to say
that the farm is up or why not; :func:`stop` asks the supervisor to stop it (SIGTERM to
the pid its lock names, only while that lock is held) and waits until it has;
:func:`status` reads what the supervisor wrote and asks the coordinator who holds which
place.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mpforge.core.errors import FarmError
from mpforge.core.executor import Executor
from mpforge.device.coordinator import Session
from mpforge.device.farm import lab
from mpforge.device.farm.power import qmp_running
from mpforge.device.farm.state import (
    DEFAULT_TAGS,
    ERROR_FILE,
    PLAN_FILE,
    STATE_FILE,
    FarmState,
    FarmStatus,
    load_state,
    state_dir,
    supervisor_pid,
    tail,
)

Note = Callable[[str], None]
#: how long the supervisor may take to bring a farm up (each of its steps has 20 s)
UP_TIMEOUT = 90.0
#: how long it may take to stop one (5 s a program at most, and the power service)
DOWN_TIMEOUT = 60.0


def start(root: Path, command: str, count: int, *, tags: dict[str, str] | None = None,
          note: Note | None = None, executor: Executor | None = None) -> FarmState:
    """Start a farm of ``count`` boards running ``command`` (see
    :mod:`mpforge.device.farm.supervisor`); on any failure, everything started so far is
    stopped again before the :class:`FarmError`."""
    note = note or (lambda line: None)
    if count < 1:
        raise FarmError(f"a farm needs at least one board, not {count}", "--boards N, N >= 1")
    lab.require_labgrid()
    lab.ser2net_path()
    folder = state_dir(root)
    if supervisor_pid(folder) is not None:
        existing = load_state(root)
        raise FarmError(f"a farm already runs here (coordinator {existing.coordinator if existing else '?'})",
                        "`invoke farm --stop` first, or use it")
    if (folder / STATE_FILE).exists():
        note("a stopped farm's state was left behind: starting afresh")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / PLAN_FILE).write_text(json.dumps({"command": command, "count": count,
                                                "tags": dict(DEFAULT_TAGS if tags is None else tags)}) + "\n")
    log_file = folder / "supervisor.log"
    supervisor = (executor or Executor()).start([sys.executable, "-m", "mpforge.device.farm.supervisor", str(folder)],
                                                cwd=root, log_file=log_file, stdout="log", what="farm supervisor",
                                                outlive=True)  # the farm runs on after this command
    try:
        deadline = time.monotonic() + UP_TIMEOUT
        while True:
            if (folder / ERROR_FILE).exists():
                supervisor.wait(DOWN_TIMEOUT)  # it stops what it started, then exits
                error = json.loads((folder / ERROR_FILE).read_text())
                raise FarmError(error["message"], error["hint"], error["details"])
            state = load_state(root)
            if state is not None:
                return state
            if supervisor.poll() is not None:
                raise FarmError(f"farm: the supervisor exited while starting (status {supervisor.returncode})",
                                f"see {log_file}", tail(log_file))
            if time.monotonic() > deadline:
                raise FarmError(f"farm: not up within {UP_TIMEOUT:g} s", f"see the logs in {folder}")
            time.sleep(0.05)
    except BaseException:
        supervisor.stop(DOWN_TIMEOUT)
        raise


def stop(root: Path, note: Note | None = None) -> list[str]:
    """Stop this checkout's farm; the logs stay. Returns the roles that were running."""
    note = note or (lambda line: None)
    folder = state_dir(root)
    state = load_state(root)
    pid = supervisor_pid(folder)
    stopped = [p.role for p in state.processes if p.running] if state and pid is not None else []
    if pid:
        os.kill(pid, signal.SIGTERM)  # the supervisor stops its programs (see its docstring)
        deadline = time.monotonic() + DOWN_TIMEOUT
        while supervisor_pid(folder) is not None:
            if time.monotonic() > deadline:
                raise FarmError(f"farm: its supervisor (pid {pid}) did not stop within {DOWN_TIMEOUT:g} s",
                                f"see {folder / 'supervisor.log'}")
            time.sleep(0.05)
    if state is None:
        return []
    (folder / STATE_FILE).unlink(missing_ok=True)
    for board in state.boards:
        if board.qmp:
            Path(board.qmp).unlink(missing_ok=True)
    return stopped


def status(root: Path) -> FarmStatus | None:
    """The farm of this checkout: its programs and places (None: no farm)."""
    state = load_state(root)
    if state is None:
        return None
    up = supervisor_pid(state_dir(root)) is not None
    alive = {p.role: up and p.running for p in state.processes}
    holders: dict[str, str | None] = {b.place: None for b in state.boards}
    if alive.get("coordinator"):
        with Session(state.coordinator) as coordinator:
            for name, place in coordinator.places().items():
                holders[name] = place.acquired
    powered = {b.place: (qmp_running(b.qmp) if b.qmp else None) for b in state.boards}
    return FarmStatus(state, alive, holders, powered)

