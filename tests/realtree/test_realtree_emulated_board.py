"""The emulated pyboard (PYBV10_QEMU) in daily use (marker ``realtree``): its /flash, the
file calls tools make (os.ilistdir, os.statvfs, vfs.mount()), a board left in the raw
REPL, ``invoke run`` and, when it is installed, mpremote's file commands."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_realtree import MIRROR, real_project  # noqa: F401  (the shared fixture)

from conftest import run_cli
from mpforge.device.emulate import running
from mpforge.device.repl import connect, run_script
from mpforge.device.spec import SerialPath

pytestmark = [
    pytest.mark.realtree,
    pytest.mark.skipif(not MIRROR, reason="real-tree tests need a mirror"),
    pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc")
                       is None, reason="needs qemu-system-arm and arm-none-eabi-gcc"),
]
QEMU = "qemu-system-arm -M netduinoplus2 -nographic -monitor none -serial pty -kernel {elf}"


@pytest.fixture(scope="module")
def qemu_command(real_project: Path) -> str:  # noqa: F811
    for step in (("fetch", "--mirror", MIRROR, "--port", "stmhal"), ("patch",),
                 ("build", "--port", "stmhal", "--board", "PYBV10_QEMU")):
        result = run_cli(real_project, *step, timeout=1800)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return QEMU.format(elf=real_project / "dist" / "stmhal-PYBV10_QEMU" / "firmware.elf")


@pytest.fixture
def board(qemu_command: str):
    """A freshly booted emulated pyboard: its pty."""
    with running(qemu_command) as emulation:
        yield emulation.pty


def evaluate(session, expression: str):
    """A Python value computed on the board."""
    session.repl.enter(soft_reset=False)
    out, err = session.repl.exec(f"print(repr({expression}))".encode(), timeout=20)
    assert err == b"", err
    return ast.literal_eval(out.decode().strip())


def test_first_boot_formats_flash_like_a_new_pyboard(board: str):
    with connect(SerialPath(board), timeout=60) as session:
        assert evaluate(session, "__import__('os').getcwd()") == "/flash"
        names = evaluate(session, "sorted(__import__('os').listdir('/flash'))")
        assert names == ["README.txt", "boot.py", "main.py", "pybcdc.inf"]
        assert evaluate(session, "__import__('os').listdir('/')") == ["flash"]


def test_files_survive_a_soft_reset_and_the_tool_calls_answer(board: str):
    with connect(SerialPath(board), timeout=60) as session:
        out: list[bytes] = []
        ran = run_script(session, b"with open('data.txt', 'w') as f:\n"
                                  b"    f.write('x' * 1500)\n", out.append)
        assert ran.exit_code == 0, ran.error
        session.repl.enter(soft_reset=True)
        assert evaluate(session, "len(open('/flash/data.txt').read())") == 1500
        entries = evaluate(session, "list(__import__('os').ilistdir())")
        assert ("data.txt", 0x8000, 0, 1500) in entries
        assert ("boot.py", 0x8000, 0, evaluate(session, "__import__('os').stat('boot.py')[6]")) \
            in entries
        assert evaluate(session, "list(__import__('os').ilistdir('/'))") == [("flash", 0x4000, 0, 0)]
        assert evaluate(session, "list(__import__('os').ilistdir(b'/flash'))")[0][0].__class__ \
            is bytes
        bsize, frsize, blocks, bfree = evaluate(session, "__import__('os').statvfs('/flash')")[:4]
        assert bsize == frsize == 512 and 0 < bfree < blocks
        assert blocks * frsize <= 64 * 1024  # the RAM disk
        assert evaluate(session, "[(str(d), p) for d, p in __import__('vfs').mount()]") \
            == [("<Flash>", "/flash")]


def test_a_board_left_in_the_raw_repl_is_taken_back(board: str, real_project: Path):  # noqa: F811
    tests = real_project / "micropython" / "tests"
    # the tree's own runner, with the tree's own pyboard.py: it leaves the raw REPL behind
    left = subprocess.run([sys.executable, "run-tests", "--target", "pyboard", "--device", board,
                           "basics/int1.py"], cwd=tests, text=True, capture_output=True,
                          timeout=300)
    assert "1 tests passed" in left.stdout, left.stdout + left.stderr
    notes: list[str] = []
    with connect(SerialPath(board), note=notes.append, timeout=10) as session:
        assert session.recovery.found == "raw REPL"
    assert notes[0].startswith("raw REPL: sent Ctrl-C, Ctrl-B")
    result = run_cli(real_project, "test", "--port", "stmhal", "--device", board, "-k",
                     "basics/int1", timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_invoke_run_on_the_emulated_board(board: str, real_project: Path, tmp_path: Path):  # noqa: F811
    good, bad = tmp_path / "hello.py", tmp_path / "bad.py"
    good.write_text("import os\nprint('hello from', os.uname().machine)\n")
    bad.write_text("print('before')\nraise ValueError('on purpose')\n")
    ran = run_cli(real_project, "run", str(good), "--device", board, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "hello from PYBv1.0-QEMU with STM32F405RG\n"
    failed = run_cli(real_project, "run", str(bad), "--device", board, timeout=120)
    assert failed.returncode == 1 and failed.stdout == "before\n"
    assert "ValueError: on purpose" in failed.stderr


@pytest.mark.skipif(shutil.which("mpremote") is None, reason="mpremote is not installed "
                    "(pip install mpremote)")
def test_mpremote_file_commands_work_on_our_firmware(board: str, tmp_path: Path):
    script = tmp_path / "main.py"
    script.write_text("print('hello from main.py')\n")

    def mpremote(*args: str) -> str:
        done = subprocess.run(["mpremote", "connect", board, *args], text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    mpremote("fs", "cp", str(script), ":main.py")
    assert "28 main.py" in mpremote("fs", "ls")
    mpremote("soft-reset")
    assert mpremote("fs", "cat", ":main.py") == "print('hello from main.py')\n"
    df = mpremote("df").splitlines()
    assert df[0].split()[:2] == ["filesystem", "size"] and df[1].split()[-1] == "/flash"
    mpremote("fs", "mkdir", ":lib")
    mpremote("fs", "cp", str(script), ":lib/x.py")
    assert "x.py" in mpremote("fs", "ls", ":lib")
    mpremote("fs", "rm", ":lib/x.py")
    mpremote("fs", "rmdir", ":lib")
    back = tmp_path / "back.py"
    mpremote("fs", "cp", ":main.py", str(back))
    assert back.read_text() == script.read_text()
