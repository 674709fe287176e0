"""A session with a labgrid coordinator, through labgrid's public client API only.

What mpforge uses of labgrid (26.x, the major ``pyproject.toml`` pins), all of it public:

- :func:`labgrid.remote.client.start_session` and the :class:`ClientSession` it returns:
  its ``places`` and ``resources`` (kept up to date by the coordinator's stream),
  ``sync_with_coordinator``, ``get_target_resources``, ``stop``/``close``, and its
  ``stub``: the coordinator's gRPC service (``AcquirePlace``, ``ReleasePlace``,
  ``CreateReservation``, ...) with the request messages of
  :mod:`labgrid.remote.generated.labgrid_coordinator_pb2`, the same calls labgrid's own
  client makes;
- power through a :class:`~labgrid.resource.remote.RemotePlace` on a
  :class:`~labgrid.Target` and the power driver that fits the place's power resource
  (:func:`Session.switch_power`), as a labgrid environment with a ``RemotePlace`` does.

The only labgrid module this package imports is this one (and
:mod:`mpforge.device.labgrid`, :mod:`mpforge.device.farm` build on it); the test
``tests/device/test_labgrid_public_api.py`` fails if any mpforge module reaches for a
private labgrid name.

**One session per coordinator and process at a time.** gRPC shares one TCP connection
among the channels of a process to the same address, and the coordinator knows a client
by that connection's peer address: a second stream over it is refused (an assertion in
the coordinator) until the first has ended. So sessions to one address are never open
side by side here: a session opened while this thread has one open to the same address
*is* that session (the outer block closes it), and another thread waits until it is
closed. Sessions are short (one acquire, release or power switch: 5-20 ms), so the
wait is short too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mpforge.core.errors import FarmError

Note = Callable[[str], None]

#: the power resources a place may have, and the labgrid drivers that switch each (in
#: activation order), as ``labgrid-client power`` chooses them
POWER_DRIVERS: dict[str, tuple[str, ...]] = {
    "NetworkPowerPort": ("NetworkPowerDriver",),
    "NetworkUSBPowerPort": ("USBPowerDriver",),
    "NetworkSiSPMPowerPort": ("SiSPMPowerDriver",),
    "PDUDaemonPort": ("PDUDaemonDriver",),
    "TasmotaPowerPort": ("TasmotaPowerDriver",),
    "NetworkYKUSHPowerPort": ("YKUSHPowerDriver",),
    "NetworkSysfsGPIO": ("GpioDigitalOutputDriver", "DigitalOutputPowerDriver"),
}
POWER_ACTIONS = ("on", "off", "cycle", "get")

#: held by the thread that has sessions open, for as long as it has (see the docstring)
_SESSIONS_LOCK = threading.RLock()
#: address -> [the open session, how many blocks use it]; only the lock's holder reads it
_OPEN: dict[str, list[Any]] = {}
#: labgrid's RemotePlaceManager is one object per process: one power switch at a time
_REMOTE_PLACES = threading.Lock()


def client() -> Any:
    """labgrid's client module, or a :class:`FarmError` saying how to install it."""
    try:
        from labgrid.remote import client as labgrid_client
    except ImportError:
        raise FarmError("labgrid is not installed", "pip install -e '.[farm]' (labgrid from PyPI)") from None
    return labgrid_client


def protocol() -> Any:
    """The coordinator's gRPC messages (labgrid's generated protocol module)."""
    client()
    from labgrid.remote.generated import labgrid_coordinator_pb2

    return labgrid_coordinator_pb2


@dataclass(frozen=True)
class PlaceState:
    """A place as the coordinator sees it."""

    name: str
    tags: dict[str, str]
    acquired: str | None  # ``host/user`` of the holder
    reservation: str | None  # the token of a reservation it is granted to
    matches: list[str] = field(default_factory=list)  # ``exporter/group/cls[/name]`` patterns


class Captured(logging.Handler):
    """labgrid's log lines while mpforge calls it: kept for error details, never printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.stdout = io.StringIO()  # what labgrid printed

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().splitlines()[0])


@contextlib.contextmanager
def quiet() -> Iterator[Captured]:
    """Keep labgrid's prints and log records off the user's terminal (the library never
    prints); what it said is in the handler's ``lines``."""
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(handler.stdout):
            yield handler
    finally:
        root.removeHandler(handler)


class Session:
    """One short session with a labgrid coordinator (a context manager); ``note`` hears
    what a user should know."""

    def __init__(self, address: str, note: Note | None = None) -> None:
        self.address = address
        self.note = note or (lambda line: None)
        self.session: Any = None

    def __enter__(self) -> Session:
        labgrid_client = client()
        _SESSIONS_LOCK.acquire()
        try:
            if self.address in _OPEN:
                _OPEN[self.address][1] += 1
            else:
                with quiet() as said:
                    try:
                        _OPEN[self.address] = [labgrid_client.start_session(self.address), 1]
                    except labgrid_client.Error:
                        detail = said.lines[-1] if said.lines else ""
                        raise FarmError(f"cannot reach the labgrid coordinator at {self.address}"
                                        + (f": {detail}" if detail else ""),
                                        "start one (`invoke farm --start` for a local farm) or set "
                                        "LG_COORDINATOR to its HOST:PORT") from None
            self.session = _OPEN[self.address][0]
        except BaseException:
            _SESSIONS_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.session is None:
            return
        self.session = None
        try:
            entry = _OPEN[self.address]
            entry[1] -= 1
            if entry[1] == 0:
                del _OPEN[self.address]
                with quiet(), contextlib.suppress(Exception):
                    entry[0].loop.run_until_complete(entry[0].stop())
                    entry[0].loop.run_until_complete(entry[0].close())
        finally:
            _SESSIONS_LOCK.release()

    @property
    def identity(self) -> str:
        """Who this client is to the coordinator: ``host/user``."""
        return f"{self.session.gethostname()}/{self.session.getuser()}"

    def call(self, coroutine: Any) -> Any:
        """Run one call to the coordinator (a coroutine of the session's ``stub`` or the
        session); its refusal becomes a :class:`FarmError`."""
        import grpc

        labgrid_client = client()
        with quiet() as said:
            try:
                return self.session.loop.run_until_complete(coroutine)
            except grpc.aio.AioRpcError as exc:
                raise FarmError(f"the coordinator at {self.address} refused: {exc.details()}") from None
            except labgrid_client.Error as exc:
                raise FarmError(f"labgrid: {exc}", "; ".join(said.lines[-2:])) from None

    def call_sync(self, call: Callable[[], Any]) -> Any:
        """A synchronous labgrid client call; its refusal becomes a :class:`FarmError`."""
        labgrid_client = client()
        with quiet() as said:
            try:
                return call()
            except labgrid_client.Error as exc:
                raise FarmError(f"labgrid: {exc}", "; ".join(said.lines[-2:])) from None

    def sync(self) -> None:
        """Bring this session's view of places and resources up to date."""
        if not self.call(self.session.sync_with_coordinator()):
            raise FarmError(f"lost the labgrid coordinator at {self.address}",
                            "is it still running? (`invoke farm` shows a local farm)")

    def pause(self, seconds: float) -> None:
        """Wait, taking in the coordinator's updates meanwhile."""
        self.call(asyncio.sleep(seconds))

    # --- places -------------------------------------------------------------------------

    def places(self) -> dict[str, PlaceState]:
        """Every place the coordinator knows, by name."""
        self.sync()
        return {name: PlaceState(name, dict(p.tags), p.acquired, p.reservation or None,
                                 [repr(m) for m in p.matches])
                for name, p in sorted(self.session.places.items())}

    def place(self, name: str) -> Any:
        """labgrid's own record of the place ``name``, or a :class:`FarmError` naming those there are."""
        found = self.session.places.get(name)
        if found is None:
            known = ", ".join(sorted(self.session.places)) or "none"
            raise FarmError(f"no place '{name}' at the coordinator {self.address}", f"places there: {known}")
        return found

    def create_place(self, name: str, pattern: str, tags: dict[str, str]) -> None:
        """A new place ``name`` matching the resources ``pattern`` (``exporter/group/*``), tagged ``tags``."""
        proto, stub = protocol(), self.session.stub
        self.call(stub.AddPlace(proto.AddPlaceRequest(name=name)))
        self.call(stub.AddPlaceMatch(proto.AddPlaceMatchRequest(placename=name, pattern=pattern)))
        self.call(stub.SetPlaceTags(proto.SetPlaceTagsRequest(placename=name, tags=tags)))

    def release_place(self, name: str, fromuser: str | None = None) -> None:
        """Release ``name`` (held by ``fromuser`` only, when given: what ``labgrid-client
        release-from`` does)."""
        proto = protocol()
        request = (proto.ReleasePlaceRequest(placename=name, fromuser=fromuser) if fromuser
                   else proto.ReleasePlaceRequest(placename=name))
        self.call(self.session.stub.ReleasePlace(request))
        self.sync()

    # --- power --------------------------------------------------------------------------

    def switch_power(self, name: str, action: str, delay: float | None = None) -> bool | None:
        """Switch the power of the place ``name`` (acquired by this identity) through a
        :class:`RemotePlace` on a target of its own and the driver that fits its power
        resource (:data:`POWER_DRIVERS`); ``get`` returns whether it is on. ``delay``:
        seconds off in a ``cycle`` (None: the driver's default)."""
        if action not in POWER_ACTIONS:
            raise FarmError(f"unknown power action '{action}'", "on, off, cycle or get")
        client()
        import labgrid.driver  # noqa: F401  (registers the drivers with the factory)
        from labgrid import Target, target_factory
        from labgrid.resource.remote import RemotePlace, RemotePlaceManager

        with _REMOTE_PLACES:
            manager = RemotePlaceManager.get()
            manager.session, manager.loop = self.session, self.session.loop  # this session, not one of its own
            target = Target(name)
            try:
                self.call_sync(lambda: RemotePlace(target, name=name))
                kinds = [type(r).__name__ for r in target.resources]
                kind = next((k for k in kinds if k in POWER_DRIVERS), None)
                if kind is None:
                    raise FarmError(f"place {name} has no power switch (its resources: {', '.join(kinds)})",
                                    f"add one to its exporter: labgrid-client -p {name} add-match "
                                    "EXPORTER/GROUP/NetworkPowerPort")
                drivers = [target_factory.make_driver(target, cls, None, {}) for cls in POWER_DRIVERS[kind]]
                driver = drivers[-1]
                target.activate(driver)
                if delay is not None:
                    driver.delay = delay
                result = self.call_sync(getattr(driver, action))
            except FarmError:
                raise
            except Exception as exc:  # the power driver's own failure (HTTP, USB, ...)
                raise FarmError(f"power {action} of {name} failed: {exc}",
                                "is the place's power switch (or the farm's power service) reachable?") from None
            finally:
                with contextlib.suppress(Exception):
                    target.cleanup()
                manager.session = manager.loop = None
        return bool(result) if action == "get" else None
