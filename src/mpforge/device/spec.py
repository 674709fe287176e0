"""The one grammar of a ``--device`` value: :func:`parse_device` turns the text into a typed
:class:`DeviceSpec`, once, where the text comes in (the command line, a runner's argv);
everything below takes the typed value.

============================================  ============================================
``/dev/ttyACM0``, ``COM3``, ``port:PATH``      :class:`SerialPath`: a local serial port
``rfc2217://host:port``, ``socket://h:p``      :class:`SerialUrl`: anything pyserial's
                                              ``serial_for_url`` opens (``loop://`` ...)
``auto``                                      :class:`Auto`: the one board found by USB id
                                              (resolved when opened:
                                              :func:`mpforge.device.transport.resolve_auto`)
``execpty:<command>``                         :class:`ExecPty`: a program offering a pty
                                              (QEMU with ``-serial pty``)
``labgrid:PLACE``, ``labgrid:TAG=VALUE[,..]``  :class:`PlaceSpec`: a place of a labgrid farm,
                                              by name or by tags
``dfu:serial=SERIAL``, ``dfu:path=BUS-PORT``   :class:`DfuSpec`: a DFU device (``deploy``)
``probe:SERIAL``                              :class:`ProbeSpec`: an SWD debug probe by its
                                              USB serial (``deploy``, ``debug``)
============================================  ============================================

A text is a URL when it holds ``://``; ``port:`` forces a serial port (``port:auto`` is a
port named ``auto``). Anything else without a known prefix is a serial port's path. A
malformed value is refused here, in one line naming it (:class:`DeviceSpecError`), before
anything is started or acquired. ``str(spec)`` writes a spec back as it parses again
(``parse_device(str(spec)) == spec``): that is how a shard's board reaches the test
runner's ``--device``.

This module is pure (no pyserial, no labgrid): the transport, the farm client, the
deploy flow and the runners all read the same types.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from mpforge.core.errors import DeviceSpecError

#: the prefixes of the grammar
SCHEME = "labgrid:"
EXECPTY = "execpty:"
DFU = "dfu:"
PROBE = "probe:"
PORT = "port:"
AUTO = "auto"

#: tag keys as labgrid accepts them; values (and place names): letters, digits, ``_-.``
_TAG_KEY = re.compile(r"[a-z][a-z0-9_]+\Z")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.-]+\Z")
_PLACE_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z")

#: the hint of a refused value, by form
PLACE_GRAMMAR = "use labgrid:PLACE or labgrid:TAG=VALUE[,TAG=VALUE] (e.g. labgrid:board=PYBV10_QEMU)"
DFU_GRAMMAR = "use dfu:serial=SERIAL or dfu:path=BUS-PORT (as `dfu-util -l` shows them)"
PROBE_GRAMMAR = "use probe:SERIAL (the probe's USB serial: `lsusb -v`, `pyocd list`)"
EXECPTY_GRAMMAR = "write the program after execpty: (e.g. execpty:qemu-system-arm ... -serial pty)"
GRAMMAR = ("a serial port (/dev/ttyACM0), auto, rfc2217://HOST:PORT, execpty:COMMAND, labgrid:PLACE, "
           "labgrid:TAG=VALUE, dfu:serial=SERIAL, dfu:path=BUS-PORT or probe:SERIAL")


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``--device`` value (one of the subclasses below)."""

    def __str__(self) -> str:  # pragma: no cover - every variant writes itself
        raise NotImplementedError

    @property
    def is_farm(self) -> bool:
        """A labgrid place: acquired (:mod:`mpforge.device.boards`) before it is opened."""
        return isinstance(self, PlaceSpec)

    @property
    def is_serial(self) -> bool:
        """A serial line a board's REPL answers on, here (a port, a URL, ``auto``): what a
        flash tool writes over and the board's banner is awaited on after a flash."""
        return isinstance(self, SerialPath | SerialUrl | Auto)

    @property
    def restarts_itself(self) -> bool:
        """An ``execpty:`` program: a new one (a fresh emulator) for each client and shard."""
        return isinstance(self, ExecPty)


@dataclass(frozen=True)
class SerialPath(DeviceSpec):
    """A local serial port: ``/dev/ttyACM0`` (``port:`` prefix dropped)."""

    path: str

    def __str__(self) -> str:
        # a path that would read as another form keeps its port: prefix
        ambiguous = self.path == AUTO or _prefix_of(self.path) is not None
        return PORT + self.path if ambiguous else self.path


@dataclass(frozen=True)
class SerialUrl(DeviceSpec):
    """A pyserial URL: ``rfc2217://host:port``, ``socket://host:port``, ``loop://``."""

    url: str

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0]

    @property
    def opened_url(self) -> str:
        """The URL given to pyserial: :func:`with_ign_set_control` applied."""
        return with_ign_set_control(self.url)

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Auto(DeviceSpec):
    """``auto``: the one board found by USB id, looked for each time it is opened."""

    def __str__(self) -> str:
        return AUTO


@dataclass(frozen=True)
class ExecPty(DeviceSpec):
    """``execpty:<command>``: start the program, talk to the pty it announces."""

    command: str

    @property
    def argv(self) -> list[str]:
        """The command as an argv list (shell-like words, never a shell)."""
        return shlex.split(self.command)

    def __str__(self) -> str:
        return EXECPTY + self.command


@dataclass(frozen=True)
class PlaceSpec(DeviceSpec):
    """``labgrid:PLACE`` (``place``) or ``labgrid:TAG=VALUE[,...]`` (``tags``, sorted): one place
    by name, or tags any place may match."""

    place: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def filters(self) -> dict[str, str]:
        """The tags as labgrid's reservation filter (a place's name is its tag ``name``)."""
        return {"name": self.place} if self.place else dict(self.tags)

    def __str__(self) -> str:
        return SCHEME + (self.place or ",".join(f"{k}={v}" for k, v in self.tags))


@dataclass(frozen=True)
class DfuSpec(DeviceSpec):
    """``dfu:serial=SERIAL`` or ``dfu:path=BUS-PORT``: the one DFU device to flash."""

    serial: str = ""
    path: str = ""

    def __str__(self) -> str:
        return f"{DFU}serial={self.serial}" if self.serial else f"{DFU}path={self.path}"


@dataclass(frozen=True)
class ProbeSpec(DeviceSpec):
    """``probe:SERIAL``: the SWD probe with this USB serial."""

    serial: str

    def __str__(self) -> str:
        return PROBE + self.serial


def _prefix_of(text: str) -> str | None:
    return next((p for p in (SCHEME, EXECPTY, DFU, PROBE, PORT) if text.startswith(p)), None)


def _refuse(text: str, why: str, hint: str) -> DeviceSpecError:
    return DeviceSpecError(text, f"device '{text}': {why}", hint)


def parse_device(text: str) -> DeviceSpec:
    """``text`` (a ``--device`` value) as its :class:`DeviceSpec`; a malformed one is one
    :class:`DeviceSpecError` line naming it, its hint the grammar of its form."""
    if not text.strip():
        raise _refuse(text, "names no board", f"give {GRAMMAR}")
    if text == AUTO:
        return Auto()
    prefix = _prefix_of(text)
    body = text[len(prefix):] if prefix else text
    if prefix == SCHEME:
        return _place(text, body.strip())
    if prefix == EXECPTY:
        try:
            argv = shlex.split(body)
        except ValueError as exc:  # an unclosed quote
            raise _refuse(text, f"the command cannot be split into words ({exc})", EXECPTY_GRAMMAR) from None
        if not argv:
            raise _refuse(text, "no command given", EXECPTY_GRAMMAR)
        return ExecPty(body)
    if prefix == DFU:
        key, _, value = body.partition("=")
        if key not in ("serial", "path") or not value:
            raise _refuse(text, "not serial=SERIAL or path=BUS-PORT", DFU_GRAMMAR)
        return DfuSpec(serial=value) if key == "serial" else DfuSpec(path=value)
    if prefix == PROBE:
        if not body.strip():
            raise _refuse(text, "names no probe", PROBE_GRAMMAR)
        return ProbeSpec(body.strip())
    if prefix == PORT and not body.strip():
        raise _refuse(text, "names no port", "use port:PATH (e.g. port:/dev/ttyACM0)")
    if "://" in body:
        return SerialUrl(body)
    return SerialPath(body)


def _place(text: str, body: str) -> PlaceSpec:
    if not body:
        raise _refuse(text, "names no place and no tags", PLACE_GRAMMAR)
    if "=" not in body:
        if not _PLACE_NAME.match(body):
            raise _refuse(text, f"'{body}' is not a place name (letters, digits, _ . -)", PLACE_GRAMMAR)
        return PlaceSpec(place=body)
    tags: dict[str, str] = {}
    for pair in body.split(","):
        key, eq, value = pair.strip().partition("=")
        if not eq or not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            raise _refuse(text, f"'{pair.strip()}' is not TAG=VALUE (a tag is lower case, 2 characters "
                          "at least; a value letters, digits, _ . -)", PLACE_GRAMMAR)
        if key in tags:
            raise _refuse(text, f"tag '{key}' given twice", PLACE_GRAMMAR)
        tags[key] = value
    return PlaceSpec(tags=tuple(sorted(tags.items())))


def parse_place(text: str) -> PlaceSpec:
    """``text`` as a labgrid place (``--farm``, the farm client); any other form, or a
    malformed one, is one :class:`DeviceSpecError` line."""
    spec = parse_device(text)
    if not isinstance(spec, PlaceSpec):
        raise _refuse(text, "not a labgrid place", PLACE_GRAMMAR)
    return spec


def with_ign_set_control(url: str) -> str:
    """An ``rfc2217://`` URL with ``ign_set_control`` added (unchanged if it has it, or is
    another kind of URL): ser2net in front of a port without modem lines never
    acknowledges setting them, and pyserial would time out waiting."""
    if not url.startswith("rfc2217://") or "ign_set_control" in url:
        return url
    return url + ("&" if "?" in url else "?") + "ign_set_control"
