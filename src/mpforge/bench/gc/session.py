"""bench-gc on the emulated board: one QEMU, programs run over the raw REPL.

Programs go through :class:`mpforge.device.transport.RawRepl`, the one raw-REPL sender,
paced for this board (:func:`paced_repl`): the emulated pyboard's UART holds 64
received bytes. When they are not read in time, its interrupt handler stops taking
more by switching the receive interrupt off; QEMU 7's model of that UART keeps the
interrupt raised regardless, and the board spends the rest of its life entering the
handler (the REPL never answers again). Sent :data:`SEND_CHUNK` bytes at a time with
a pause of :data:`SEND_PAUSE`, the REPL keeps up. A board that stops answering anyway
(:class:`~mpforge.core.errors.TargetSilent`) is started again by
:func:`mpforge.bench.gc.emulated.measure_variant`; any other transport problem is a
:class:`~mpforge.core.errors.GuestError`, like a program that raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mpforge.bench.gc.guest import calibration_program, scrub_program
from mpforge.bench.gc.trace import Probes, parse_calibration, trace_events
from mpforge.core.errors import GuestError, TargetSilent, TransportError

if TYPE_CHECKING:
    import serial

    from mpforge.device.transport import Opened, RawRepl

#: Programs go to the board this many bytes at a time, with this pause (seconds)
#: after each piece: less than the 64 bytes its UART holds (see the module docstring).
SEND_CHUNK = 32
SEND_PAUSE = 0.001
#: A workload may run this long (wall seconds) before it counts as hung.
CELL_TIMEOUT = 120.0


def icount_command(command: str) -> str:
    """The emulator command with ``-icount shift=0`` (one instruction per virtual ns)."""
    if "-icount" in command.split():
        return command
    return f"{command} -icount shift=0"


def paced_repl(port: serial.SerialBase, silence: float) -> RawRepl:
    """The raw REPL on ``port``, sending code in the small paced pieces this board needs."""
    from mpforge.device.transport import RawRepl

    return RawRepl(port, silence=silence, chunk=SEND_CHUNK, pause=SEND_PAUSE)


class GuestSession:
    """One emulated board: boot, calibrate, then a soft reset before every program.

    With ``probes`` and ``log``, QEMU traces collections into ``log`` and
    :attr:`events` holds what the last program traced.
    """

    def __init__(self, command: str, silence: float = 15.0, probes: Probes | None = None,
                 log: Path | None = None) -> None:
        self.probes = probes if log else None
        self.log = log
        self.command = f"{command} {probes.qemu_args(log)}" if probes and log else command
        self.silence = silence
        self._opened: Opened | None = None
        self.repl: RawRepl | None = None
        self._log_offset = 0
        self.events = ""

    def __enter__(self) -> GuestSession:
        from mpforge.device.spec import ExecPty
        from mpforge.device.transport import open_device

        if self.log and self.log.exists():
            self.log.unlink()
        self._opened = open_device(ExecPty(self.command))
        try:
            self.repl = paced_repl(self._opened.port, self.silence)
            self.repl.wait_for_prompt()
            self.repl.enter(soft_reset=False)
        except BaseException:
            self._opened.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()

    def _read_trace(self) -> str:
        if not self.log or not self.probes or not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1  # a line QEMU is still writing waits for the next read
        self._log_offset += cut
        return trace_events(data[:cut].decode("ascii", "replace"), self.probes)

    def run(self, program: str, timeout: float = CELL_TIMEOUT, scrub: bool = True) -> str:
        """Soft-reset (a fresh heap) and run ``program``; its output, or :class:`GuestError`.

        ``scrub``: first run :func:`~mpforge.bench.gc.guest.scrub_program` after a soft
        reset of its own, so that ``program`` finds the memory the same whatever ran
        before it.
        """
        assert self.repl is not None
        if scrub:
            self.repl.enter(soft_reset=True)
            _, err = self._exec(scrub_program().encode(), timeout)
            if err:
                raise GuestError("the scrub program raised an exception", "",
                                 err.decode("utf-8", "replace")[-600:])
        self.repl.enter(soft_reset=True)
        self._read_trace()  # what the reset (and the scrub) traced is not the program's
        out, err = self._exec(program.encode(), timeout)
        self.events = self._read_trace()
        text = out.decode("utf-8", "replace").replace("\r\n", "\n")
        if err:
            raise GuestError("the guest program raised an exception", "",
                             err.decode("utf-8", "replace")[-600:])
        return text

    def _exec(self, code: bytes, timeout: float) -> tuple[bytes, bytes]:
        """The raw REPL's exchange through :meth:`RawRepl.exec` (paced, see the module
        docstring): (output, error output). A silent board stays
        :class:`~mpforge.core.errors.TargetSilent` (the caller starts QEMU again); any
        other transport problem (code refused, a run past ``timeout``) is a
        :class:`GuestError`."""
        assert self.repl is not None
        try:
            return self.repl.exec(code, timeout)
        except TargetSilent:
            raise
        except TransportError as exc:
            raise GuestError(exc.message, exc.hint, exc.details) from exc

    def calibrate(self) -> float:
        return parse_calibration(self.run(calibration_program(), scrub=False))


def calibrated_session(command: str, what: str, *, silence: float = 15.0,
                       probes: Probes | None = None, log: Path | None = None
                       ) -> tuple[GuestSession, float]:
    """A booted board whose clock was checked, and its instructions per clock count.

    bench-gc and ``invoke perf`` both start boards this way: boot, run the calibration
    (:meth:`GuestSession.calibrate`) and refuse a clock that does not count one per guest
    instruction (an emulator not under ``-icount shift=0`` would time the host).
    ``what`` names the firmware in that error. The caller closes the session.
    """
    session = GuestSession(command, silence=silence, probes=probes, log=log).__enter__()
    try:
        ratio = session.calibrate()
    except BaseException:
        session.__exit__()
        raise
    if abs(ratio - 1) > 0.01:
        session.__exit__()
        raise GuestError(f"{what}: the guest clock counts {1 / ratio:.3f} per instruction, "
                         "not 1", "run the emulator with -icount shift=0")
    return session, ratio
