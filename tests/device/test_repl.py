"""Using a board: invoke run, invoke repl, deploy --repl, and the test runner's pyboard
module meeting a board a previous client left in the raw REPL (fake board on a pty)."""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_task
from fakes.board import FakeBoard
from mpforge.device.repl import LineEndings, ScriptResult, connect, run_script
from mpforge.device.spec import SerialPath
from mpforge.device.transport import TestTimeout, UnsendableCode

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"
SHIM = Path(__file__).resolve().parents[2] / "src" / "mpforge" / "testing" / "pyboard_shim" / "pyboard.py"
EXECPTY = f"execpty:{sys.executable} {FAKE}"


@pytest.fixture
def fake():
    made = []

    def make(**knobs) -> FakeBoard:
        board = FakeBoard(**knobs).start()
        made.append(board)
        return board

    yield make
    for board in made:
        board.close()


# --- the library ------------------------------------------------------------------------

def test_line_endings_become_the_hosts_across_chunks():
    got: list[bytes] = []
    endings = LineEndings(got.append)
    for chunk in (b"one\r", b"\ntwo\r\nthree", b"\r"):
        endings(chunk)
    endings.flush()
    assert b"".join(got) == b"one\ntwo\nthree\r"


def test_exit_codes_follow_the_shells():
    assert ScriptResult("").exit_code == 0
    assert ScriptResult("Traceback ...\nValueError: x\n").exit_code == 1
    assert ScriptResult("Traceback ...\nKeyboardInterrupt: \n", interrupted=True).exit_code == 130


def test_run_script_soft_resets_streams_and_leaves_the_board_friendly(fake):
    board = fake(start_in="raw")
    notes: list[str] = []
    out: list[bytes] = []
    with connect(SerialPath(board.path), note=notes.append, silence=3) as session:
        assert session.recovery.found == "raw REPL"
        result = run_script(session, b"for i in range(3):\n    print(i * i)\n", out.append)
        assert result.exit_code == 0 and b"".join(out) == b"0\n1\n4\n"
        assert board.soft_resets == 1
        failed = run_script(session, b"print('x')\nraise ValueError('bad')\n", out.append,
                            soft_reset=False)
        assert failed.exit_code == 1 and "ValueError: bad" in failed.error
        assert board.soft_resets == 1
        # left at the friendly prompt: the next connect needs Ctrl-C only
        assert session.repl.wait_for_prompt(3).actions == ["Ctrl-C"]
    assert notes[0].startswith("raw REPL: sent Ctrl-C, Ctrl-B")


# --- the test runner's pyboard module -------------------------------------------------

def load_shim():
    spec = importlib.util.spec_from_file_location("mpforge_test_shim_pyboard", SHIM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runners_pyboard_recovers_a_board_left_in_the_raw_repl(fake, capsys):
    board = fake(start_in="raw")
    shim = load_shim()
    pyb = shim.Pyboard(board.path)
    pyb.enter_raw_repl()
    assert pyb.exec_(b"print(2 + 3)\n") == b"5\r\n"
    pyb.close()
    note = capsys.readouterr().out
    assert note.startswith(f"mpforge-note: {board.path}: raw REPL: sent Ctrl-C, Ctrl-B;")
    # handed back at the friendly prompt: the next client needs Ctrl-C only
    with connect(SerialPath(board.path), silence=3) as session:
        assert session.recovery.actions == ["Ctrl-C"]


def test_invoke_test_passes_right_after_a_client_left_the_raw_repl(fixture_project, fixture_mirror,
                                                                   tmp_path):
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    out = tmp_path / "r.json"
    result = run_task(fixture_project, "test", "--port", "minimal", "--jobs", "1", "-k", "sum",
                     "--device", EXECPTY, "--json", str(out),
                     env={"FAKE_START_IN": "raw", "MPFORGE_SILENCE": "3"}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = {r["test"]: r["verdict"] for r in json.loads(out.read_text())["results"]}
    assert verdicts and set(verdicts.values()) == {"pass"}


# --- the tasks ------------------------------------------------------------------------

def test_invoke_run_prints_the_output_and_exits_0(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("print('hello from the board')\nprint(sum(range(10)))\n")
    result = run_task(tmp_path, "run", str(script), "--device", EXECPTY,
                     env={"FAKE_START_IN": "raw-running"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the board\n45\n"


def test_invoke_run_exits_1_when_the_script_raises(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("print('before')\nx = 1 / 0\n")
    result = run_task(tmp_path, "run", str(script), "--device", EXECPTY, timeout=60)
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "ZeroDivisionError" in result.stderr


def test_invoke_run_explains_a_missing_script_and_a_missing_board(tmp_path):
    missing = run_task(tmp_path, "run", "nope.py", "--device", EXECPTY, timeout=60)
    assert missing.returncode == 1 and "cannot read nope.py" in missing.stderr
    (tmp_path / "x.py").write_text("print(1)\n")
    gone = run_task(tmp_path, "run", "x.py", "--device", "/dev/nonexistent-board", timeout=60)
    assert gone.returncode == 1 and "cannot open /dev/nonexistent-board" in gone.stderr


def test_deploy_repl_needs_a_device_and_says_so_before_anything(tmp_path):
    result = run_task(tmp_path, "deploy", "--repl", timeout=60)
    assert result.returncode == 1
    assert "deploy --repl opens the REPL on the board's serial port (pass --device)" in result.stderr


def read_until(fd: int, wanted: bytes, seconds: float) -> bytes:
    """What the terminal shows until ``wanted`` appears (or the deadline passes)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_invoke_repl_is_the_boards_repl_in_a_terminal_until_ctrl_bracket(tmp_path):
    """A user at a terminal: the board (left in the raw REPL) answers typed lines; Ctrl-] leaves."""
    master, slave = pty.openpty()
    env = {**os.environ, "FAKE_START_IN": "raw", "MPFORGE_SILENCE": "3"}
    env.pop("CI", None)
    proc = subprocess.Popen([sys.executable, "-m", "mpforge", "repl", "--device", EXECPTY],
                            cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    try:
        shown = read_until(master, b">>> ", 30)
        assert b"at the REPL (raw REPL); Ctrl-] leaves" in shown, shown
        os.write(master, b"print(6 * 7)\r")
        shown = read_until(master, b"42", 10)
        assert b"42" in shown, shown
        os.write(master, b"\x1d")  # Ctrl-]
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_invoke_repl_refuses_without_a_terminal(tmp_path):
    result = run_task(tmp_path, "repl", "--device", EXECPTY, timeout=60)
    assert result.returncode == 1 and "invoke repl attaches a terminal" in result.stderr


def test_a_script_that_overruns_or_cannot_be_sent_leaves_the_board_friendly(fake):
    board = fake()
    with connect(SerialPath(board.path), silence=3) as session:
        with pytest.raises(TestTimeout):
            run_script(session, b"HANG = 1\n", lambda chunk: None, timeout=0.5)
        assert session.repl.wait_for_prompt(3).actions == ["Ctrl-C"]
        with pytest.raises(UnsendableCode):
            run_script(session, b"x = '\x01'\n", lambda chunk: None)
        assert session.repl.wait_for_prompt(3).actions == ["Ctrl-C"]
        assert board.runs == 1  # the overrunning script only
