"""A fake MicroPython board on a pty: the raw REPL protocol, run by CPython.

Knobs (constructor arguments, or environment variables when run as a program
for ``execpty:``): ``silent_after`` (stop answering after N runs of code),
``garbage`` (noise sent before the banner, as from a board that is still booting),
``boot_delay`` (seconds of deafness at start, like a booting board). Code
containing ``HANG`` loops until Ctrl-C arrives, then reports a
KeyboardInterrupt, as MicroPython does.
"""

from __future__ import annotations

import contextlib
import io
import os
import pty
import select
import sys
import threading
import time
import tty

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"


class FakeBoard:
    def __init__(self, silent_after: int | None = None, garbage: bytes = b"",
                 boot_delay: float = 0.0, banner: str = "MicroPython v1.8.2 on fake; fake board",
                 on_bootloader=None) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.silent_after = silent_after
        self.garbage = garbage
        self.boot_delay = boot_delay
        self.banner = banner.encode()
        self.on_bootloader = on_bootloader  # pyb.bootloader(): the board leaves the serial port
        self.runs = 0
        self.soft_resets = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def start(self) -> "FakeBoard":
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_byte(self) -> bytes | None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    return os.read(self.master, 1)
                except OSError:
                    return None
        return None

    @property
    def silent(self) -> bool:
        return self.silent_after is not None and self.runs >= self.silent_after

    def run_code(self, code: bytes) -> tuple[bytes, bytes]:
        self.runs += 1
        if b"pyb.bootloader()" in code and self.on_bootloader:
            self.silent_after = 0  # gone: the chip now runs its DFU bootloader
            self.on_bootloader()
            return b"", b""
        if b"HANG" in code:
            while self.read_byte() not in (b"\x03", None):
                pass
            return b"", b"Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n"
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code.decode(), "<stdin>", "exec"), {"__name__": "__main__"})
        except Exception as exc:  # a board reports it on the error channel
            err.write(f"Traceback (most recent call last):\n{type(exc).__name__}: {exc}\n")
        return (out.getvalue().replace("\n", "\r\n").encode(),
                err.getvalue().replace("\n", "\r\n").encode())

    def serve(self) -> None:
        time.sleep(self.boot_delay)  # bytes sent meanwhile are lost, as on a booting board
        with contextlib.suppress(OSError):
            while select.select([self.master], [], [], 0)[0]:
                os.read(self.master, 1024)
        self.send(self.garbage + self.banner + b"\r\n>>> ")
        raw, line = False, b""
        while not self.stop.is_set():
            c = self.read_byte()
            if c is None or self.silent:
                continue
            if not raw:
                if c == b"\x03":
                    self.send(b"\r\n>>> ")
                elif c == b"\x04":  # soft reset from the friendly REPL: the banner again
                    self.send(b"FAKE: soft reboot\r\n" + self.banner + b"\r\n>>> ")
                elif c == b"\x01":
                    raw, line = True, b""
                    self.send(b"\r\n" + RAW_PROMPT)
                continue
            if c == b"\x01":  # resets the raw REPL: what was typed so far is dropped
                line = b""
                self.send(b"\r\n" + RAW_PROMPT)
            elif c == b"\x02":
                raw = False
                self.send(b"\r\n>>> ")
            elif c == b"\x03":
                line = b""
            elif c == b"\x04":
                if not line:
                    self.soft_resets += 1
                    self.send(b"OK\r\nFAKE: soft reboot\r\n" + RAW_PROMPT)
                    continue
                self.send(b"OK")
                out, err = self.run_code(line)
                line = b""
                if self.silent:
                    continue
                self.send(out + b"\x04" + err + b"\x04>")
            else:
                line += c


def main() -> None:
    """As a program (for execpty:): announce the pty like QEMU, then serve until killed."""
    board = FakeBoard(silent_after=int(os.environ["FAKE_SILENT_AFTER"])
                      if os.environ.get("FAKE_SILENT_AFTER") else None,
                      boot_delay=float(os.environ.get("FAKE_BOOT_DELAY", "0")))
    print(f"char device redirected to {board.path} (label serial0)", flush=True)
    board.serve()


if __name__ == "__main__":
    sys.exit(main())
