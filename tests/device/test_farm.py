"""The local farm (mpforge.device.farm): its exporter configuration, the power service over
QMP, and starting and stopping every process it runs.

The power service is tested against tests/fakes/qmp_board.py (a fake board with QEMU's QMP
power commands); the lifecycle against a real labgrid coordinator and exporter, skipped
with the reason when labgrid or ser2net is missing. The QEMU farm itself needs the
emulated pyboard's firmware: it is tried by hand (`invoke farm --start`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from mpforge.core.errors import FarmError
from mpforge.device import farm

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def test_the_exporter_config_names_a_serial_port_and_a_rest_power_port_per_board() -> None:
    boards = [farm.FarmBoard(1, "pyb-1", "/dev/pts/7", "/s/board1.qmp"), farm.FarmBoard(2, "pyb-2", "/dev/pts/9", None)]
    text = farm.exporter_config(boards, "http://127.0.0.1:8000")
    assert not any(line.lstrip().startswith("#") for line in text.splitlines())  # labgrid reads it as Jinja2
    assert yaml.safe_load(text) == {
        "pyb-1": {"RawSerialPort": {"port": "/dev/pts/7", "speed": 115200},
                  "NetworkPowerPort": {"model": "rest", "host": "http://127.0.0.1:8000/board/{index}/power",
                                       "index": 1}},
        "pyb-2": {"RawSerialPort": {"port": "/dev/pts/9", "speed": 115200}},  # no QMP: no power switch
    }


def test_the_state_file_keeps_what_stop_needs_and_no_process_objects(tmp_path: Path) -> None:
    process = farm._spawn("board 1", ["sleep", "30"], tmp_path / "b.log", "sleep 30")
    try:
        state = farm.FarmState("127.0.0.1:1", "x", None, {"board": "B"},
                               [farm.FarmBoard(1, "pyb-1", "/dev/pts/1", None)], [process])
        again = farm.FarmState.from_json(state.to_json())
        assert again.processes[0].popen is None and again.processes[0].pid == process.pid
        assert again.boards == state.boards and again.tags == {"board": "B"}
        assert farm._alive(again.processes[0])  # seen from another command: by /proc and its marker
        assert not farm._alive(farm.FarmProcess("other", process.pid, "qemu-system-arm", ""))  # a reused pid
    finally:
        farm._stop_processes([process])
    assert not farm._alive(process)


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
    assert farm.qmp_running(qmp_board) is False
    port = farm.free_port()
    with farm.serving(farm.PowerSwitch({1: qmp_board}), port):
        base = f"http://127.0.0.1:{port}/board"
        assert _http(f"{base}/1/power") == (200, b"0")
        assert _http(f"{base}/1/power", b"1") == (200, b"1")
        assert farm.qmp_running(qmp_board) is True and _http(f"{base}/1/power") == (200, b"1")
        assert _http(f"{base}/1/power", b"0") == (200, b"0")
        assert farm.qmp_running(qmp_board) is False
        assert _http(f"{base}/1/power", b"on")[0] == 400
        assert _http(f"{base}/2/power")[0] == 404
    with pytest.raises(farm.QmpError, match="has not been found"):
        farm.qmp(qmp_board, "no-such-command")
    assert farm.qmp_running(str(Path(qmp_board).with_name("none.qmp"))) is None


def test_start_stop_and_status_of_a_farm(tmp_path: Path) -> None:
    try:
        import labgrid  # noqa: F401
        farm.ser2net_path()
    except Exception as exc:
        pytest.skip(f"needs labgrid and ser2net: {exc}")
    notes: list[str] = []
    state = farm.start(tmp_path, f"{sys.executable} {FAKES / 'board.py'}", 2, note=notes.append)
    try:
        assert [b.place for b in state.boards] == ["pyb-1", "pyb-2"] and state.power_url is None
        assert state.coordinator.startswith("127.0.0.1:")
        assert farm.running_coordinator(tmp_path) == state.coordinator
        found = farm.status(tmp_path)
        assert found is not None and found.healthy
        assert found.holders == {"pyb-1": None, "pyb-2": None}
        assert set(found.alive) == {"board 1", "board 2", "coordinator", "exporter"}
        with pytest.raises(FarmError, match="already runs"):
            farm.start(tmp_path, f"{sys.executable} {FAKES / 'board.py'}", 1)
    finally:
        stopped = farm.stop(tmp_path)
    assert sorted(stopped) == ["board 1", "board 2", "coordinator", "exporter"]
    assert not any(farm._alive(farm.FarmProcess(p.role, p.pid, p.marker, p.log)) for p in state.processes)
    assert farm.status(tmp_path) is None and farm.running_coordinator(tmp_path) is None
    assert (tmp_path / farm.STATE_DIR / "coordinator.log").exists()  # the logs stay


def test_a_board_that_never_starts_stops_everything_started(tmp_path: Path) -> None:
    try:
        import labgrid  # noqa: F401
        farm.ser2net_path()
    except Exception as exc:
        pytest.skip(f"needs labgrid and ser2net: {exc}")
    with pytest.raises(FarmError, match="board 1 exited while starting") as caught:
        farm.start(tmp_path, "sh -c 'echo no pty here; exit 3'", 2)
    assert "no pty here" in caught.value.details
    assert farm.load_state(tmp_path) is None


def test_invoke_farm_takes_one_action(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "farm", "--start", "--stop")
    assert done.returncode == 1
    assert "give one of --start, --stop, --status" in done.stderr
    assert "Traceback" not in done.stderr
