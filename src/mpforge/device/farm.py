"""``invoke farm``: a local labgrid farm of emulated pyboards, to try the farm and for CI.

``invoke farm start --boards 3`` starts, all on 127.0.0.1 on free ports:

- N boards: QEMU pyboards (``ports/stmhal.toml``'s emulator command, started stopped
  with ``-S`` and a QMP socket each), their UARTs on ptys;
- a labgrid coordinator, run from a fresh folder (it reloads ``places.yaml`` from its
  working folder, so an old one would bring back old places);
- a power service (``python -m mpforge.device.farm power STATE``): an HTTP switch for
  labgrid's ``rest`` power model, ``/board/N/power``, backed by each QEMU's QMP socket:
  off = ``stop`` (the board freezes: 0% CPU), on = ``system_reset`` + ``cont`` (a cold
  boot, banner after ~0.25 s; the process and its pty survive). It also watches the
  coordinator: a place acquired is powered on, a place released is powered off, so an
  idle farm uses no CPU;
- a labgrid exporter whose configuration names, per board, a ``RawSerialPort`` (the
  pty; the exporter serves it through ser2net in RFC 2217 mode while the place is
  acquired) and a ``NetworkPowerPort`` (model ``rest``, the power service);
- places ``pyb-1`` .. ``pyb-N``, each matching its board's resources, tagged
  ``board=PYBV10_QEMU``.

Everything it started is written to ``.mpforge/farm/farm.json`` (git-ignored), with the
logs beside it; ``invoke farm stop`` ends each of those processes by its id (its
process group: the exporter's ser2net children go with it), and ``invoke farm status``
says what runs and who holds which place. Clients reach it with ``LG_COORDINATOR`` (the
address ``status`` prints) or, from this checkout, without it
(:func:`mpforge.device.labgrid.coordinator_address`).

**No Nagle on the serial hop.** labgrid's exporter starts ser2net with a plain
``tcp`` accepter, so ser2net's small writes to the client wait for the client's delayed
ACK (Nagle's algorithm): the raw REPL's short exchanges (``OK``, output, ``\x04``) then
cost ~100 ms a test (measured here: ``-k basics`` on one place 49-57 s against 20 s on
its pty). The farm's exporter finds a ``ser2net`` of the farm first on its ``PATH``
(:func:`ser2net_wrapper`): it runs the real one with ``tcp(nodelay)``, and the same run
takes 23 s (1.15x). A lab's own exporter host can do the same.

The board command is any program that announces its pty as QEMU does ("char device
redirected to /dev/pts/N"); ``{qmp}`` in it is replaced by the board's QMP socket path,
and only boards with one get a power port. The tests use the fake boards of
``tests/fakes/`` this way.

Why one long module: it starts, records and stops one set of cooperating programs
(QEMU boards, coordinator, exporter, the power service that the exporter calls back),
and the power service runs as ``python -m mpforge.device.farm power``; the start
order, the state file and the stop order are read best side by side.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mpforge.core.errors import FarmError, MissingTool

#: the farm's state, under the checkout (git-ignored with the rest of .mpforge/)
STATE_DIR = Path(".mpforge") / "farm"
STATE_FILE = "farm.json"
EXPORTER_NAME = "mpforge-farm"
PLACE_PREFIX = "pyb-"
DEFAULT_TAGS = {"board": "PYBV10_QEMU"}
HOST = "127.0.0.1"
#: what QEMU needs besides the port's emulator command: started stopped, a QMP socket
QEMU_EXTRA = " -S -qmp unix:{qmp},server=on,wait=off"
START_TIMEOUT = 20.0

Note = Callable[[str], None]
#: the power service's log (its ``main`` sends it to stderr, that is ``power.log``)
log = logging.getLogger("mpforge.farm.power")


@dataclass
class FarmProcess:
    """A process the farm started: ``marker`` is a piece of its command line, checked
    before it is signalled (a pid may have been reused since)."""

    role: str
    pid: int
    marker: str
    log: str
    #: the process object while the command that started it runs (not saved)
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)


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
    started: float = field(default_factory=time.time)

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["boards"] = [asdict(b) for b in self.boards]
        data["processes"] = [{"role": p.role, "pid": p.pid, "marker": p.marker, "log": p.log}
                             for p in self.processes]
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FarmState:
        data = json.loads(text)
        data["boards"] = [FarmBoard(**b) for b in data["boards"]]
        data["processes"] = [FarmProcess(**p) for p in data["processes"]]
        return cls(**data)


@dataclass
class FarmStatus:
    """``invoke farm status``: the processes, and the places as the coordinator sees them."""

    state: FarmState
    alive: dict[str, bool]  # role -> running
    holders: dict[str, str | None]  # place -> host/user holding it
    powered: dict[str, bool | None]  # place -> running (None: no power switch, or unknown)

    @property
    def healthy(self) -> bool:
        return all(self.alive.values())


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def load_state(root: Path) -> FarmState | None:
    """The farm recorded for the checkout at ``root`` (None: none)."""
    path = state_dir(root) / STATE_FILE
    try:
        return FarmState.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise FarmError(f"{path} is unreadable ({exc})", f"remove {STATE_DIR}/ once no farm runs") from None


def running_coordinator(root: Path) -> str | None:
    """The coordinator address of this checkout's farm, if its coordinator runs."""
    try:
        state = load_state(root)
    except FarmError:
        return None
    if state is None:
        return None
    coordinator = next((p for p in state.processes if p.role == "coordinator"), None)
    return state.coordinator if coordinator and _alive(coordinator) else None


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _spawn(role: str, argv: list[str], log: Path, marker: str, cwd: Path | None = None,
           env: dict[str, str] | None = None) -> FarmProcess:
    """Start a farm process in its own session (the terminal's Ctrl-C is not for it: it
    outlives the command that started it), its output to ``log``."""
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=cwd, start_new_session=True, env=env)
        except FileNotFoundError:
            raise FarmError(f"farm: cannot start {role}: program not found: {argv[0]}",
                            "install it (`invoke doctor` lists the host tools)") from None
    return FarmProcess(role, proc.pid, marker, str(log), proc)


def _alive(process: FarmProcess) -> bool:
    """Whether ``process`` still runs (and, seen from another command, is the one the
    farm started: its command line still holds the marker, so a reused pid is not
    taken for it)."""
    if process.popen is not None:
        return process.popen.poll() is None
    for _ in range(3):
        try:
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{process.pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return False
        if cmdline:  # empty: read while the process is busy (exec, exit); ask again
            return process.marker in cmdline.replace(b"\0", b" ").decode("utf-8", "replace")
        time.sleep(0.01)
    return False


def _tail(path: str, chars: int = 600) -> str:
    try:
        return Path(path).read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _wait_for(what: str, ready: Callable[[], Any], process: FarmProcess | None,
              timeout: float = START_TIMEOUT) -> Any:
    """Poll ``ready`` until it gives something; a :class:`FarmError` with the log's tail
    when ``process`` dies first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = ready()
        if result:
            return result
        if process is not None and not _alive(process):
            raise FarmError(f"farm: {what} exited while starting", f"see {process.log}",
                            _tail(process.log))
        if time.monotonic() > deadline:
            raise FarmError(f"farm: {what} not ready within {timeout:g} s",
                            f"see {process.log}" if process else "", _tail(process.log) if process else "")
        time.sleep(0.05)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def _announced_pty(log: str) -> str | None:
    match = re.search(r"(/dev/pts/\d+)", _tail(log, 4000))
    return match.group(1) if match else None


def ser2net_path() -> str:
    """The ser2net the exporter will run (labgrid also looks in /usr/sbin, which is not on
    every user's PATH), or :class:`MissingTool`."""
    found = shutil.which("ser2net") or ("/usr/sbin/ser2net" if os.access("/usr/sbin/ser2net", os.X_OK) else None)
    if not found:
        raise MissingTool("ser2net", "missing host tool ser2net (labgrid's exporter serves serial ports with it)",
                          "apt-get install ser2net (`invoke doctor` lists it)")
    return found


#: what labgrid's exporter hands ser2net as the accepter, and what the wrapper makes of it
_ACCEPTER = "telnet(rfc2217,mode=server),tcp,"
_ACCEPTER_NODELAY = "telnet(rfc2217,mode=server),tcp(nodelay),"


def ser2net_wrapper(folder: Path) -> Path:
    """Write ``folder/bin/ser2net``: the real ser2net (:func:`ser2net_path`) with its
    accepter's TCP ``nodelay`` on (see the module docstring); the folder to put first on
    the exporter's ``PATH``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "ser2net"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "# mpforge's farm: labgrid's ser2net command with TCP nodelay on its accepter\n"
        "import os, sys\n"
        f"real = {ser2net_path()!r}\n"
        f"args = [a.replace({_ACCEPTER!r}, {_ACCEPTER_NODELAY!r}) for a in sys.argv[1:]]\n"
        "os.execv(real, [real, *args])\n")
    wrapper.chmod(0o755)
    return bin_dir


def _require_labgrid() -> None:
    try:
        import labgrid  # noqa: F401
    except ImportError:
        raise FarmError("labgrid is not installed", "pip install -e '.[farm]' (labgrid from PyPI)") from None


# --- the exporter's configuration ---------------------------------------------------------


def exporter_config(boards: list[FarmBoard], power_url: str | None) -> str:
    """The exporter's YAML: per board a group named after its place, with a
    ``RawSerialPort`` and, if it has a QMP socket, a ``NetworkPowerPort`` (model ``rest``).

    labgrid reads the file as a Jinja2 template: no line may start with ``#``.
    """
    lines: list[str] = []
    for board in boards:
        lines += [f"{board.place}:", "  RawSerialPort:", f"    port: {board.pty}", "    speed: 115200"]
        if board.qmp and power_url:
            lines += ["  NetworkPowerPort:", "    model: rest",
                      f"    host: '{power_url}/board/{{index}}/power'", f"    index: {board.index}"]
    return "\n".join(lines) + "\n"


# --- start, stop, status ------------------------------------------------------------------


def start(root: Path, command: str, count: int, *, tags: dict[str, str] | None = None,
          note: Note | None = None) -> FarmState:
    """Start a farm of ``count`` boards running ``command`` (see the module docstring);
    on any failure, everything started so far is stopped again."""
    note = note or (lambda line: None)
    if count < 1:
        raise FarmError(f"a farm needs at least one board, not {count}", "--boards N, N >= 1")
    _require_labgrid()
    ser2net_path()
    existing = load_state(root)
    if existing is not None:
        if any(_alive(p) for p in existing.processes):
            raise FarmError(f"a farm already runs here (coordinator {existing.coordinator})",
                            "`invoke farm stop` first, or use it")
        note("a stopped farm's state was left behind: starting afresh")
    folder = state_dir(root)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "coordinator").mkdir(parents=True)
    tags = dict(DEFAULT_TAGS if tags is None else tags)
    processes: list[FarmProcess] = []
    state = FarmState(f"{HOST}:{free_port()}", EXPORTER_NAME, None, tags, [], processes)
    try:
        boards = _start_boards(folder, command, count, processes)
        state.boards = boards
        note(f"{count} board(s) on {', '.join(b.pty for b in boards)}")
        port = int(state.coordinator.rpartition(":")[2])
        coordinator = _spawn("coordinator", [sys.executable, "-m", "labgrid.remote.coordinator",
                                             "-l", state.coordinator],
                             folder / "coordinator.log", "labgrid.remote.coordinator", cwd=folder / "coordinator")
        processes.append(coordinator)
        _wait_for("the labgrid coordinator", lambda: _listening(port), coordinator)
        if any(b.qmp for b in boards):
            state.power_url = f"http://{HOST}:{free_port()}"
            (folder / STATE_FILE).write_text(state.to_json())  # the power service reads it
            power_port = int(state.power_url.rpartition(":")[2])
            service = _spawn("power", [sys.executable, "-m", "mpforge.device.farm", "power", str(folder)],
                             folder / "power.log", "mpforge.device.farm", cwd=root)
            processes.append(service)
            _wait_for("the power service", lambda: _listening(power_port), service)
        config = folder / "exporter.yaml"
        config.write_text(exporter_config(boards, state.power_url))
        wrapped = ser2net_wrapper(folder)
        exporter = _spawn("exporter", [sys.executable, "-m", "labgrid.remote.exporter", "-c", state.coordinator,
                                       "-n", EXPORTER_NAME, "--hostname", HOST, str(config)],
                          folder / "exporter.log", "labgrid.remote.exporter",
                          env={**os.environ, "PATH": f"{wrapped}{os.pathsep}{os.environ.get('PATH', '')}"})
        processes.append(exporter)
        (folder / STATE_FILE).write_text(state.to_json())
        _register_places(state, exporter)
        (folder / STATE_FILE).write_text(state.to_json())
        note(f"coordinator {state.coordinator}: places {', '.join(b.place for b in boards)} tagged "
             f"{','.join(f'{k}={v}' for k, v in tags.items())}")
        return state
    except BaseException:
        _stop_processes(processes)
        with contextlib.suppress(OSError):
            (folder / STATE_FILE).unlink()
        raise


def _start_boards(folder: Path, command: str, count: int, processes: list[FarmProcess]) -> list[FarmBoard]:
    """Start every board, then wait for each to announce its pty."""
    started: list[tuple[int, str | None, FarmProcess]] = []
    for index in range(1, count + 1):
        qmp = str(folder / f"board{index}.qmp") if "{qmp}" in command else None
        argv = shlex.split(command.replace("{qmp}", qmp or "").replace("{index}", str(index)))
        process = _spawn(f"board {index}", argv, folder / f"board{index}.log", " ".join(argv))
        processes.append(process)
        started.append((index, qmp, process))
    boards = []
    for index, qmp, process in started:
        pty = _wait_for(f"board {index}", functools.partial(_announced_pty, process.log), process)
        if qmp:
            _wait_for(f"board {index}'s QMP socket", functools.partial(os.path.exists, qmp), process)
        boards.append(FarmBoard(index, f"{PLACE_PREFIX}{index}", pty, qmp))
    return boards


def _register_places(state: FarmState, exporter: FarmProcess) -> None:
    """Create the places (each matching its board's group), once the exporter's resources
    are at the coordinator."""
    from mpforge.device.labgrid import Coordinator, _protocol

    proto = _protocol()
    with Coordinator(state.coordinator) as coordinator:

        def exported() -> bool:
            coordinator.pause(0.05)
            groups = coordinator.session.resources.get(state.exporter, {})
            return all(b.place in groups for b in state.boards)

        _wait_for("the labgrid exporter", exported, exporter)
        stub = coordinator.session.stub
        for board in state.boards:
            coordinator._run(stub.AddPlace(proto.AddPlaceRequest(name=board.place)))
            coordinator._run(stub.AddPlaceMatch(proto.AddPlaceMatchRequest(
                placename=board.place, pattern=f"{state.exporter}/{board.place}/*")))
            coordinator._run(stub.SetPlaceTags(proto.SetPlaceTagsRequest(placename=board.place, tags=state.tags)))
        coordinator.sync()


def stop(root: Path, note: Note | None = None) -> list[str]:
    """Stop every process of this checkout's farm (exporter first: its ser2net go with
    it); the logs stay. Returns the roles stopped."""
    note = note or (lambda line: None)
    state = load_state(root)
    if state is None:
        return []
    stopped = _stop_processes(state.processes)
    (state_dir(root) / STATE_FILE).unlink(missing_ok=True)
    for board in state.boards:
        if board.qmp:
            Path(board.qmp).unlink(missing_ok=True)
    return stopped


def _stop_processes(processes: list[FarmProcess], timeout: float = 5.0) -> list[str]:
    """SIGTERM each live process group, exporter and services before boards; SIGKILL
    after ``timeout`` s."""
    order = {"exporter": 0, "power": 1, "coordinator": 2}
    live = [p for p in sorted(processes, key=lambda p: order.get(p.role, 3)) if _alive(p)]
    for process in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(process):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            while _alive(process) and time.monotonic() < deadline + 2:
                time.sleep(0.05)
    return [p.role for p in live]


def status(root: Path) -> FarmStatus | None:
    """The farm of this checkout: its processes and places (None: no farm)."""
    state = load_state(root)
    if state is None:
        return None
    alive = {p.role: _alive(p) for p in state.processes}
    holders: dict[str, str | None] = {b.place: None for b in state.boards}
    if alive.get("coordinator"):
        from mpforge.device.labgrid import Coordinator

        with Coordinator(state.coordinator) as coordinator:
            for name, place in coordinator.places().items():
                holders[name] = place.acquired
    powered = {b.place: (qmp_running(b.qmp) if b.qmp else None) for b in state.boards}
    return FarmStatus(state, alive, holders, powered)


# --- the power service --------------------------------------------------------------------


class QmpError(FarmError):
    """A QMP socket that did not answer as QEMU does."""


def qmp(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Run one QMP ``command`` on the socket at ``path``; its ``return`` value."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except OSError as exc:
            raise QmpError(f"QMP socket {path}: {exc}") from None
        stream = s.makefile("rwb")

        def answer() -> dict[str, Any]:
            while True:
                line = stream.readline()
                if not line:
                    raise QmpError(f"QMP socket {path} closed")
                message = json.loads(line)
                if "return" in message:
                    return dict(message["return"] or {})
                if "error" in message:
                    raise QmpError(f"QMP {command}: {message['error'].get('desc', message['error'])}")
                # greetings and events: not the answer

        greeting = json.loads(stream.readline() or b"{}")
        if "QMP" not in greeting:
            raise QmpError(f"QMP socket {path} sent no greeting")
        for name in ("qmp_capabilities", command):
            stream.write(json.dumps({"execute": name}).encode() + b"\r\n")
            stream.flush()
            result = answer()
        return result


def qmp_running(path: str) -> bool | None:
    """Whether the board behind ``path`` runs (None: its socket does not answer)."""
    try:
        return bool(qmp(path, "query-status").get("running"))
    except (QmpError, OSError, ValueError):
        return None


class PowerSwitch:
    """The boards' power, by index: off = QMP ``stop``, on = ``system_reset`` + ``cont``."""

    def __init__(self, boards: dict[int, str]) -> None:
        self.boards = boards
        self.locks = {index: threading.Lock() for index in boards}  # one QMP client at a time

    def set(self, index: int, on: bool) -> None:
        with self.locks[index]:
            if on:
                qmp(self.boards[index], "system_reset")
                qmp(self.boards[index], "cont")
            else:
                qmp(self.boards[index], "stop")

    def get(self, index: int) -> bool:
        with self.locks[index]:
            return bool(qmp(self.boards[index], "query-status").get("running"))


def power_handler(switch: PowerSwitch) -> type[BaseHTTPRequestHandler]:
    """The HTTP side of labgrid's ``rest`` power model: ``GET``/``PUT /board/N/power``,
    ``1`` for on, ``0`` for off."""

    class Handler(BaseHTTPRequestHandler):
        def _index(self) -> int | None:
            match = re.fullmatch(r"/board/(\d+)/power", self.path)
            index = int(match.group(1)) if match else None
            if index not in switch.boards:
                self._reply(404, b"no such board\n")
                return None
            return index

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            index = self._index()
            if index is not None:
                try:
                    self._reply(200, b"1" if switch.get(index) else b"0")
                except FarmError as exc:
                    self._reply(502, exc.message.encode())

        def do_PUT(self) -> None:  # noqa: N802
            index = self._index()
            if index is None:
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).strip()
            if body not in (b"0", b"1"):
                self._reply(400, b"send 0 or 1\n")
                return
            try:
                switch.set(index, body == b"1")
                self._reply(200, body)
            except FarmError as exc:
                self._reply(502, exc.message.encode())

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s", format % args)

    return Handler


@contextlib.contextmanager
def serving(switch: PowerSwitch, port: int) -> Iterator[ThreadingHTTPServer]:
    """The power switch served over HTTP on 127.0.0.1:``port`` while the block runs."""
    server = ThreadingHTTPServer((HOST, port), power_handler(switch))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def follow_places(state: FarmState, switch: PowerSwitch, stopping: threading.Event) -> None:
    """Power a board on when its place is acquired and off when it is released, until
    ``stopping`` is set (the coordinator lost meanwhile: reconnect)."""
    from mpforge.device.labgrid import Coordinator

    index = {b.place: b.index for b in state.boards if b.qmp}
    held: dict[str, bool] = {}
    while not stopping.is_set():
        try:
            with Coordinator(state.coordinator) as coordinator:
                while not stopping.is_set():
                    coordinator.pause(0.1)
                    for name, place in list(coordinator.session.places.items()):
                        now = bool(place.acquired)
                        if name not in index or held.get(name) == now:
                            continue
                        first = name not in held
                        held[name] = now
                        if now or not first:  # at start, a free board is left as it is (-S)
                            switch.set(index[name], now)
                            log.info("%s: %s", name, "acquired, powered on" if now else "released, powered off")
        except FarmError as exc:
            log.warning("%s", exc.one_line())
            stopping.wait(1.0)


def serve_power(folder: Path) -> int:
    """``python -m mpforge.device.farm power STATE``: the power service of the farm whose
    ``farm.json`` is in ``STATE``; SIGTERM ends it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    state = FarmState.from_json((folder / STATE_FILE).read_text())
    assert state.power_url is not None
    switch = PowerSwitch({b.index: b.qmp for b in state.boards if b.qmp})
    stopping = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with serving(switch, int(state.power_url.rpartition(":")[2])):
        follow_places(state, switch, stopping)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "power":
        return serve_power(Path(argv[1]))
    sys.stderr.write("usage: python -m mpforge.device.farm power STATE_DIR\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
