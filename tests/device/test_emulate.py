"""``invoke emulate``'s running(): the emulator is a program the executor starts and stops.

The fake board (tests/fakes/board.py) stands in for QEMU: started as a program, it
announces its pty as QEMU's ``-serial pty`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import serial

from mpforge.core.executor import Executor, quote
from mpforge.device.emulate import running
from mpforge.device.transport import RawRepl

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"


def test_running_starts_the_emulator_through_the_executor_and_stops_it():
    logged: list[str] = []
    with running(f"{sys.executable} {FAKE}", executor=Executor(log=logged.append)) as emulation:
        assert logged == [f"$ {quote([sys.executable, str(FAKE)])}"]
        assert emulation.process.poll() is None and emulation.pty.startswith("/dev/pts/")
        port = serial.Serial(emulation.pty, 115200, timeout=0)
        try:
            assert RawRepl(port, silence=2).wait_for_prompt(10).found
        finally:
            port.close()
    assert emulation.process.returncode is not None  # stopped on leaving the block
