"""The places of a labgrid farm as devices: ``labgrid:PLACE`` and ``labgrid:TAG=VALUE[,...]``.

labgrid (https://labgrid.readthedocs.io, ``pip install -e '.[farm]'``) is the engine of a
lab: a *coordinator* knows the *places* (a board with its serial port and power switch,
tagged ``board=PYBV10``); *exporters* on the hosts the boards hang off publish their
resources; a client *acquires* a place (no one else may use it until it is released),
or makes a *reservation* for any place whose tags match and acquires the place it is
granted. mpforge is such a client, through labgrid's public client API
(:mod:`mpforge.device.coordinator` says which parts); it never runs ``labgrid-client``.

Device specs (parsed by :mod:`mpforge.device.spec`):

``labgrid:pyb-2``                  the place named ``pyb-2``
``labgrid:board=PYBV10_QEMU``      any free place tagged so (several tags: ``a=1,b=2``)

The coordinator is the ``coordinator`` argument, else ``LG_COORDINATOR`` (labgrid's own
variable, ``HOST:PORT``), else the local farm of this checkout (``invoke farm start``,
:mod:`mpforge.device.farm`), else labgrid's default ``127.0.0.1:20408``. Who holds a
place is labgrid's identity ``host/user`` (``LG_HOSTNAME``, ``LG_USERNAME``): give each
CI job its own ``LG_USERNAME``.

Once acquired, the exporter serves the place's serial port through ser2net in RFC 2217
mode and the place shows a ``NetworkSerialPort`` with a port number. pyserial's
``rfc2217://HOST:PORT`` then waits for an answer to setting the modem lines, which
ser2net never gives for a port without them (a pty: QEMU, a fake board, a USB-serial
bridge without flow control): the URL needs ``?ign_set_control``
(:func:`serial_url`, and :func:`mpforge.device.spec.with_ign_set_control` for a plain
``--device rfc2217://``).

Every lease is released on every way out: :func:`leased` releases in ``finally``, with
Ctrl-C and SIGTERM held back until the release is through; a Ctrl-C in the middle of
acquiring releases what was already acquired. A place held by someone else is waited
for (``wait`` seconds, through a reservation, so the waiters are served in order) or
refused with :class:`~mpforge.core.errors.PlaceBusy` naming the holder.

The coordinator is reached in short sessions (one per acquire, release or power
switch, 5-20 ms each; :class:`mpforge.device.coordinator.Session`): the place stays
acquired between them (labgrid ties a place to the identity, not to a connection), and
no connection sits idle through a test run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpforge.core.errors import FarmError, PlaceBusy
from mpforge.core.state import deferred_signals
from mpforge.device.coordinator import POWER_DRIVERS, Session, protocol
from mpforge.device.coordinator import PlaceState as PlaceState  # re-exported: what places() gives
from mpforge.device.farm.state import running_coordinator
from mpforge.device.spec import PlaceSpec as PlaceSpec  # the labgrid: grammar: mpforge.device.spec
from mpforge.device.spec import parse_place as parse_spec

#: labgrid's default coordinator address
DEFAULT_COORDINATOR = "127.0.0.1:20408"
#: how long an acquired place may take to show its serial port (the exporter starts
#: ser2net, waits 0.5 s to see it live, then publishes the port)
SERIAL_TIMEOUT = 15.0
#: pause between polls of the coordinator while waiting
POLL = 0.2
#: resource classes labgrid can switch power with (as ``labgrid-client power`` does)
POWER_RESOURCES = set(POWER_DRIVERS)
#: resource classes a firmware could be written through (a DFU device: a pyboard in its
#: bootloader, a USB mass storage, a flasher); mpforge's deploy refuses a place without one
FLASH_RESOURCES = {"NetworkDFUDevice", "DFUDevice", "NetworkUSBFlashableDevice", "USBFlashableDevice",
                   "NetworkUSBMassStorage", "USBMassStorage", "NetworkFlashrom", "Flashrom",
                   "NetworkDediprogFlasher", "DediprogFlasher"}

Note = Callable[[str], None]


def serial_url(host: str, port: int, protocol: str = "rfc2217") -> str:
    """The pyserial URL of a ``NetworkSerialPort``: RFC 2217 with ``ign_set_control``
    (see the module docstring), or a plain socket for ``protocol="raw"``."""
    if protocol == "raw":
        return f"socket://{host}:{port}"
    return f"rfc2217://{host}:{port}?ign_set_control"


def coordinator_address(explicit: str | None = None, root: Path | None = None) -> str:
    """Where the coordinator is: ``explicit``, else ``LG_COORDINATOR``, else the local farm
    of the checkout at ``root`` (if one runs), else labgrid's default."""
    if explicit:
        return explicit
    env = os.environ.get("LG_COORDINATOR", "").strip()
    if env:
        return env
    if root is not None:
        local = running_coordinator(root)
        if local:
            return local
    return DEFAULT_COORDINATOR


@dataclass(frozen=True)
class Lease:
    """An acquired place: where its serial port is, and what to name in a verdict."""

    place: str
    url: str  # for pyserial's serial_for_url
    exporter: str  # the exporter's name
    host: str  # the host the exporter serves the serial port from
    tags: dict[str, str]
    coordinator: str
    has_power: bool  # the place has a power resource (:func:`power` can switch it)
    resources: tuple[str, ...] = ()  # the classes of the place's resources (NetworkSerialPort, ...)

    @property
    def flashing(self) -> list[str]:
        """The place's resources a firmware can be written through (:data:`FLASH_RESOURCES`)."""
        return sorted(r for r in self.resources if r in FLASH_RESOURCES)

    def describe(self) -> dict[str, str]:
        """The place as a verdict names it (JUnit properties, JSON)."""
        return {"place": self.place, "exporter": self.exporter, "host": self.host,
                "coordinator": self.coordinator}


class Coordinator(Session):
    """One short session with a labgrid coordinator (a context manager), with the calls a
    device user makes: acquire (by name or tags, waiting through reservations), release,
    power.

    ``note`` hears what a user should know (waiting for a place, fewer places than
    asked for, a place someone else released for us).
    """

    def __enter__(self) -> Coordinator:
        super().__enter__()
        return self

    # --- places -----------------------------------------------------------------------

    def _matching(self, filters: dict[str, str]) -> list[Any]:
        """The places whose tags include ``filters`` (the name counts as tag ``name``)."""
        found = [p for name, p in sorted(self.session.places.items())
                 if all(({**p.tags, "name": name}).get(k) == v for k, v in filters.items())]
        if not found:
            tags = sorted({f"{k}={v}" for p in self.session.places.values() for k, v in p.tags.items()})
            raise FarmError(f"no place at {self.address} is tagged "
                            f"{','.join(f'{k}={v}' for k, v in filters.items())}",
                            f"tags there: {', '.join(tags) or 'none'}")
        return found

    def _holder(self, place: Any) -> str | None:
        """Who keeps ``place`` from us: its holder, or a reservation for someone else."""
        if place.acquired:
            return str(place.acquired)
        if place.reservation:
            return f"a reservation ({place.reservation})"
        return None

    def _acquire_rpc(self, name: str) -> None:
        proto = protocol()
        self.call(self.session.stub.AcquirePlace(proto.AcquirePlaceRequest(placename=name)))
        self.sync()

    def _release_rpc(self, name: str) -> None:
        proto = protocol()
        self.call(self.session.stub.ReleasePlace(proto.ReleasePlaceRequest(placename=name)))
        self.sync()

    # --- reservations -----------------------------------------------------------------

    def _reserve(self, filters: dict[str, str]) -> str:
        proto = protocol()
        request = proto.CreateReservationRequest(
            filters={"main": proto.Reservation.Filter(filter=filters)}, prio=0.0)
        response = self.call(self.session.stub.CreateReservation(request))
        return str(response.reservation.token)

    def _granted(self, token: str) -> str | None:
        """The place reservation ``token`` was granted, or None while it waits."""
        proto = protocol()
        response = self.call(self.session.stub.PollReservation(proto.PollReservationRequest(token=token)))
        allocations = dict(response.reservation.allocations)
        return str(allocations["main"]) if allocations.get("main") else None

    def _cancel(self, token: str) -> None:
        proto = protocol()
        with contextlib.suppress(FarmError):  # expired meanwhile: nothing to cancel
            self.call(self.session.stub.CancelReservation(proto.CancelReservationRequest(token=token)))

    def _wait_for_grants(self, tokens: list[str], wait: float, *, all_of: bool) -> dict[str, str]:
        """Poll reservations until one (or, ``all_of``, each) is granted or ``wait`` s pass;
        token -> place granted."""
        deadline = time.monotonic() + wait
        while True:
            granted = {t: p for t in tokens if (p := self._granted(t))}
            done = len(granted) == len(tokens) if all_of else bool(granted)
            if done or time.monotonic() >= deadline:
                return granted
            self.pause(min(POLL, max(0.0, deadline - time.monotonic())))

    # --- acquiring --------------------------------------------------------------------

    def acquire(self, spec: PlaceSpec | str, wait: float = 0.0) -> Lease:
        """Acquire the place ``spec`` names, or a free place matching its tags.

        A place held by someone else is waited for up to ``wait`` s (saying for whom),
        then refused with :class:`PlaceBusy`. A place this identity already holds is
        refused too: an earlier run did not release it, and two runs must not share it.
        """
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        leases = self._acquire(spec, 1, wait)
        return leases[0]

    def acquire_many(self, spec: PlaceSpec | str, count: int, wait: float = 0.0) -> list[Lease]:
        """Acquire up to ``count`` places matching ``spec`` (one reservation each), for
        sharding. Fewer free than ``count``: those there are (and :attr:`note` says so);
        none free: wait up to ``wait`` s for the first, then :class:`PlaceBusy`."""
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        return self._acquire(spec, 1 if spec.place else max(1, count), wait)

    def _acquire(self, spec: PlaceSpec, count: int, wait: float) -> list[Lease]:
        self.sync()
        if spec.place:
            place = self.place(spec.place)
            if place.acquired == self.identity:
                raise PlaceBusy(f"place {place.name} is already acquired by you ({self.identity})",
                                f"an earlier run left it held: labgrid-client -p {place.name} release",
                                {place.name: self.identity})
        candidates = self._matching(spec.filters)
        taken: list[str] = []
        tokens: list[str] = []
        try:
            if spec.place and self._holder(candidates[0]) is None:
                try:
                    taken.append(spec.place)  # before the call: an interrupt may land after it
                    self._acquire_rpc(spec.place)
                except FarmError:
                    taken.clear()  # someone was quicker: wait for it below
                    self.sync()
            if not taken:
                tokens = [self._reserve(spec.filters) for _ in range(count)]
                granted = self._wait_for_grants(tokens, 0.0, all_of=True)
                if not granted:
                    busy = self._busy(spec)
                    if wait <= 0:
                        raise self._refusal(spec, busy)
                    self.note(f"{spec}: {self._who(busy)}; waiting up to {wait:g} s")
                    granted = self._wait_for_grants(tokens, wait, all_of=False)
                    if not granted:
                        raise self._refusal(spec, self._busy(spec), waited=wait)
                for token in [t for t in tokens if t not in granted]:
                    # still waiting: cancelled now, or it would take the next place freed
                    # (ours too, once released) and keep it from everyone for a minute
                    self._cancel(token)
                    tokens.remove(token)
                for token, name in granted.items():
                    taken.append(name)
                    try:
                        self._acquire_rpc(name)
                    except FarmError as exc:
                        taken.remove(name)
                        self.note(f"{name} was granted but could not be acquired ({exc.message}); "
                                  "going on without it")
                    finally:
                        self._cancel(token)
                        tokens.remove(token)
                if not taken:
                    raise self._refusal(spec, self._busy(spec))
                if len(taken) < count:
                    others = {p: h for p, h in self._busy(spec).items() if p not in taken}
                    held = f" ({self._who(others)})" if others else ""
                    self.note(f"{count} places asked for with {spec}, {len(taken)} free{held}: "
                              f"using {', '.join(taken)}")
            return [self._lease(name) for name in taken]
        except BaseException:
            with deferred_signals():
                for token in tokens:
                    self._cancel(token)
                self._release_quietly(taken)
            raise

    def _busy(self, spec: PlaceSpec) -> dict[str, str]:
        """place -> its holder, for the places matching ``spec`` that are not free."""
        self.sync()
        return {p.name: h for p in self._matching(spec.filters) if (h := self._holder(p))}

    @staticmethod
    def _who(busy: dict[str, str]) -> str:
        return ", ".join(f"{place} held by {holder}" for place, holder in busy.items()) or "none free"

    def _refusal(self, spec: PlaceSpec, busy: dict[str, str], waited: float = 0.0) -> PlaceBusy:
        after = f" after waiting {waited:g} s" if waited else ""
        return PlaceBusy(f"{spec}: no free place{after} ({self._who(busy)})",
                         "wait for one (--wait SECONDS) or ask its holder to release it",
                         busy)

    def _release_quietly(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(FarmError):
                self.release(name)

    def _lease(self, name: str) -> Lease:
        """The lease of a place just acquired: wait for its serial port to be served."""
        deadline = time.monotonic() + SERIAL_TIMEOUT
        while True:
            place = self.place(name)
            resources = self.call_sync(functools.partial(self.session.get_target_resources, place))
            serial = [(key, r) for key, r in resources.items() if r.cls == "NetworkSerialPort"]
            if not serial and place.acquired_resources:
                raise FarmError(f"place {name} has no serial port",
                                f"add one to its exporter: labgrid-client -p {name} add-match "
                                "EXPORTER/GROUP/NetworkSerialPort")
            ready = [(key, r) for key, r in serial if r.avail and r.args.get("port")]
            if ready:
                (_, _), resource = ready[0]
                exporter = next((path[0] for path in place.acquired_resources
                                 if path[2] == "NetworkSerialPort"), "?")
                args = resource.args
                return Lease(name, serial_url(args["host"], int(args["port"]), args.get("protocol", "rfc2217")),
                             exporter, str(args["host"]), dict(place.tags), self.address,
                             any(r.cls in POWER_RESOURCES for r in resources.values()),
                             tuple(sorted({str(r.cls) for r in resources.values()})))
            if time.monotonic() >= deadline:
                raise FarmError(f"place {name}: its serial port was not served within {SERIAL_TIMEOUT:g} s",
                                "is its exporter running, and ser2net installed on that host?")
            self.pause(POLL / 2)

    def release(self, name: str) -> None:
        """Release ``name`` if this identity holds it (a place someone took over, or that
        is already free, is left as it is, with a note)."""
        self.sync()
        place = self.place(name)
        if not place.acquired:
            self.note(f"{name} was already released")
            return
        if place.acquired != self.identity:
            self.note(f"{name} is now held by {place.acquired}; left to them")
            return
        self._release_rpc(name)

    def power(self, name: str, action: str = "cycle", delay: float | None = None) -> bool | None:
        """Switch the power of a place this identity holds (``on``, ``off``, ``cycle``)
        through its power resource and labgrid's driver for it (a network switch, a USB
        hub port, the emulated boards' stand-in: :meth:`Session.switch_power`); ``get``
        returns whether it is on. ``delay``: seconds off in a ``cycle`` (None: the
        driver's default, 2 s for a network switch)."""
        self.sync()
        place = self.place(name)
        if place.acquired != self.identity:
            raise FarmError(f"cannot switch the power of {name}: it is not acquired by you "
                            f"({place.acquired or 'by nobody'})", "acquire it first")
        return self.switch_power(name, action, delay)


# --- the device API: context managers -----------------------------------------------------


@contextlib.contextmanager
def leased(spec: PlaceSpec | str, *, coordinator: str | None = None, wait: float = 0.0,
           note: Note | None = None, root: Path | None = None) -> Iterator[Lease]:
    """Hold one place for the block: ``with leased("labgrid:pyb-1") as lease: open(lease.url)``.

    Released on every way out (see the module docstring). ``root`` lets the local farm of
    that checkout serve as the coordinator when none is named.
    """
    address = coordinator_address(coordinator, root)
    with Coordinator(address, note) as farm:
        lease = farm.acquire(spec, wait)
    try:
        yield lease
    finally:
        release([lease], note=note)


@contextlib.contextmanager
def leased_many(spec: PlaceSpec | str, count: int, *, coordinator: str | None = None, wait: float = 0.0,
                note: Note | None = None, root: Path | None = None) -> Iterator[list[Lease]]:
    """Hold up to ``count`` places matching ``spec`` for the block (one shard each); fewer
    when fewer are free (``note`` says so). Released on every way out."""
    address = coordinator_address(coordinator, root)
    with Coordinator(address, note) as farm:
        leases = farm.acquire_many(spec, count, wait)
    try:
        yield leases
    finally:
        release(leases, note=note)


def release(leases: list[Lease], note: Note | None = None) -> None:
    """Release ``leases`` (each at its own coordinator), Ctrl-C and SIGTERM held back until
    it is done."""
    with deferred_signals():
        by_address: dict[str, list[str]] = {}
        for lease in leases:
            by_address.setdefault(lease.coordinator, []).append(lease.place)
        for address, names in by_address.items():
            with Coordinator(address, note) as farm:
                for name in names:
                    farm.release(name)


def power(lease: Lease, action: str = "cycle", *, delay: float | None = None,
          note: Note | None = None) -> bool | None:
    """Switch the power of a leased place (``on``, ``off``, ``cycle`` with ``delay`` s
    off; ``get``: is it on?), as :meth:`Coordinator.power`."""
    with Coordinator(lease.coordinator, note) as farm:
        return farm.power(lease.place, action, delay)
