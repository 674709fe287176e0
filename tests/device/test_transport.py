"""The raw-REPL transport against a fake board on a pty (no hardware)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import serial

from fakes.board import FakeBoard
from mpforge.core.errors import MissingTool
from mpforge.core.executor import Executor, Running, quote
from mpforge.device import transport as transport_mod
from mpforge.device.spec import Auto, DfuSpec, ExecPty, PlaceSpec, ProbeSpec, SerialPath, parse_device
from mpforge.device.transport import (
    PortBusy,
    RawRepl,
    TargetSilent,
    TestTimeout,
    TransportError,
    device_specs,
    open_device,
    resolve_auto,
)

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"


@pytest.fixture
def board():
    made = []

    def make(**knobs) -> tuple[FakeBoard, RawRepl]:
        fake = FakeBoard(**knobs).start()
        made.append(fake)
        port = serial.Serial(fake.path, 115200, timeout=0)
        made.append(port)
        return fake, RawRepl(port, silence=1.0)

    yield make
    for thing in made:
        thing.close()


def test_exec_returns_output_and_error_channels(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    out, err = repl.exec(b"print(6 * 7)\nprint('two')\n", timeout=5)
    assert out == b"42\r\ntwo\r\n" and err == b""
    repl.enter()
    out, err = repl.exec(b"1 / 0\n", timeout=5)
    assert b"ZeroDivisionError" in err
    assert fake.soft_resets == 2  # a soft reset before each test


def test_bytes_sent_while_booting_are_lost_so_we_wait_for_the_prompt(board):
    fake, repl = board(boot_delay=1.0, garbage=b"\x00\xff garbage \x1b[0m")
    started = time.monotonic()
    repl.wait_for_prompt(10)
    assert time.monotonic() - started >= 0.9
    repl.enter()
    assert repl.exec(b"print('up')\n", timeout=5)[0] == b"up\r\n"


def test_a_silent_target_raises_instead_of_hanging(board):
    fake, repl = board(silent_after=1)
    repl.wait_for_prompt(5)
    repl.enter()
    started = time.monotonic()
    with pytest.raises(TargetSilent) as info:
        repl.exec(b"print(1)\n", timeout=60)  # the board stops answering after this code
    assert time.monotonic() - started < 5
    assert "said nothing for 1 s" in info.value.message


def test_an_overrunning_test_is_interrupted_and_the_board_goes_on(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    with pytest.raises(TestTimeout):
        repl.exec(b"HANG = True\nwhile HANG: pass\n", timeout=0.5)
    repl.enter()
    assert repl.exec(b"print('still here')\n", timeout=5)[0] == b"still here\r\n"


def test_no_prompt_at_all_is_a_clear_error(board):
    fake, repl = board(silent_after=0, boot_delay=30)
    with pytest.raises(TargetSilent, match="no REPL prompt within 2 s"):
        repl.wait_for_prompt(2)


def test_execpty_starts_the_program_and_opens_its_pty():
    opened = open_device(parse_device(f"execpty:{sys.executable} {FAKE}"))
    try:
        repl = RawRepl(opened.port, silence=2)
        repl.wait_for_prompt(10)
        repl.enter()
        assert repl.exec(b"print(sum(range(5)))\n", timeout=5)[0] == b"10\r\n"
    finally:
        opened.close()
    assert opened.process.poll() is not None  # the program is stopped with the port


def test_execpty_program_is_started_through_the_executor(tmp_path):
    logged: list[str] = []
    opened = open_device(parse_device(f"execpty:{sys.executable} {FAKE}"), executor=Executor(log=logged.append))
    try:
        assert logged == [f"$ {quote([sys.executable, str(FAKE)])}"]  # logged, as every command
        assert isinstance(opened.process, Running) and opened.process.poll() is None
    finally:
        opened.close()
    assert opened.process.returncode is not None  # stopped with the port (Running.stop)
    opened.close()  # closing twice is harmless: the stop sequence is idempotent


def test_execpty_under_dry_run_starts_nothing_and_says_so(tmp_path):
    logged: list[str] = []
    marker = tmp_path / "started"
    with pytest.raises(TransportError, match="dry run: .* was not started"):
        open_device(parse_device(f"execpty:{sys.executable} -c \"open({str(marker)!r}, 'w')\""),
                    executor=Executor(log=logged.append, dry_run=True))
    assert len(logged) == 1 and not marker.exists()


def test_execpty_program_missing_or_without_a_pty_is_explained():
    with pytest.raises(TransportError, match="announced no pty"):
        open_device(parse_device(f"execpty:{sys.executable} -c \"print('hello')\""))
    with pytest.raises(MissingTool, match="program not found: no-such-emulator-xyz") as info:
        open_device(parse_device("execpty:no-such-emulator-xyz -serial pty"))
    assert "execpty:" in info.value.hint


def test_device_specs_and_bad_ports():
    assert device_specs(ExecPty("qemu ..."), 3) == [ExecPty("qemu ...")] * 3
    assert device_specs(SerialPath("/dev/ttyACM0"), 3) == [SerialPath("/dev/ttyACM0")]
    with pytest.raises(TransportError, match="cannot open /dev/nonexistent-port"):
        open_device(parse_device("port:/dev/nonexistent-port"))
    loop = open_device(parse_device("loop://"))
    loop.port.write(b"x")
    loop.close()


def test_code_with_raw_repl_control_bytes_is_refused_before_sending(board):
    from mpforge.device.transport import UnsendableCode
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    runs = fake.runs
    with pytest.raises(UnsendableCode, match="0x2"):
        repl.exec(b"t = +1\x02\x021\n", timeout=5)
    assert fake.runs == runs  # nothing reached the board
    repl.enter()
    assert repl.exec(b"print('fine')\n", timeout=5)[0] == b"fine\r\n"


# --- connecting to a board in any state ------------------------------------------------

RECOVERIES = {  # the state a previous client left the board in -> what connecting finds, sends
    "friendly": ("friendly REPL", ["Ctrl-C"]),
    "paste": ("friendly REPL", ["Ctrl-C"]),  # Ctrl-C cancels paste mode
    "raw": ("raw REPL", ["Ctrl-C", "Ctrl-B"]),  # as the tree's run-tests leaves it
    "raw-partial": ("raw REPL", ["Ctrl-C", "Ctrl-B"]),  # a client died before its Ctrl-D
    "running": ("a running program (interrupted; it ran from the friendly REPL)", ["Ctrl-C"]),
    "raw-running": ("a running program (interrupted; it ran from the raw REPL)",
                    ["Ctrl-C", "Ctrl-B"]),
}


@pytest.mark.parametrize("state", sorted(RECOVERIES))
def test_connecting_brings_the_board_to_the_prompt_from_any_state(board, state):
    fake, repl = board(start_in=state)
    repl.silence = 3.0
    notes: list[str] = []
    repl.note = notes.append
    recovery = repl.wait_for_prompt(timeout=repl.silence)  # within the silence deadline
    found, actions = RECOVERIES[state]
    assert (recovery.found, recovery.actions) == (found, actions)
    assert notes == [recovery.describe()] and notes[0].startswith(f"{found}: sent {', '.join(actions)}")
    assert fake.runs == 0  # nothing half-sent was run on the way
    assert fake.interrupts == (1 if "running" in state else 0)
    repl.enter()
    assert repl.exec(b"print('after', 6 * 7)\n", timeout=5)[0] == b"after 42\r\n"


def test_a_board_still_booting_is_waited_for_and_said_so(board):
    fake, repl = board(boot_delay=2.5)  # longer than a round (Ctrl-C, Ctrl-B: 1 s each)
    recovery = repl.wait_for_prompt(10)
    assert recovery.silent_rounds >= 1 and "booting?" in recovery.describe()
    assert recovery.found.startswith("no answer at first")


def test_a_program_that_ignores_ctrl_c_is_a_clear_error(board):
    fake, repl = board(start_in="stubborn")
    with pytest.raises(TargetSilent) as info:
        repl.wait_for_prompt(timeout=3)
    assert "the board answers but gives no prompt" in info.value.message
    assert "Ctrl-C" in info.value.message and "reset the board" in info.value.hint
    assert "..." in info.value.details  # what it kept printing


def test_leave_hands_the_board_back_at_the_friendly_prompt(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    repl.leave()
    # the next client finds the friendly REPL: Ctrl-C alone answers
    assert repl.wait_for_prompt(5).actions == ["Ctrl-C"]


# --- a script that runs a while: its output as it comes ---------------------------------

def test_exec_stream_hands_output_over_as_it_is_printed(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    seen: list[bytes] = []

    def out(chunk: bytes) -> None:
        seen.append(chunk)
        if b"first" in b"".join(seen) and not fake.inbox and b"Z" not in bytes(fake.received):
            repl.write(b"Z")  # the script waits for this: it must have seen 'first' already

    ran = repl.exec_stream(b"print('first')\nx = board_read()\nprint('second', x)\n", out,
                           timeout=10)
    assert b"".join(seen) == b"first\r\nsecond Z\r\n" and ran.error == b"" and not ran.interrupted


def test_exec_stream_reports_the_error_channel_and_times_out(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()
    ran = repl.exec_stream(b"print('before')\n1 / 0\n", lambda chunk: None)
    assert b"ZeroDivisionError" in ran.error
    repl.enter()
    with pytest.raises(TestTimeout, match="ran longer than 0.5 s"):
        repl.exec_stream(b"HANG = True\n", lambda chunk: None, timeout=0.5)
    repl.enter()
    assert repl.exec(b"print('still here')\n", timeout=5)[0] == b"still here\r\n"


def test_ctrl_c_on_the_host_is_passed_on_to_the_script(board):
    fake, repl = board()
    repl.wait_for_prompt(5)
    repl.enter()

    def out(chunk: bytes) -> None:
        if b"waiting" in chunk:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C right now

    ran = repl.exec_stream(b"print('waiting')\nwhile True:\n    board_read()\n", out)
    assert ran.interrupted and b"KeyboardInterrupt" in ran.error
    assert fake.interrupts == 1


def test_a_local_port_is_opened_exclusively_and_a_busy_one_waited_for_or_refused(board):
    fake, _ = board()  # the fixture's own pyserial client holds fake.path now (no exclusive lock)
    first = open_device(parse_device(fake.path))
    try:
        started = time.monotonic()
        with pytest.raises(PortBusy) as caught:
            open_device(parse_device(fake.path), wait=0.5)
        assert time.monotonic() - started >= 0.5  # it waited, then refused
        assert caught.value.message == f"{fake.path} is in use by another program (waited 0.5 s)"
        assert "--wait" in caught.value.hint
        with pytest.raises(serial.SerialException, match="exclusively lock"):  # other pyserial clients too
            serial.Serial(fake.path, exclusive=True)
    finally:
        first.close()
    again = open_device(parse_device(fake.path))  # free again once closed
    again.close()


def test_rfc2217_urls_are_opened_with_ign_set_control(monkeypatch):
    opened: list[str] = []
    real = serial.serial_for_url

    def fake_for_url(url: str, **kwargs):
        opened.append(url)
        return real("loop://", **kwargs)

    monkeypatch.setattr(serial, "serial_for_url", fake_for_url)
    open_device(parse_device("rfc2217://127.0.0.1:4000")).close()
    open_device(parse_device("socket://127.0.0.1:4000")).close()
    assert opened == ["rfc2217://127.0.0.1:4000?ign_set_control", "socket://127.0.0.1:4000"]


def test_auto_is_the_one_board_found_by_usb_id_looked_for_when_opened(board, monkeypatch):
    from mpforge.device import transport

    fake, _ = board()
    found: list[str] = []
    monkeypatch.setattr(transport, "find_boards", lambda: list(found))
    with pytest.raises(TransportError, match="no board found by USB id") as none:
        open_device(Auto())
    assert "f055:9800" in none.value.hint
    found[:] = ["/dev/ttyACM0", "/dev/ttyACM1"]
    with pytest.raises(TransportError, match=r"2 boards found: /dev/ttyACM0, /dev/ttyACM1"):
        resolve_auto(Auto())
    found[:] = [fake.path]
    assert resolve_auto(Auto()) == SerialPath(fake.path)
    assert resolve_auto(SerialPath("/dev/x")) == SerialPath("/dev/x")  # any other spec as it is
    opened = open_device(Auto())
    try:
        assert opened.port.port == fake.path
    finally:
        opened.close()


def test_a_place_a_dfu_device_or_a_probe_is_not_opened_as_a_serial_line():
    with pytest.raises(TransportError, match="labgrid:pyb-1 is a labgrid place: acquire it first"):
        open_device(PlaceSpec(place="pyb-1"))
    for spec in (DfuSpec(path="1-2"), ProbeSpec("066DFF")):
        with pytest.raises(TransportError, match=f"{spec} is not a serial line"):
            open_device(spec)


class FloodingPort:
    """A port that sends ``total`` bytes of ``x`` in 64 KiB reads, then ``tail``: a board whose
    program prints in a loop before it ends."""

    def __init__(self, total: int, tail: bytes) -> None:
        self.left = total
        self.tail = tail
        self.in_waiting = 1 << 16

    def read(self, size: int) -> bytes:
        if self.left > 0:
            chunk = b"x" * min(size, self.left)
            self.left -= len(chunk)
            return chunk
        chunk, self.tail = self.tail, b""
        return chunk

    def write(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


def test_a_flooding_board_is_held_to_a_bounded_tail_and_the_cut_is_said(monkeypatch):
    """(#31: 475 MB in 30 s were buffered) only the last MAX_HELD bytes are kept while the
    ending is awaited; the answer starts with a line saying how much was cut."""
    monkeypatch.setattr(transport_mod, "MAX_HELD", 4096)
    notes: list[str] = []
    repl = RawRepl(FloodingPort(8 << 20, b"end\x04"), note=notes.append)  # type: ignore[arg-type]
    got = repl.read_until(b"\x04", timeout=30)
    cut = (8 << 20) - 4096
    assert got == transport_mod.cut_marker(cut) + b"x" * 4096 + b"end\x04"
    assert notes == [f"the device sent more than 4096 bytes before {bytes([4])!r}: "
                     f"{cut} bytes cut, the last 4096 kept"]
    # output that fits is untouched
    assert RawRepl(FloodingPort(100, b"\x04")).read_until(b"\x04", timeout=30) == b"x" * 100 + b"\x04"  # type: ignore[arg-type]
