"""Talking to a MicroPython board: a parsed device spec, pyserial, the raw REPL.

:func:`open_device` opens a :class:`~mpforge.device.spec.DeviceSpec` (the grammar, as
mpremote and the tree's ``pyboard.py`` write it, is :mod:`mpforge.device.spec`'s):

``/dev/ttyACM0``, ``port:/dev/ttyACM0``  a serial port (:class:`~mpforge.device.spec.SerialPath`)
``rfc2217://host:port``, ``socket://``    anything pyserial's ``serial_for_url`` opens
``auto``                                   the one board found by USB VID:PID
                                           (:func:`resolve_auto`, the one place it is looked for)
``execpty:<command>``                      start a program that offers a pty (QEMU with
                                           ``-serial pty``) and talk to that pty

A labgrid place (``labgrid:...``) is acquired first (:mod:`mpforge.device.boards`), then
its serial URL is opened; a DFU device or a debug probe is no serial line and is refused.

An ``execpty:`` program is started through the executor (logged, refused under dry
run, :class:`~mpforge.core.errors.MissingTool` when absent) and stopped with the
device (:meth:`Opened.close`, the executor's one stop sequence).

The raw REPL protocol (MicroPython's ``pyexec.c``): Ctrl-A enters it
(``raw REPL; CTRL-B to exit`` then ``>``); Ctrl-D on an empty line soft-resets
(``soft reboot``); code followed by Ctrl-D is acknowledged with ``OK``, then
the output, ``\\x04``, the error output, ``\\x04`` and ``>``.

Connecting never assumes the state a board is in. The last client may have
left it in the raw REPL (the tree's ``run-tests`` does), a program may be
running, a paste may be half sent. :meth:`RawRepl.wait_for_prompt` brings it
to the friendly prompt from any of these and says what it did
(:class:`Recovery`): Ctrl-C interrupts a program, cancels paste mode and
clears a half-typed line (the friendly REPL answers with ``>>> ``; the raw
REPL only clears its line, silently), then Ctrl-B leaves the raw REPL (its
answer is the banner and ``>>> ``). A soft reset, when a caller wants a fresh
interpreter, comes after that (:meth:`RawRepl.enter`).

One client per board: a local serial port (a device path, ``auto``, an ``execpty:``
pty) is opened *exclusively* (pyserial's ``exclusive=True``, an advisory ``flock``
that every pyserial client, mpremote, miniterm and the tree's ``pyboard.py``, also
takes); a port another program holds is waited for up to ``wait`` s, then refused in
one line (:class:`PortBusy`). An ``rfc2217://`` URL gets ``?ign_set_control``
(:func:`mpforge.device.spec.with_ign_set_control`): ser2net in front of a port
without modem lines (a pty, most USB-serial bridges of MicroPython boards) never
acknowledges setting them, and pyserial would wait 10 s for it, then fail.

Nothing here waits forever: every read has a deadline, a target that stops
answering raises :class:`TargetSilent`, and a test that runs too long is
interrupted with Ctrl-C (:class:`TestTimeout`) so the run can go on. Nothing is held
without bound either: a board that floods its line keeps only the last :data:`MAX_HELD`
bytes while an ending is awaited, and the answer then starts with a line saying how
much was cut (:func:`cut_marker`).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from mpforge.core.errors import TargetSilent, TestTimeout, TransportError, UnsendableCode
from mpforge.core.executor import Executor, Running
from mpforge.device.spec import Auto, DeviceSpec, ExecPty, SerialPath, SerialUrl

#: USB VID:PID of boards running MicroPython (pyboard in its normal mode)
KNOWN_USB_IDS = {(0xF055, 0x9800): "pyboard (MicroPython)"}
BANNER_TIMEOUT = 30.0
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_PROMPT = b">>> "
#: after a prompt, output must pause this long before the board counts as settled
SETTLE = 0.05
#: pause between tries to open a serial port another program holds
BUSY_POLL = 0.2
#: the most device output held while waiting for an ending: a board that floods (a
#: program printing in a loop) keeps only this tail, and what was cut is said
MAX_HELD = 1 << 20


def keep_tail(data: bytes, limit: int) -> tuple[bytes, int]:
    """``data`` cut to its last ``limit`` bytes, and how many bytes were cut."""
    if len(data) <= limit:
        return data, 0
    return data[-limit:], len(data) - limit


def cut_marker(dropped: int) -> bytes:
    """The line put where device output was cut (what a reader of a test's output sees)."""
    return f"[mpforge: {dropped} bytes of device output cut, the last {MAX_HELD} kept]\n".encode()


class PortBusy(TransportError):
    """A local serial port is held (exclusively) by another program."""


@dataclass
class Recovery:
    """What connecting found and what it took to reach the friendly prompt.

    ``found`` names the state the board was in; ``actions`` are the keys sent,
    in order (``Ctrl-C``, ``Ctrl-B``); ``silent_rounds`` counts the rounds with
    no answer at all (a board still booting loses what it is sent).
    """

    found: str
    actions: list[str]
    seconds: float
    silent_rounds: int = 0

    def describe(self) -> str:
        """One line, for verbose output: ``raw REPL: sent Ctrl-C, Ctrl-B; at >>> after 0.61 s``."""
        waited = f" (no answer to the first {self.silent_rounds} round(s): booting?)" \
            if self.silent_rounds else ""
        return (f"{self.found}: sent {_keys(self.actions)}; at the friendly prompt "
                f"after {self.seconds:.2f} s{waited}")


@dataclass
class ScriptRun:
    """How a script run with :meth:`RawRepl.exec_stream` ended."""

    error: bytes  # the error output (a traceback), empty when the script ended normally
    interrupted: bool = False  # Ctrl-C on the host stopped it (sent on to the board)


@dataclass
class Opened:
    """An open device: its port and, for an ``execpty:`` spec, the program behind it."""

    port: serial.SerialBase
    process: Running | None = None

    def close(self) -> None:
        """Close the port, then stop the program (the executor's one stop sequence)."""
        try:
            self.port.close()
        finally:
            if self.process is not None:
                self.process.stop()


def find_boards() -> list[str]:
    return [p.device for p in list_ports.comports() if (p.vid, p.pid) in KNOWN_USB_IDS]


def resolve_auto(spec: DeviceSpec) -> DeviceSpec:
    """``auto`` as the serial port of the one board found by USB id (:data:`KNOWN_USB_IDS`),
    looked for now; none or several found: :class:`TransportError` in one line. Any other
    spec as it is. The one place ``auto`` is resolved."""
    if not isinstance(spec, Auto):
        return spec
    boards = find_boards()
    if not boards:
        raise TransportError("no board found by USB id",
                             f"connect one, or pass --device (known ids: "
                             f"{', '.join(f'{v:04x}:{p:04x}' for v, p in KNOWN_USB_IDS)})")
    if len(boards) > 1:
        raise TransportError(f"{len(boards)} boards found: {', '.join(boards)}",
                             "pick one with --device")
    return SerialPath(boards[0])


def start_pty_program(spec: ExecPty, timeout: float, executor: Executor | None = None) -> tuple[Running, str]:
    """Start the command of ``spec`` through ``executor`` (logged; a plain :class:`Executor` when None)
    and find the pty it announces (QEMU: "char device redirected to /dev/pts/N").

    A program that does not exist is :class:`MissingTool`; one that announces no pty
    within ``timeout`` s is stopped and :class:`TransportError`. Under dry-run nothing
    starts, so there is no pty: :class:`TransportError` says so.
    """
    executor = executor if executor is not None else Executor()
    argv = spec.argv
    if not argv:
        raise TransportError("execpty: no command given", "write the program after execpty:")
    program = executor.start(argv, stdout="pipe", what=f"execpty program {argv[0]}",
                             hint="install it or give its full path in the execpty: spec")
    if program.dry_run:
        raise TransportError(f"execpty: dry run: {argv[0]} was not started, so it offers no pty",
                             "run without --dry-run to talk to it")
    stdout = program.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    seen = b""
    try:
        os.set_blocking(stdout.fileno(), False)
        while time.monotonic() < deadline:
            seen, _ = keep_tail(seen + (stdout.read() or b""), 1 << 16)  # a pty name is short
            match = re.search(rb"(/dev/pts/\d+)", seen)
            if match:
                return program, match.group(1).decode()
            if program.poll() is not None:
                break
            time.sleep(0.05)
    except BaseException:
        program.stop(grace=1)
        raise
    program.stop(grace=1)
    raise TransportError(f"execpty: {argv[0]} announced no pty within {timeout:g} s",
                         "start it with -serial pty (QEMU)", seen.decode("utf-8", "replace")[-500:])


def _open_serial(path: str, baudrate: int, wait: float) -> serial.Serial:
    """``path`` opened exclusively; held by another program: tried again every
    :data:`BUSY_POLL` s for ``wait`` s, then :class:`PortBusy` in one line."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return serial.Serial(path, baudrate, timeout=0, exclusive=True)
        except serial.SerialException as exc:
            if "exclusively lock" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                waited = f" (waited {wait:g} s)" if wait > 0 else ""
                raise PortBusy(f"{path} is in use by another program{waited}",
                               "close its other client (a terminal, mpremote, another invoke), "
                               "or wait for it: --wait SECONDS") from None
        time.sleep(BUSY_POLL)


def open_device(spec: DeviceSpec, baudrate: int = 115200, executor: Executor | None = None,
                wait: float = 0.0) -> Opened:
    """Open a device spec (see the module docstring). An ``execpty:`` program is started
    through ``executor`` (a plain :class:`Executor` when None: not logged anywhere). A
    local port is opened exclusively; one in use is waited for up to ``wait`` s."""
    if spec.is_farm:
        raise TransportError(f"{spec} is a labgrid place: acquire it first",
                             "open it through mpforge.device.boards (leased), which opens its URL")
    if isinstance(spec, ExecPty):
        program, path = start_pty_program(spec, 15, executor)
        try:
            return Opened(_open_serial(path, baudrate, 0.0), program)
        except BaseException:
            program.stop(grace=1)
            raise
    spec = resolve_auto(spec)
    if not isinstance(spec, SerialPath | SerialUrl):
        raise TransportError(f"{spec} is not a serial line a REPL answers on",
                             "pass a serial port, auto, rfc2217://HOST:PORT, execpty:COMMAND or labgrid:PLACE")
    try:
        if isinstance(spec, SerialUrl):
            return Opened(serial.serial_for_url(spec.opened_url, baudrate=baudrate, timeout=0))
        return Opened(_open_serial(spec.path, baudrate, wait))
    except serial.SerialException as exc:
        raise TransportError(f"cannot open {spec}: {exc}",
                             "check the device path and that no other program uses it") from None


def device_specs(spec: DeviceSpec, jobs: int) -> list[DeviceSpec]:
    """One spec per shard: an ``execpty:`` program can be started once per shard; a
    real board serves one shard only."""
    if spec.restarts_itself:
        return [spec] * max(1, jobs)
    return [spec]


class RawRepl:
    """The raw REPL over an open port. ``silence`` is how long a target may say nothing.

    Code goes to the target ``chunk`` bytes at a time with ``pause`` seconds between
    pieces: the one pacing rule for every client of the raw REPL. A board on USB takes
    256 bytes at once; an emulated pyboard's UART holds only 64 received bytes, and
    QEMU 7's model of it stops answering when they overflow, so a long program for it is
    sent in small paced pieces (see :mod:`mpforge.bench.gc`).
    """

    def __init__(self, port: serial.SerialBase, silence: float = 10.0,
                 log: Callable[[bytes], None] | None = None,
                 note: Callable[[str], None] | None = None,
                 *, chunk: int = 256, pause: float = 0.0) -> None:
        self.port = port
        self.silence = silence
        self.chunk = chunk
        self.pause = pause
        self.log = log  # every byte read, as it comes
        self.note = note  # what recovery found and did, one line
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
        dropped = 0
        while ending not in data:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                data += chunk
                last = now
                if self.log:
                    self.log(chunk)
                if ending not in data:  # a flooding target: only the tail is held
                    data, cut = keep_tail(data, MAX_HELD)
                    dropped += cut
                if ending in data or now - start <= timeout:
                    continue  # a target that never stops talking still times out
            elif now - last > silence:
                raise TargetSilent(f"target said nothing for {silence:g} s "
                                   f"(waiting for {ending!r})", "is it running, and on this port?",
                                   data.decode("utf-8", "replace")[-300:])
            if now - start > timeout:
                raise TestTimeout(f"no {ending!r} within {timeout:g} s", "",
                                  data.decode("utf-8", "replace")[-300:])
            time.sleep(0.002)
        cut = data.index(ending) + len(ending)
        data, self._pending = data[:cut], data[cut:]
        if dropped:
            if self.note:
                self.note(f"the device sent more than {MAX_HELD} bytes before {ending!r}: "
                          f"{dropped} bytes cut, the last {MAX_HELD} kept")
            data = cut_marker(dropped) + data
        return data

    def _answer(self, wait: float) -> bytes:
        """What the board says within ``wait`` s. Reading stops early once the output
        ends with the friendly prompt and then pauses for :data:`SETTLE` s (Ctrl-C
        twice in the friendly REPL gives several prompts: all of them are read here)."""
        data, self._pending = self._pending, b""
        deadline = time.monotonic() + wait
        quiet_since = time.monotonic()
        while True:
            chunk = self.port.read(self.port.in_waiting or 1)
            now = time.monotonic()
            if chunk:
                data, _ = keep_tail(data + chunk, MAX_HELD)  # only its end is looked at
                quiet_since = now
                if self.log:
                    self.log(chunk)
            elif data.endswith(FRIENDLY_PROMPT) and now - quiet_since >= SETTLE:
                return data
            if now >= deadline:
                return data
            if not chunk:
                time.sleep(0.002)

    def wait_for_prompt(self, timeout: float = BANNER_TIMEOUT) -> Recovery:
        """Bring the board to the friendly prompt from whatever state it is in.

        Each round sends Ctrl-C (after a carriage return) and waits up to
        ``min(1 s, silence)`` for ``>>> ``: that ends a running program, paste mode
        or a half-typed line, in the friendly REPL. No prompt means the raw REPL
        (which answers Ctrl-C with nothing), or a board still booting (which loses
        what it is sent): Ctrl-B follows, which leaves the raw REPL with the banner
        and ``>>> `` (in the friendly REPL it only repeats the banner). Rounds go
        on until ``timeout``; then :class:`TargetSilent` says whether the board
        said nothing at all or talked without giving a prompt. What was found and
        done goes to ``note`` and is returned.
        """
        started = time.monotonic()
        deadline = started + timeout
        probe = min(1.0, self.silence)
        actions: list[str] = []
        heard = b""
        silent_rounds = 0
        while time.monotonic() < deadline:
            for key, name in ((b"\r\x03\x03", "Ctrl-C"), (b"\x02", "Ctrl-B")):
                self.write(key)
                actions.append(name)
                answer = self._answer(min(probe, max(0.0, deadline - time.monotonic())))
                heard, _ = keep_tail(heard + answer, MAX_HELD)  # judged by its words and its end
                if answer.endswith(FRIENDLY_PROMPT):
                    recovery = Recovery(self._state(heard, actions), actions,
                                        round(time.monotonic() - started, 2), silent_rounds)
                    if self.note:
                        self.note(recovery.describe())
                    return recovery
                if time.monotonic() >= deadline:
                    break
            if not heard:
                silent_rounds += 1
        tried = f"sent {_keys(actions)}"
        if not heard.strip(b"\r\n"):
            raise TargetSilent(f"no REPL prompt within {timeout:g} s: the board said nothing "
                               f"({tried})", "is the firmware running, and on this port?")
        raise TargetSilent(f"no REPL prompt within {timeout:g} s: the board answers but gives "
                           f"no prompt ({tried})",
                           "a program that does not stop on Ctrl-C (main.py catching "
                           "KeyboardInterrupt?): reset the board",
                           heard.decode("utf-8", "replace")[-300:])

    @staticmethod
    def _state(heard: bytes, actions: list[str]) -> str:
        """The state the board was in, judged from its answers (see wait_for_prompt)."""
        if b"KeyboardInterrupt" in heard:
            mode = "raw REPL" if actions[-1] == "Ctrl-B" else "friendly REPL"
            return f"a running program (interrupted; it ran from the {mode})"
        if actions[-1] == "Ctrl-B":
            return "raw REPL" if actions.count("Ctrl-B") == 1 else "no answer at first, then raw REPL"
        return "friendly REPL" if len(actions) == 1 else "no answer at first, then friendly REPL"

    def leave(self) -> None:
        """Back from the raw REPL to the friendly prompt (Ctrl-B), as a client should
        leave a board for the next one."""
        self.write(b"\x02")
        self.read_until(FRIENDLY_PROMPT, self.silence)
        self._answer(SETTLE * 2)  # the prompt's own tail, nothing else
        self._pending = b""

    def enter(self, soft_reset: bool = True) -> None:
        """Enter the raw REPL, with a soft reset between tests."""
        self.write(b"\r\x03\x03\r\x01")
        # whatever the Ctrl-Cs provoke comes before the raw prompt and is dropped with it
        self.read_until(RAW_PROMPT, self.silence)
        if soft_reset:
            self.write(b"\x04")
            self.read_until(b"soft reboot\r\n", self.silence)
            self.read_until(RAW_PROMPT, self.silence)

    def _send(self, code: bytes) -> None:
        """Hand ``code`` to the raw REPL (in chunks, then Ctrl-D) and wait for its ``OK``."""
        controls = sorted({b for b in code if 1 <= b <= 4})
        if controls:
            raise UnsendableCode(f"code holds raw-REPL control bytes {[hex(b) for b in controls]}",
                                 "the raw REPL cannot carry them")
        for i in range(0, len(code), self.chunk):
            self.write(code[i:i + self.chunk])
            if self.pause:
                time.sleep(self.pause)
        self.write(b"\x04")
        ack = self.read_until(b"OK", self.silence)
        if not ack.endswith(b"OK"):
            raise TransportError(f"target did not accept the code (got {ack[-40:]!r})")

    def exec(self, code: bytes, timeout: float) -> tuple[bytes, bytes]:
        """Run ``code``; return (output, error output). Interrupts a test that overruns."""
        self._send(code)
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

    def exec_stream(self, code: bytes, out: Callable[[bytes], None],
                    timeout: float | None = None) -> ScriptRun:
        """Run ``code`` (in the raw REPL, see :meth:`enter`) and hand its output to ``out``
        as it arrives, for a script that runs a while (``invoke run``).

        The script may be quiet as long as it likes (no silence limit while it
        runs); ``timeout`` (seconds, None: none) interrupts it with Ctrl-C and raises
        :class:`TestTimeout`. Ctrl-C on the host (KeyboardInterrupt) is passed on to
        the board, whose traceback then ends the run (``ScriptRun.interrupted``).
        """
        self._send(code)
        started = time.monotonic()
        interrupted = False
        data, self._pending = self._pending, b""
        while b"\x04" not in data:
            try:
                if data:
                    shown, data = data, b""
                    out(shown)
                chunk = self.port.read(self.port.in_waiting or 1)
                if chunk:
                    data = chunk
                    if self.log:
                        self.log(chunk)
                elif timeout is not None and time.monotonic() - started > timeout:
                    self.write(b"\x03")
                    self.read_until(b"\x04", self.silence)
                    self.read_until(b"\x04", self.silence)
                    self.read_until(b">", self.silence)
                    raise TestTimeout(f"the script ran longer than {timeout:g} s; interrupted")
                else:
                    time.sleep(0.002)
            except KeyboardInterrupt:
                if interrupted:  # a second Ctrl-C: the board did not stop; give up on it
                    raise
                interrupted = True
                self.write(b"\x03")  # the board raises KeyboardInterrupt in the script
        cut = data.index(b"\x04")
        if cut:
            out(data[:cut])
        self._pending = data[cut + 1:]
        err = self.read_until(b"\x04", self.silence)
        self.read_until(b">", self.silence)
        return ScriptRun(err[:-1], interrupted)


def _keys(actions: list[str]) -> str:
    """The keys sent, for a message: ``Ctrl-C, Ctrl-B``; many rounds of them are
    counted instead of listed (``Ctrl-C and Ctrl-B, 12 times each``)."""
    if len(actions) <= 4:
        return ", ".join(actions)
    return f"Ctrl-C and Ctrl-B, {(len(actions) + 1) // 2} times each"
