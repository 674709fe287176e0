"""The local farm (mpforge.device.farm) as ``invoke farm`` drives it: start, status and stop of
every process it runs, against a real labgrid coordinator and exporter, skipped with the
reason when labgrid or ser2net is missing. Its modules' own tests are in tests/device/farm/.
The QEMU farm itself needs the emulated pyboard's firmware: it is tried by hand
(`invoke farm --start`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import run_task
from mpforge.core.errors import FarmError
from mpforge.device import farm

FAKES = Path(__file__).resolve().parents[1] / "fakes"


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
        assert farm.supervisor_pid(tmp_path / farm.STATE_DIR) == state.supervisor != os.getpid()
        with pytest.raises(FarmError, match="already runs"):
            farm.start(tmp_path, f"{sys.executable} {FAKES / 'board.py'}", 1)
    finally:
        stopped = farm.stop(tmp_path)
    assert sorted(stopped) == ["board 1", "board 2", "coordinator", "exporter"]
    for process in state.processes:  # each ended and reaped by the supervisor
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)
    assert farm.supervisor_pid(tmp_path / farm.STATE_DIR) is None
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
    done = run_task(tmp_path, "farm", "--start", "--stop")
    assert done.returncode == 1
    assert "give one of --start, --stop, --status" in done.stderr
    assert "Traceback" not in done.stderr
