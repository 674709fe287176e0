"""What a local farm left on disk, read by every command: ``.mpforge/farm/`` of a checkout.

The folder (git-ignored with the rest of ``.mpforge/``) holds:

- ``plan.json``: what ``invoke farm --start`` asked for (the board command, how many,
  the tags), written before the supervisor starts;
- ``supervisor.lock``: held (``flock``) by the farm's supervisor for as long as it runs,
  its pid inside. Whether a farm runs is whether that lock is held: no pid is taken on
  trust (a pid may have been reused since), no process table is read;
- ``farm.json``: the farm once it is up (:class:`FarmState`), rewritten by the
  supervisor whenever one of its programs ends;
- ``error.json``: why it would not start (the supervisor's :class:`FarmError`);
- the logs: ``supervisor.log`` (with the power service's lines), ``boardN.log``,
  ``coordinator.log``, ``exporter.log``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from mpforge.core.errors import FarmError

#: the farm's state, under the checkout
STATE_DIR = Path(".mpforge") / "farm"
STATE_FILE = "farm.json"
PLAN_FILE = "plan.json"
ERROR_FILE = "error.json"
LOCK_FILE = "supervisor.lock"
EXPORTER_NAME = "mpforge-farm"
PLACE_PREFIX = "pyb-"
DEFAULT_TAGS = {"board": "PYBV10_QEMU"}
HOST = "127.0.0.1"
#: what QEMU needs besides the port's emulator command: started stopped, a QMP socket
QEMU_EXTRA = " -S -qmp unix:{qmp},server=on,wait=off"


@dataclass
class FarmProcess:
    """A program the farm's supervisor runs, as it last saw it."""

    role: str
    pid: int
    log: str
    running: bool = True


@dataclass
class FarmBoard:
    index: int
    place: str
    pty: str
    qmp: str | None  # the QMP socket (None: the board has no power switch)


@dataclass
class FarmState:
    """What ``farm.json`` holds."""

    coordinator: str  # HOST:PORT
    exporter: str
    power_url: str | None  # the power service's base URL
    tags: dict[str, str]
    boards: list[FarmBoard]
    processes: list[FarmProcess]
    supervisor: int = 0  # its pid
    started: float = field(default_factory=time.time)

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["boards"] = [asdict(b) for b in self.boards]
        data["processes"] = [asdict(p) for p in self.processes]
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FarmState:
        data = json.loads(text)
        data["boards"] = [FarmBoard(**b) for b in data["boards"]]
        data["processes"] = [FarmProcess(**p) for p in data["processes"]]
        return cls(**data)


@dataclass
class FarmStatus:
    """``invoke farm --status``: the processes, and the places as the coordinator sees them."""

    state: FarmState
    alive: dict[str, bool]  # role -> running
    holders: dict[str, str | None]  # place -> host/user holding it
    powered: dict[str, bool | None]  # place -> running (None: no power switch, or unknown)

    @property
    def healthy(self) -> bool:
        return all(self.alive.values())


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def write_json(path: Path, text: str) -> None:
    """``path`` replaced whole (a reader never sees half of it)."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temp.write_text(text)
    os.replace(temp, path)


def load_state(root: Path) -> FarmState | None:
    """The farm recorded for the checkout at ``root`` (None: none)."""
    path = state_dir(root) / STATE_FILE
    try:
        return FarmState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise FarmError(f"{path} is unreadable ({exc})", f"remove {STATE_DIR}/ once no farm runs") from None


def supervisor_pid(folder: Path) -> int | None:
    """The pid of the supervisor running the farm in ``folder`` (its lock is held; 0 while
    it has not written its pid yet), or None: none runs there."""
    try:
        handle = open(folder / LOCK_FILE)
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            try:
                return int(handle.read().strip() or 0)
            except ValueError:
                return 0  # held, its pid not written yet
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def running_coordinator(root: Path) -> str | None:
    """The coordinator address of this checkout's farm, if its coordinator runs."""
    try:
        state = load_state(root)
    except FarmError:
        return None
    if state is None or supervisor_pid(state_dir(root)) is None:
        return None
    coordinator = next((p for p in state.processes if p.role == "coordinator"), None)
    return state.coordinator if coordinator and coordinator.running else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def tail(path: str | Path, chars: int = 600) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""
