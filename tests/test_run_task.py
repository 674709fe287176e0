"""The in-process task runner of the tests (``conftest.run_task``) gives what the console
script gives, and leaves the test process as it found it.

Most task tests call ``run_task`` instead of starting ``python -m mpforge`` (``run_cli``):
these tests are what makes that honest. If the two drifted apart (another program, a
config not loaded, a stream not captured), the comparison below fails."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import REPO, _fd_capture, run_cli, run_task

COMMANDS = [
    ("build", "-h"),                       # invoke's help, from the checkout's program
    ("build", "--port", "nosuch"),         # a library error rendered by the task layer
    ("build", "--jobs", "x"),              # a parse error
    ("nosuchtask",),                       # invoke's own "no idea what that is"
    ("--version",),
    ("doctor", "--port", "unix"),          # a task that runs programs and reads invoke.yaml
]


def _same(text: str) -> str:
    return re.sub(r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS", text)  # the plain console's timestamps


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_in_process_gives_what_the_console_script_gives(args):
    inside, outside = run_task(REPO, *args), run_cli(REPO, *args)
    assert inside.returncode == outside.returncode, (inside, outside)
    assert _same(inside.stdout) == _same(outside.stdout)
    assert _same(inside.stderr) == _same(outside.stderr)


def test_an_uncaught_exception_is_a_traceback_and_status_1_as_the_interpreter_gives():
    inside = run_task(REPO, "build", "--port", "nosuch", "--debug")
    outside = run_cli(REPO, "build", "--port", "nosuch", "--debug")
    assert inside.returncode == outside.returncode == 1
    for result in (inside, outside):
        assert result.stderr.startswith("Traceback (most recent call last):")
    assert inside.stderr.splitlines()[-1] == outside.stderr.splitlines()[-1]


def test_the_test_process_is_left_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("MPFORGE_ROOT", str(tmp_path))
    monkeypatch.setenv("KEPT", "1")
    before = (dict(os.environ), os.getcwd(), list(sys.argv),
              signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
              signal.getsignal(signal.SIGALRM), sys.stdout, sys.stderr, sys.stdin)
    seen = run_task(tmp_path, "doctor", env={"KEPT": None, "ADDED": "2"})
    assert seen.returncode != 0  # not a checkout (MPFORGE_ROOT is removed, as run_cli does)
    run_task(REPO, "build", "--port", "nosuch", "--debug")  # and after a traceback
    after = (dict(os.environ), os.getcwd(), list(sys.argv),
             signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
             signal.getsignal(signal.SIGALRM), sys.stdout, sys.stderr, sys.stdin)
    assert after == before


def test_what_started_programs_print_is_captured_in_order():
    with _fd_capture() as (out, err):
        print("mine first")
        subprocess.run([sys.executable, "-c", "import sys; print('child'); print('oops', file=sys.stderr)"],
                       check=True)
        print("mine after")
    out.seek(0)
    err.seek(0)
    assert out.read().decode() == "mine first\nchild\nmine after\n"
    assert err.read().decode() == "oops\n"


def test_a_task_overrunning_its_timeout_raises_as_run_cli_does(tmp_path):
    board = tmp_path / "silent_board.py"
    board.write_text("import time\ntime.sleep(60)\n")
    script = tmp_path / "x.py"
    script.write_text("print(1)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        run_task(tmp_path, "run", str(script), "--device", f"execpty:{sys.executable} {board}", timeout=2)
