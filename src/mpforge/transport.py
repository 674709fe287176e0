"""Talking to a MicroPython board: one device-spec string, pyserial, the raw REPL.

Device specs (as mpremote and the tree's ``pyboard.py`` write them):

``/dev/ttyACM0``, ``port:/dev/ttyACM0``  a serial port
``rfc2217://host:port``, ``socket://``    anything pyserial's ``serial_for_url`` opens
``auto``                                   the one board found by USB VID:PID
``execpty:<command>``                      start a program that offers a pty (QEMU with
                                           ``-serial pty``) and talk to that pty

The raw REPL protocol (MicroPython's ``pyexec.c``): Ctrl-A enters it
(``raw REPL; CTRL-B to exit`` then ``>``); Ctrl-D on an empty line soft-resets
(``soft reboot``); code followed by Ctrl-D is acknowledged with ``OK``, then
the output, ``\\x04``, the error output, ``\\x04`` and ``>``.

Nothing here waits forever: every read has a deadline, a target that stops
answering raises :class:`TargetSilent`, and a test that runs too long is
interrupted with Ctrl-C (:class:`TestTimeout`) so the run can go on.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from .errors import MpforgeError

#: USB VID:PID of boards running MicroPython (pyboard in its normal mode)
KNOWN_USB_IDS = {(0xF055, 0x9800): "pyboard (MicroPython)"}
BANNER_TIMEOUT = 30.0
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"


class TransportError(MpforgeError):
    """The device could not be opened or spoke something we did not expect."""


class TargetSilent(TransportError):
    """The target stopped answering: the run cannot go on."""


class TestTimeout(TransportError):
    """A test ran too long; it was interrupted and the target answered."""

    __test__ = False


class UnsendableCode(TransportError):
    """The code holds raw-REPL control bytes (Ctrl-A..Ctrl-D): sent as is, it would leave
    or end the raw REPL half-way (the board would then never answer)."""


@dataclass
class Opened:
    port: serial.SerialBase
    process: subprocess.Popen | None = None

    def close(self) -> None:
        try:
            self.port.close()
        finally:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    self.process.kill()


def find_boards() -> list[str]:
    return [p.device for p in list_ports.comports() if (p.vid, p.pid) in KNOWN_USB_IDS]


def _start_pty_program(command: str, timeout: float) -> tuple[subprocess.Popen, str]:
    """Start ``command`` and find the pty it announces (QEMU: "char device redirected to /dev/pts/N")."""
    argv = shlex.split(command)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise TransportError(f"execpty: program not found: {argv[0]}",
                             "install it or give its full path") from None
    deadline = time.monotonic() + timeout
    seen = b""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = proc.stdout.read() or b""
        seen += chunk
        match = re.search(rb"(/dev/pts/\d+)", seen)
        if match:
            return proc, match.group(1).decode()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise TransportError(f"execpty: {argv[0]} announced no pty within {timeout:g} s",
                         "start it with -serial pty (QEMU)", seen.decode("utf-8", "replace")[-500:])


def open_device(spec: str, baudrate: int = 115200) -> Opened:
    """Open a device spec (see the module docstring)."""
    if spec.startswith("execpty:"):
        proc, path = _start_pty_program(spec[len("execpty:"):], 15)
        return Opened(serial.Serial(path, baudrate, timeout=0), proc)
    if spec == "auto":
        boards = find_boards()
        if not boards:
            raise TransportError("no board found by USB id",
                                 f"connect one, or pass --device (known ids: "
                                 f"{', '.join(f'{v:04x}:{p:04x}' for v, p in KNOWN_USB_IDS)})")
        if len(boards) > 1:
            raise TransportError(f"{len(boards)} boards found: {', '.join(boards)}",
                                 "pick one with --device")
        spec = boards[0]
    if spec.startswith("port:"):
        spec = spec[len("port:"):]
    try:
        if "://" in spec:
            return Opened(serial.serial_for_url(spec, baudrate=baudrate, timeout=0))
        return Opened(serial.Serial(spec, baudrate, timeout=0))
    except serial.SerialException as exc:
        raise TransportError(f"cannot open {spec}: {exc}",
                             "check the device path and that no other program uses it") from None


def device_specs(spec: str, jobs: int) -> list[str]:
    """One spec per shard: an ``execpty:`` program can be started once per shard; a
    real board serves one shard only."""
    if spec.startswith("execpty:"):
        return [spec] * max(1, jobs)
    return [spec]


class RawRepl:
    """The raw REPL over an open port. ``silence`` is how long a target may say nothing."""

    def __init__(self, port: serial.SerialBase, silence: float = 10.0,
                 log: Callable[[bytes], None] | None = None) -> None:
        self.port = port
        self.silence = silence
        self.log = log
        self._pending = b""  # read past the last ending: the start of the next answer

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_until(self, ending: bytes, timeout: float, *, silence: float | None = None) -> bytes:
        """Read up to and including ``ending``. TargetSilent after ``silence`` s without a byte;
        TestTimeout after ``timeout`` s in all (the target was talking, just not done)."""
        silence = self.silence if silence is None else silence
        data, self._pending = self._pending, b""
        start = last = time.monotonic()
        while ending not in data:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                data += chunk
                last = now
                if self.log:
                    self.log(chunk)
                continue
            if now - last > silence:
                raise TargetSilent(f"target said nothing for {silence:g} s "
                                   f"(waiting for {ending!r})", "is it running, and on this port?",
                                   data.decode("utf-8", "replace")[-300:])
            if now - start > timeout:
                raise TestTimeout(f"no {ending!r} within {timeout:g} s", "",
                                  data.decode("utf-8", "replace")[-300:])
            time.sleep(0.002)
        cut = data.index(ending) + len(ending)
        data, self._pending = data[:cut], data[cut:]
        return data

    def wait_for_prompt(self, timeout: float = BANNER_TIMEOUT) -> None:
        """Ctrl-C until the friendly prompt answers: bytes sent while a board boots are lost."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.write(b"\r\x03")
            try:
                self.read_until(b">>> ", 1.0, silence=1.0)
                return
            except (TargetSilent, TestTimeout):
                continue
        raise TargetSilent(f"no REPL prompt within {timeout:g} s", "is the firmware running?")

    def enter(self, soft_reset: bool = True) -> None:
        """Enter the raw REPL, with a soft reset between tests."""
        self.write(b"\r\x03\x03\r\x01")
        # whatever the Ctrl-Cs provoke comes before the raw prompt and is dropped with it
        self.read_until(RAW_PROMPT, self.silence)
        if soft_reset:
            self.write(b"\x04")
            self.read_until(b"soft reboot\r\n", self.silence)
            self.read_until(RAW_PROMPT, self.silence)

    def exec(self, code: bytes, timeout: float) -> tuple[bytes, bytes]:
        """Run ``code``; return (output, error output). Interrupts a test that overruns."""
        controls = sorted({b for b in code if 1 <= b <= 4})
        if controls:
            raise UnsendableCode(f"code holds raw-REPL control bytes {[hex(b) for b in controls]}",
                                 "the raw REPL cannot carry them")
        for i in range(0, len(code), 256):
            self.write(code[i:i + 256])
        self.write(b"\x04")
        ack = self.read_until(b"OK", self.silence)
        if not ack.endswith(b"OK"):
            raise TransportError(f"target did not accept the code (got {ack[-40:]!r})")
        try:
            out = self.read_until(b"\x04", timeout)
        except TestTimeout:
            self.write(b"\x03")  # KeyboardInterrupt; the board must answer or the run is over
            self.read_until(b"\x04", self.silence)
            self.read_until(b"\x04", self.silence)
            self.read_until(b">", self.silence)
            raise
        err = self.read_until(b"\x04", self.silence)
        self.read_until(b">", self.silence)
        return out[:-1], err[:-1]
