"""The farm's power switch: labgrid's ``rest`` power model over HTTP, backed by QMP.

Each emulated board is a QEMU with a QMP socket: off = ``stop`` (the board freezes: 0%
CPU), on = ``system_reset`` + ``cont`` (a cold boot, banner after ~0.25 s; the process
and its pty survive). :func:`serving` puts the switch on ``/board/N/power`` for the
exporter's ``NetworkPowerPort`` (model ``rest``), and :func:`follow_places` powers a
board on when its place is acquired and off when it is released, so an idle farm uses
no CPU. Both run in the farm's supervisor (:mod:`mpforge.device.farm.supervisor`).

**QMP: a small client of our own.** labgrid's ``QMPMonitor``
(:mod:`labgrid.util.qmp`, which its ``QEMUDriver`` uses) speaks the same protocol, but in
labgrid 26 its error path fails: it builds ``QMPError`` from QEMU's error *object*, and
``QMPError`` accepts only a string, so a refused command is a ``TypeError``
(``tests/device/farm/test_power.py`` keeps that fact checked: once it is fixed, switch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mpforge.core.errors import FarmError
from mpforge.device.coordinator import Session
from mpforge.device.farm.state import HOST, FarmState, listening

#: the power service's log (the supervisor's log)
log = logging.getLogger("mpforge.farm.power")


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
    thread = threading.Thread(target=server.serve_forever, name="power-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def follow_places(state: FarmState, switch: PowerSwitch, stopping: threading.Event) -> None:
    """Power a board on when its place is acquired and off when it is released, until
    ``stopping`` is set (the coordinator lost meanwhile: reconnect).

    Its session stays open while it follows: in the supervisor it is the only one."""
    index = {b.place: b.index for b in state.boards if b.qmp}
    held: dict[str, bool] = {}
    while not stopping.is_set():
        try:
            with Session(state.coordinator) as coordinator:
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


class PowerService:
    """The power switch of ``state``'s boards served over HTTP on ``port`` while the
    ``with`` block runs, and, once :meth:`follow` is called, following their places."""

    def __init__(self, state: FarmState, port: int) -> None:
        self.state = state
        self.port = port
        self.switch = PowerSwitch({b.index: b.qmp for b in state.boards if b.qmp})
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._serving: contextlib.ExitStack | None = None

    def __enter__(self) -> PowerService:
        with contextlib.ExitStack() as stack:
            stack.enter_context(serving(self.switch, self.port))
            self._serving = stack.pop_all()
        return self

    def follow(self) -> None:
        """Power each board with its place from now on (:func:`follow_places`)."""
        thread = threading.Thread(target=follow_places, args=(self.state, self.switch, self.stopping),
                                  name="follow-places", daemon=True)
        thread.start()
        self.threads.append(thread)

    @property
    def running(self) -> bool:
        """It answers on its port, and follows the places once asked to."""
        return listening(self.port) and all(thread.is_alive() for thread in self.threads)

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self._serving is not None:
            self._serving.close()
        for thread in self.threads:
            thread.join(5)
