"""The boards a command talks to: a ``--device`` spec turned into open-able boards, held for
the command and let go on every way out.

``invoke test``, ``run``, ``repl`` and ``deploy`` take one ``--device`` spec, parsed
(:mod:`mpforge.device.spec`). Most specs are a board already (``/dev/ttyACM0``, ``auto``,
``rfc2217://``, ``execpty:``: see :mod:`mpforge.device.transport`). A ``labgrid:`` spec
(:class:`~mpforge.device.spec.PlaceSpec`) names places of a farm
(:mod:`mpforge.device.labgrid`): they are acquired here, for the whole command, and
released when it ends, whatever ends it (success, an error, Ctrl-C, SIGTERM); the
board is then the place's serial URL. :func:`held` gives the boards of one spec:

- ``held(spec, 1)`` for ``repl``/``run``/``deploy``: one board;
- ``held(spec, N)`` for a sharded ``test``: N ``execpty:`` programs (one emulator per
  shard), up to N places of a farm (fewer when fewer are free: ``note`` says so),
  or the one board a serial port is.

A :class:`Board` knows how to bring itself back when it stops answering
(:meth:`Board.recover`): a farm place with a power resource is power-cycled through
labgrid (``cycle``); an ``execpty:`` board is simply started again by its next client
(a new emulator); a plain serial port can only be waited for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import TransportError
from mpforge.core.executor import Executor
from mpforge.device import labgrid as lg
from mpforge.device.spec import DeviceSpec, PlaceSpec, SerialUrl
from mpforge.device.transport import BANNER_TIMEOUT, RawRepl, device_specs, open_device

Note = Callable[[str], None]
#: seconds a power-cycled board is off before it is switched on again
CYCLE_OFF = 0.5
#: seconds a recovered board has to show its prompt again
RECOVERY_TIMEOUT = 20.0


@dataclass
class Board:
    """One board to talk to: ``spec`` is what :func:`~mpforge.device.transport.open_device`
    opens (the place's URL for a farm place); ``name`` what a verdict names (the place,
    or the spec); ``lease`` the farm place behind it, if any."""

    spec: DeviceSpec
    name: str
    lease: lg.Lease | None = None
    banner: str = ""  # the board's ``MicroPython ...`` line, once read (:func:`read_banner`)
    recoveries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def restarts_itself(self) -> bool:
        """An ``execpty:`` board is a new program (a fresh emulator) for each client."""
        return self.spec.restarts_itself

    def describe(self) -> dict[str, str]:
        """What a verdict says about the board: the place, its exporter and host (farm),
        or the device spec; and its banner."""
        about = dict(self.lease.describe()) if self.lease else {"device": self.name}
        if self.banner:
            about["banner"] = self.banner
        return about

    def recover(self, note: Note | None = None, timeout: float = RECOVERY_TIMEOUT,
                executor: Executor | None = None) -> bool:
        """Bring a board that stopped answering back to its prompt: power-cycle a farm
        place that has a power resource, then wait for the prompt. False: it did not
        come back (drop it). An ``execpty:`` board comes back by itself (its next
        client starts it again)."""
        say = note or (lambda line: None)
        self.recoveries += 1
        if self.restarts_itself:
            say(f"{self.name}: a fresh instance is started for the remaining tests")
            return True
        if self.lease is not None and self.lease.has_power:
            try:
                lg.power(self.lease, "cycle", delay=CYCLE_OFF, note=note)
            except TransportError as exc:
                say(f"{self.name}: power cycle failed: {exc.message}")
                return False
            say(f"{self.name}: power-cycled through labgrid")
        try:
            opened = open_device(self.spec, executor=executor)
        except TransportError as exc:
            say(f"{self.name}: cannot be opened again: {exc.message}")
            return False
        try:
            RawRepl(opened.port, silence=2.0).wait_for_prompt(timeout)
            return True
        except TransportError as exc:
            say(f"{self.name}: did not come back: {exc.message}")
            return False
        finally:
            opened.close()


def read_banner(board: Board, *, silence: float = 5.0, timeout: float = BANNER_TIMEOUT,
                executor: Executor | None = None, wait: float = 0.0) -> str:
    """The board's ``MicroPython ...`` line (its firmware version and build), read by
    bringing it to the prompt and asking for the banner again (Ctrl-B in the friendly
    REPL); kept in ``board.banner``."""
    opened = open_device(board.spec, executor=executor, wait=wait)
    try:
        repl = RawRepl(opened.port, silence=silence)
        repl.wait_for_prompt(timeout)
        repl.write(b"\x02")
        text = repl.read_until(b">>> ", silence).decode("utf-8", "replace")
    finally:
        opened.close()
    board.banner = next((line.strip() for line in text.splitlines() if "MicroPython" in line), "")
    return board.banner


@contextlib.contextmanager
def held(spec: DeviceSpec, count: int = 1, *, wait: float = 0.0, note: Note | None = None,
         root: Path | None = None, coordinator: str | None = None) -> Iterator[list[Board]]:
    """The boards of ``spec`` for the block (see the module docstring): farm places are
    acquired first and released on every way out."""
    if not isinstance(spec, PlaceSpec):
        yield [Board(s, str(s)) for s in device_specs(spec, count)]
        return
    if count > 1:
        with lg.leased_many(spec, count, coordinator=coordinator, wait=wait, note=note, root=root) as leases:
            yield [Board(SerialUrl(lease.url), lease.place, lease) for lease in leases]
    else:
        with lg.leased(spec, coordinator=coordinator, wait=wait, note=note, root=root) as lease:
            yield [Board(SerialUrl(lease.url), lease.place, lease)]


@contextlib.contextmanager
def one(spec: DeviceSpec, *, wait: float = 0.0, note: Note | None = None,
        root: Path | None = None) -> Iterator[Board]:
    """The one board of ``spec`` for the block (``repl``, ``run``, ``deploy``)."""
    with held(spec, 1, wait=wait, note=note, root=root) as boards:
        yield boards[0]

