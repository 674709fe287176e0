"""A fake board with a QEMU-like power switch: :class:`~fakes.board.FakeBoard` on a pty plus a
QMP socket, for the farm's tests (``python tests/fakes/qmp_board.py SOCKET``).

It announces its pty as QEMU does and, like ``qemu-system-arm -S``, starts stopped. QMP
(one client at a time, as QEMU's ``server=on``): the greeting, ``qmp_capabilities``,
``stop`` (the board hears nothing and says nothing), ``system_reset`` (the next
``cont`` boots it: banner, ``>>> ``), ``cont`` and ``query-status``.

Boards that stop answering, for the recovery tests (``python qmp_board.py SOCKET INDEX``, as
the farm's ``{index}`` gives it): ``FAKE_HANG=I:N`` makes board I go silent after N runs of
code on its first power-on (a power cycle brings it back); ``FAKE_DEAD=I:N`` makes board I
go silent after N runs and never come back.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.board import FakeBoard  # noqa: E402


def _knob(name: str, index: int) -> int | None:
    """N of ``NAME=I:N`` when I is this board's index."""
    board, _, after = os.environ.get(name, "").partition(":")
    return int(after) if board and int(board) == index else None


class PoweredBoard:
    def __init__(self, qmp_path: str, index: int = 0) -> None:
        self.board = FakeBoard(start_in="friendly")
        self.board.silent_after = 0  # stopped, as QEMU started with -S
        self.running = False
        self.reset = True
        self.qmp_path = qmp_path
        self.hang_after = _knob("FAKE_HANG", index)  # on the first power-on only
        self.dead_after = _knob("FAKE_DEAD", index)  # and never back
        self.power_ons = 0

    def command(self, name: str) -> dict[str, object]:
        if name == "stop":
            self.running = False
            self.board.silent_after = 0
        elif name == "system_reset":
            self.reset = True
        elif name == "cont":
            if not self.running:
                self.running = True
                self.board.runs = 0
                self.power_ons += 1
                self.board.silent_after = self.hang_after if self.power_ons == 1 else None
                if self.dead_after is not None:
                    self.board.silent_after = self.dead_after if self.power_ons == 1 else 0
                if self.reset and self.board.silent_after != 0:
                    self.board.send(self.board.banner + b"\r\n>>> ")
                self.reset = False
        elif name == "query-status":
            return {"running": self.running, "status": "running" if self.running else "paused"}
        elif name != "qmp_capabilities":
            return {"error": {"class": "CommandNotFound", "desc": f"The command {name} has not been found"}}
        return {}

    def serve(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.qmp_path)
        server.listen(1)
        print(f"char device redirected to {self.board.path} (label serial0)", flush=True)
        self.board.start()
        try:
            while True:
                conn, _ = server.accept()
                with conn, conn.makefile("rwb") as stream:
                    stream.write(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
                    stream.flush()
                    for line in stream:
                        answer = self.command(json.loads(line).get("execute", ""))
                        reply = answer if "error" in answer else {"return": answer}
                        stream.write(json.dumps(reply).encode() + b"\r\n")
                        stream.flush()
        finally:
            os.unlink(self.qmp_path)


if __name__ == "__main__":
    PoweredBoard(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0).serve()
