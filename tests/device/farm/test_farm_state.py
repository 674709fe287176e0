"""What a farm leaves on disk (mpforge.device.farm.state): farm.json and the supervisor's lock."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpforge.core.errors import FarmError
from mpforge.device.farm import state as farm_state
from mpforge.device.farm.state import FarmBoard, FarmProcess, FarmState


def test_the_state_file_keeps_what_stop_and_status_need(tmp_path: Path) -> None:
    state = FarmState("127.0.0.1:1", "x", None, {"board": "B"}, [FarmBoard(1, "pyb-1", "/dev/pts/1", None)],
                      [FarmProcess("board 1", 123, "b.log", False)], supervisor=77)
    folder = tmp_path / farm_state.STATE_DIR
    folder.mkdir(parents=True)
    farm_state.write_json(folder / farm_state.STATE_FILE, state.to_json())
    again = farm_state.load_state(tmp_path)
    assert again == state
    (folder / farm_state.STATE_FILE).write_text("{")
    with pytest.raises(FarmError, match="unreadable"):
        farm_state.load_state(tmp_path)


def test_a_farm_runs_while_its_supervisors_lock_is_held(tmp_path: Path) -> None:
    assert farm_state.supervisor_pid(tmp_path) is None  # no lock file
    lock = tmp_path / farm_state.LOCK_FILE
    lock.write_text("4242\n")
    assert farm_state.supervisor_pid(tmp_path) is None  # left behind, not held: a pid is not trusted
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, sys\n"
                               f"f = open({str(lock)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
                               "print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert farm_state.supervisor_pid(tmp_path) == 4242
        with open(lock) as handle, pytest.raises(BlockingIOError):  # the check took no lock of its own
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(5)
    assert farm_state.supervisor_pid(tmp_path) is None
    assert os.path.exists(lock)
