"""A fake MicroPython board on a pty: the friendly and raw REPL protocols, run by CPython.

What it answers follows MicroPython's ``lib/utils/pyexec.c`` (the pinned tree):
the friendly REPL echoes what is typed and runs a line on Enter; Ctrl-C there
gives a fresh ``>>> ``, Ctrl-B the banner again, Ctrl-A the raw REPL, Ctrl-D a
soft reset, Ctrl-E paste mode (Ctrl-C cancels it). The raw REPL answers Ctrl-C
with nothing (it only clears its line), leaves for the friendly REPL on Ctrl-B
(banner, ``>>> ``), and runs what it collected on Ctrl-D (``OK``, output,
``\\x04``, error output, ``\\x04``, ``>``); Ctrl-D on an empty line soft-resets.
While a program runs, Ctrl-C raises KeyboardInterrupt in it; anything else
typed waits in the input buffer for the REPL, as on a board.

Knobs (constructor arguments, or environment variables when run as a program
for ``execpty:``):

``silent_after`` (``FAKE_SILENT_AFTER``)
    stop answering after N runs of code;
``garbage``
    noise sent before the banner, as from a board that is still booting;
``boot_delay`` (``FAKE_BOOT_DELAY``)
    seconds of deafness at start, like a booting board;
``start_in`` (``FAKE_START_IN``)
    the state a previous client left the board in: ``boot`` (default: it boots,
    prints its banner and ``>>> ``), or, without a word at start, ``friendly``
    (at the prompt), ``raw`` (the raw REPL, as the tree's ``run-tests`` leaves
    it), ``raw-partial`` (the raw REPL holding half a program: a client died
    before its Ctrl-D), ``paste`` (friendly paste mode, half a paste typed),
    ``running`` (a program started at the friendly prompt, printing dots),
    ``raw-running`` (a program started over the raw REPL), ``stubborn`` (a
    program that keeps printing and ignores Ctrl-C: no way back but a reset).

Code run on the board sees ``print`` (its output goes out as it is printed)
and ``board_read()`` (the next byte the host sends). Code containing ``HANG``
loops until Ctrl-C arrives, then reports a KeyboardInterrupt, as MicroPython
does.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import sys
import threading
import time
import tty

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
TRACEBACK_INTERRUPT = b"Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n"
STATES = ("boot", "friendly", "raw", "raw-partial", "paste", "running", "raw-running", "stubborn")


class Interrupted(Exception):
    """Ctrl-C reached a running program."""


class FakeBoard:
    def __init__(self, silent_after: int | None = None, garbage: bytes = b"",
                 boot_delay: float = 0.0, banner: str = "MicroPython v1.8.2 on fake; fake board",
                 on_bootloader=None, start_in: str = "boot") -> None:
        if start_in not in STATES:
            raise ValueError(f"start_in: one of {', '.join(STATES)}")
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.silent_after = silent_after
        self.garbage = garbage
        self.boot_delay = boot_delay
        self.banner = banner.encode()
        self.on_bootloader = on_bootloader  # pyb.bootloader(): the board leaves the serial port
        self.start_in = start_in
        self.runs = 0
        self.soft_resets = 0
        self.interrupts = 0  # programs stopped by Ctrl-C
        self.received = bytearray()  # every byte the host sent
        self.inbox = bytearray()  # typed while a program ran: read by the REPL afterwards
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def start(self) -> FakeBoard:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- the wire ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def _wire_byte(self, wait: float) -> bytes | None:
        """A byte from the host within ``wait`` s (None: none came, or the board stops)."""
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return None
        try:
            c = os.read(self.master, 1)
        except OSError:
            return None
        self.received += c
        return c or None

    def read_byte(self) -> bytes | None:
        """The next byte for the REPL: what waited in the input buffer first."""
        if self.inbox:
            c = bytes(self.inbox[:1])
            del self.inbox[:1]
            return c
        while not self.stop.is_set():
            c = self._wire_byte(0.05)
            if c is not None:
                return c
        return None

    def poll_interrupt(self, wait: float = 0.0) -> None:
        """What a running program sees of the host: Ctrl-C raises, the rest is buffered."""
        deadline = time.monotonic() + wait
        while True:
            c = self._wire_byte(max(0.0, deadline - time.monotonic()))
            if c is None:
                if self.stop.is_set():
                    raise Interrupted()
                return
            if c == b"\x03":
                self.interrupts += 1
                raise Interrupted()
            self.inbox += c

    @property
    def silent(self) -> bool:
        return self.silent_after is not None and self.runs >= self.silent_after

    # --- programs ---------------------------------------------------------------------

    def _print(self, *args, sep: str = " ", end: str = "\n", file=None) -> None:
        if self.silent:  # the run that reached silent_after already says nothing
            return
        self.send((sep.join(str(a) for a in args) + end).replace("\n", "\r\n").encode())

    def _board_read(self) -> str:
        c = self.read_byte()
        if c == b"\x03":  # Ctrl-C while a program reads: KeyboardInterrupt, as on a board
            self.interrupts += 1
            raise Interrupted()
        return c.decode("latin-1") if c else ""

    def run_code(self, code: bytes) -> bytes:
        """Run ``code``; its output goes out as it is printed. Returns the error output."""
        self.runs += 1
        if b"pyb.bootloader()" in code and self.on_bootloader:
            self.silent_after = 0  # gone: the chip now runs its DFU bootloader
            self.on_bootloader()
            return b""
        try:
            if b"HANG" in code:
                while True:
                    self.poll_interrupt(0.05)
            exec(compile(code.decode(), "<stdin>", "exec"),
                 {"__name__": "__main__", "print": self._print, "board_read": self._board_read})
        except Interrupted:
            return TRACEBACK_INTERRUPT
        except Exception as exc:  # a board reports it on the error channel
            return f"Traceback (most recent call last):\r\n{type(exc).__name__}: {exc}\r\n".encode()
        return b""

    def busy(self, stubborn: bool = False) -> None:
        """A program that prints a dot now and then until Ctrl-C (or forever, ``stubborn``)."""
        while not self.stop.is_set():
            self.send(b".")
            try:
                self.poll_interrupt(0.02)
            except Interrupted:
                if not stubborn:
                    raise

    # --- the REPLs ----------------------------------------------------------------------

    def serve(self) -> None:
        mode, line = "friendly", b""
        if self.start_in == "boot":
            time.sleep(self.boot_delay)  # bytes sent meanwhile are lost, as on a booting board
            with contextlib.suppress(OSError):
                while select.select([self.master], [], [], 0)[0]:
                    os.read(self.master, 1024)
            self.send(self.garbage + self.banner + b"\r\n>>> ")
        elif self.start_in in ("raw", "raw-partial"):
            mode = "raw"
            line = b"print('half a progr" if self.start_in == "raw-partial" else b""
        elif self.start_in == "paste":
            mode, line = "paste", b"for i in range(3):\r    print(i"
        elif self.start_in == "stubborn":
            self.busy(stubborn=True)
            return
        elif self.start_in in ("running", "raw-running"):
            try:
                self.busy()
            except Interrupted:
                pass
            if self.start_in == "raw-running":
                mode = "raw"
                self.send(b"\x04" + TRACEBACK_INTERRUPT + b"\x04>")
            else:
                self.send(TRACEBACK_INTERRUPT + b">>> ")
        while not self.stop.is_set():
            c = self.read_byte()
            if c is None or self.silent:
                continue
            if mode == "friendly":
                mode, line = self.friendly(c, line)
            elif mode == "paste":
                mode, line = self.paste(c, line)
            else:
                mode, line = self.raw(c, line)

    def friendly(self, c: bytes, line: bytes) -> tuple[str, bytes]:
        if c == b"\x03":
            self.send(b"\r\n>>> ")
            return "friendly", b""
        if c == b"\x02":
            self.send(b"\r\n" + self.banner + b"\r\n>>> ")
            return "friendly", b""
        if c == b"\x01":
            self.send(b"\r\n" + RAW_PROMPT)
            return "raw", b""
        if c == b"\x04":
            if line:
                return "friendly", line
            self.soft_resets += 1  # the banner again
            self.send(b"\r\nFAKE: soft reboot\r\n" + self.banner + b"\r\n>>> ")
            return "friendly", b""
        if c == b"\x05":
            self.send(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
            return "paste", b""
        if c == b"\r":
            self.send(b"\r\n")
            if line.strip():
                self.send(self.run_code(line))
            self.send(b">>> ")
            return "friendly", b""
        if c >= b" ":
            self.send(c)  # echo
            return "friendly", line + c
        return "friendly", line

    def paste(self, c: bytes, text: bytes) -> tuple[str, bytes]:
        if c == b"\x03":
            self.send(b"\r\n>>> ")
            return "friendly", b""
        if c == b"\x04":
            self.send(b"\r\n" + self.run_code(text.replace(b"\r", b"\n")) + b">>> ")
            return "friendly", b""
        self.send(b"\r\n=== " if c == b"\r" else c)
        return "paste", text + c

    def raw(self, c: bytes, line: bytes) -> tuple[str, bytes]:
        if c == b"\x01":  # resets the raw REPL: what was typed so far is dropped
            self.send(b"\r\n" + RAW_PROMPT)
            return "raw", b""
        if c == b"\x02":
            self.send(b"\r\n" + self.banner + b"\r\n>>> ")
            return "friendly", b""
        if c == b"\x03":  # clears the line, says nothing
            return "raw", b""
        if c == b"\x04":
            if not line:
                self.soft_resets += 1
                self.send(b"OK\r\nFAKE: soft reboot\r\n" + RAW_PROMPT)
                return "raw", b""
            self.send(b"OK")
            err = self.run_code(line)
            if not self.silent:
                self.send(b"\x04" + err + b"\x04>")
            return "raw", b""
        return "raw", line + c


def main() -> None:
    """As a program (for execpty:): announce the pty like QEMU, then serve until killed."""
    board = FakeBoard(silent_after=int(os.environ["FAKE_SILENT_AFTER"])
                      if os.environ.get("FAKE_SILENT_AFTER") else None,
                      boot_delay=float(os.environ.get("FAKE_BOOT_DELAY", "0")),
                      start_in=os.environ.get("FAKE_START_IN", "boot"))
    print(f"char device redirected to {board.path} (label serial0)", flush=True)
    board.serve()


if __name__ == "__main__":
    sys.exit(main())
