"""The farm's power switch (mpforge.device.farm.power): QMP and its HTTP service, against
tests/fakes/qmp_board.py (a fake board with QEMU's QMP power commands)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpforge.device.farm import power
from mpforge.device.farm.state import FarmBoard, FarmState, free_port

FAKES = Path(__file__).resolve().parents[2] / "fakes"


@pytest.fixture
def qmp_board(tmp_path: Path) -> Iterator[str]:
    """A fake board with a QMP socket (started stopped, as QEMU with -S)."""
    socket_path = str(tmp_path / "b.qmp")
    proc = subprocess.Popen([sys.executable, str(FAKES / "qmp_board.py"), socket_path],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not os.path.exists(socket_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield socket_path
    finally:
        proc.terminate()
        proc.wait(5)


def _http(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="PUT" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_power_service_switches_boards_through_qmp(qmp_board: str) -> None:
    assert power.qmp_running(qmp_board) is False
    port = free_port()
    with power.serving(power.PowerSwitch({1: qmp_board}), port):
        base = f"http://127.0.0.1:{port}/board"
        assert _http(f"{base}/1/power") == (200, b"0")
        assert _http(f"{base}/1/power", b"1") == (200, b"1")
        assert power.qmp_running(qmp_board) is True and _http(f"{base}/1/power") == (200, b"1")
        assert _http(f"{base}/1/power", b"0") == (200, b"0")
        assert power.qmp_running(qmp_board) is False
        assert _http(f"{base}/1/power", b"on")[0] == 400
        assert _http(f"{base}/2/power")[0] == 404
    with pytest.raises(power.QmpError, match="has not been found"):
        power.qmp(qmp_board, "no-such-command")
    assert power.qmp_running(str(Path(qmp_board).with_name("none.qmp"))) is None


def test_the_power_service_serves_while_its_block_runs(qmp_board: str) -> None:
    port = free_port()
    state = FarmState("127.0.0.1:1", "x", None, {}, [FarmBoard(1, "pyb-1", "/dev/pts/1", qmp_board)], [])
    with power.PowerService(state, port) as service:
        assert service.running
        assert _http(f"http://127.0.0.1:{port}/board/1/power", b"1") == (200, b"1")
    assert not service.running
    with pytest.raises(urllib.error.URLError):
        _http(f"http://127.0.0.1:{port}/board/1/power")


def test_labgrids_qmp_monitor_still_fails_on_an_error_reply(qmp_board: str) -> None:
    """Why power.py has its own QMP client (its docstring): labgrid 26's QMPMonitor raises a
    TypeError, not its QMPError, when QEMU refuses a command. When this fails, labgrid has
    fixed it: use its monitor instead."""
    pytest.importorskip("labgrid")
    from labgrid.util.qmp import QMPMonitor

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(qmp_board)
        monitor = QMPMonitor(s.makefile("rb"), s.makefile("wb"))
        assert monitor.execute("query-status")["running"] is False
        with pytest.raises(TypeError, match="'msg' must be <class 'str'>"):
            monitor.execute("no-such-command")
