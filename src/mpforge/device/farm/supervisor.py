"""The farm's supervisor: the one process that starts, watches and stops the farm's programs.

``invoke farm --start`` starts it (``python -m mpforge.device.farm.supervisor STATE``,
:func:`mpforge.device.farm.control.start`) and waits until it says the farm is up
(``farm.json``) or why not (``error.json``). It outlives that command and runs, in order:

1. the boards (the board command N times: QEMU started stopped, ``-S``, with a QMP socket
   each; any program that announces its pty as QEMU does, "char device redirected to
   /dev/pts/N"), then waits for each pty and QMP socket;
2. a labgrid coordinator, from a fresh folder (it reloads ``places.yaml`` from its
   working folder, so an old one would bring back old places);
3. the power service (:mod:`.power`), in this process: its HTTP switch, and once the
   places exist, following them;
4. a labgrid exporter (:func:`.lab.exporter_config`, its ``ser2net`` the farm's wrapper),
   then the places (:func:`.lab.register_places`).

Every program is started through :meth:`mpforge.core.executor.Executor.start` and stopped
through its :class:`~mpforge.core.executor.Running` handle (SIGTERM, 5 s, SIGKILL),
exporter first (its ser2net go with it), boards last. SIGTERM or Ctrl-C to the supervisor
stops the farm so: this module's :func:`main` is the process's entry point and the one
place its signals are handled. While it runs it holds ``supervisor.lock``
(:func:`.state.supervisor_pid`), and it rewrites ``farm.json`` when a program ends.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpforge.core.errors import FarmError, MpforgeError
from mpforge.core.executor import Executor, Running
from mpforge.device.coordinator import Session
from mpforge.device.farm import lab
from mpforge.device.farm.power import PowerService
from mpforge.device.farm.state import (
    ERROR_FILE,
    EXPORTER_NAME,
    HOST,
    LOCK_FILE,
    PLACE_PREFIX,
    PLAN_FILE,
    STATE_FILE,
    FarmBoard,
    FarmProcess,
    FarmState,
    free_port,
    listening,
    tail,
    write_json,
)

START_TIMEOUT = 20.0
#: how often the supervisor looks at its programs
WATCH = 0.25

log = logging.getLogger("mpforge.farm")


class Stopping(FarmError):
    """SIGTERM or Ctrl-C came while the farm was starting."""


class Supervisor:
    """The programs of one farm (see the module docstring)."""

    def __init__(self, folder: Path, stopping: threading.Event, executor: Executor | None = None) -> None:
        self.folder = folder
        self.stopping = stopping
        self.executor = executor or Executor(log=lambda line: log.info("%s", line))
        self.running: dict[str, Running] = {}
        self.logs: dict[str, Path] = {}
        self.power: PowerService | None = None

    # --- starting -------------------------------------------------------------------------

    def spawn(self, role: str, argv: list[str], log_name: str, **options: Any) -> Running:
        path = self.folder / log_name
        self.logs[role] = path
        self.running[role] = self.executor.start(argv, log_file=path, stdout="log", what=role,
                                                 hint="install it (`invoke doctor` lists the host tools)", **options)
        return self.running[role]

    def wait_for(self, what: str, ready: Callable[[], Any], role: str | None,
                 timeout: float = START_TIMEOUT) -> Any:
        """Poll ``ready`` until it gives something; a :class:`FarmError` with the log's tail
        when ``role``'s program ends first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        log_file = str(self.logs[role]) if role else ""
        while True:
            result = ready()
            if result:
                return result
            if self.stopping.is_set():
                raise Stopping("farm: stopped while starting")
            if role is not None and self.running[role].poll() is not None:
                raise FarmError(f"farm: {what} exited while starting", f"see {log_file}", tail(log_file))
            if time.monotonic() > deadline:
                raise FarmError(f"farm: {what} not ready within {timeout:g} s",
                                f"see {log_file}" if role else "", tail(log_file) if role else "")
            time.sleep(0.05)

    def start(self, command: str, count: int, tags: dict[str, str]) -> FarmState:
        """Start the farm; the caller stops what was started if this raises."""
        state = FarmState(f"{HOST}:{free_port()}", EXPORTER_NAME, None, tags, [], [], os.getpid())
        state.boards = self.start_boards(command, count)
        port = int(state.coordinator.rpartition(":")[2])
        (self.folder / "coordinator").mkdir(exist_ok=True)
        self.spawn("coordinator", [sys.executable, "-m", "labgrid.remote.coordinator", "-l", state.coordinator],
                   "coordinator.log", cwd=self.folder / "coordinator")
        self.wait_for("the labgrid coordinator", lambda: listening(port), "coordinator")
        if any(b.qmp for b in state.boards):
            power_port = free_port()
            state.power_url = f"http://{HOST}:{power_port}"
            self.power = PowerService(state, power_port).__enter__()
        config = self.folder / "exporter.yaml"
        config.write_text(lab.exporter_config(state.boards, state.power_url))
        wrapped = lab.ser2net_wrapper(self.folder)
        self.spawn("exporter", [sys.executable, "-m", "labgrid.remote.exporter", "-c", state.coordinator,
                                "-n", EXPORTER_NAME, "--hostname", HOST, str(config)], "exporter.log",
                   env={"PATH": f"{wrapped}{os.pathsep}{os.environ.get('PATH', '')}"})
        with Session(state.coordinator) as session:
            self.wait_for("the labgrid exporter", functools.partial(lab.exported, session, state), "exporter")
            lab.register_places(session, state)
        if self.power is not None:
            self.power.follow()  # its session is this process's only one from now on
        state.processes = self.processes()
        write_json(self.folder / STATE_FILE, state.to_json())
        return state

    def start_boards(self, command: str, count: int) -> list[FarmBoard]:
        """Start every board, then wait for each to announce its pty."""
        qmps: dict[int, str | None] = {}
        for index in range(1, count + 1):
            qmp = str(self.folder / f"board{index}.qmp") if "{qmp}" in command else None
            qmps[index] = qmp
            argv = shlex.split(command.replace("{qmp}", qmp or "").replace("{index}", str(index)))
            self.spawn(f"board {index}", argv, f"board{index}.log")
        boards = []
        for index, qmp in qmps.items():
            role = f"board {index}"
            pty = self.wait_for(role, functools.partial(announced_pty, self.logs[role]), role)
            if qmp:
                self.wait_for(f"board {index}'s QMP socket", functools.partial(os.path.exists, qmp), role)
            boards.append(FarmBoard(index, f"{PLACE_PREFIX}{index}", pty, qmp))
        return boards

    # --- running and stopping ---------------------------------------------------------------

    def processes(self) -> list[FarmProcess]:
        """The programs as they are now (the power service: this process, while it serves)."""
        found = [FarmProcess(role, running.pid or 0, str(self.logs[role]), running.poll() is None)
                 for role, running in self.running.items()]
        if self.power is not None:
            found.append(FarmProcess("power", os.getpid(), str(self.folder / "supervisor.log"), self.power.running))
        return found

    def watch(self, state: FarmState) -> None:
        """Until SIGTERM: note in ``farm.json`` (and the log) a program that ends."""
        seen = [p.running for p in state.processes]
        while not self.stopping.wait(WATCH):
            state.processes = self.processes()
            now = [p.running for p in state.processes]
            if now != seen:
                for process in state.processes:
                    if not process.running:
                        log.warning("%s is not running (see %s)", process.role, process.log)
                write_json(self.folder / STATE_FILE, state.to_json())
                seen = now

    def stop(self) -> list[str]:
        """Stop everything started, in order: the exporter (its ser2net go with it), the
        power service, the coordinator, the boards; the roles that were still running."""
        stopped = []
        for role in ["exporter", "power", "coordinator", *[r for r in self.running if r.startswith("board")]]:
            if role == "power":
                if self.power is not None:
                    stopped.append(role)
                    self.power.__exit__(None, None, None)
                    self.power = None
            elif role in self.running:
                if self.running[role].poll() is None:
                    stopped.append(role)
                self.running[role].stop()
        return stopped


def announced_pty(log_file: Path) -> str | None:
    match = re.search(r"(/dev/pts/\d+)", tail(log_file, 4000))
    return match.group(1) if match else None


def main(argv: list[str]) -> int:
    """``python -m mpforge.device.farm.supervisor STATE_DIR``: run the farm ``plan.json``
    there describes until SIGTERM or Ctrl-C (see the module docstring)."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m mpforge.device.farm.supervisor STATE_DIR\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    folder = Path(argv[0])
    lock = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.stderr.write(f"a farm's supervisor already runs in {folder}\n")
        return 1
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plan = json.loads((folder / PLAN_FILE).read_text())
    supervisor = Supervisor(folder, stopping)
    try:
        state = supervisor.start(plan["command"], int(plan["count"]), dict(plan["tags"]))
    except BaseException as exc:
        error = exc if isinstance(exc, MpforgeError) else FarmError(f"farm: the supervisor failed: {exc!r}",
                                                                   f"see {folder / 'supervisor.log'}")
        write_json(folder / ERROR_FILE, json.dumps({"message": error.message, "hint": error.hint,
                                                     "details": error.details}) + "\n")
        log.error("%s", error.one_line())
        supervisor.stop()
        if not isinstance(exc, Exception):
            raise
        return 1
    log.info("farm up: coordinator %s, places %s", state.coordinator, ", ".join(b.place for b in state.boards))
    try:
        supervisor.watch(state)
    finally:
        log.info("stopping: %s", ", ".join(supervisor.stop()) or "nothing ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
