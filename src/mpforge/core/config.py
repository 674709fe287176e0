"""Port, toolchain and host-tool definitions, loaded from TOML data.

Facts about ports live in ``ports/<port>.toml`` and facts about compilers in
``toolchains/<name>.toml``; code reads them here and never branches on a port
name. Board lists are not copied into the data: a port says where its boards
live in the tree (``boards.discover``), and :meth:`PortDef.boards` reads that
folder.

String values may contain placeholders, filled by :func:`expand`:

``{tree}``      the MicroPython tree (``micropython/``)
``{port_dir}``  the port's make directory inside the tree
``{root}``      the mpforge checkout
``{build}``     the target's folder under ``build/`` (logs, stamps, moved artifacts)
``{obj}``       the make build directory inside it (``{build}/obj``, or
                ``{build}/obj/<pass>`` for ports built in several make passes)
``{board}``     the board name (empty for board-less ports)
``{prefix}``    a deplib's install prefix (deplib steps only)
``{cross}``     the toolchain's ``CROSS_COMPILE`` prefix
``{cc}``        the toolchain's C compiler (``{cross}gcc``)
``{cc_flags}``  the toolchain's own compiler flags (the reproducibility prefix map)
``{toolchain_dir}`` the toolchain's install folder (the parent of its ``bin/``)
``{dist_root}``  the ``dist/`` folder (to use another target's artifact)
``{deplibs}``    the port's deplib folder (``build/deplibs/<port>``)
``{src-NAME}``   the checkout of the port's pinned source NAME

Why one long module: it is the whole data model (every table a data file may hold,
its schema and its typed form, and the catalog that checks the references between
files), kept together so that a key added to a schema and its dataclass are read and
reviewed side by side; it holds no behaviour beyond loading and checking.
"""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpforge.core.errors import ConfigError, UnknownTarget

VERSION_RE = re.compile(r"(\d+\.\d+(?:\.\d+)*(?:\.rel\d+)?)")


def expand(value: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders; an unknown name is a :class:`ConfigError`."""
    try:
        return string.Formatter().vformat(value, (), dict(values))
    except KeyError as exc:
        raise ConfigError(f"unknown placeholder {{{exc.args[0]}}} in {value!r}",
                          f"use one of: {', '.join(sorted(values))}") from exc


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}", f"fix {path}") from exc


#: The keys each table of a data file may hold. ``"*"`` stands for a table of
#: user-chosen names (boards, regions, emulators) whose values follow the schema
#: given; a list of tables (``[[artifacts]]``) is described by its element's schema.
#: ``None`` means "any value" (a leaf). A key outside the schema is an error that
#: names the file, the table and the nearest valid key: a typo is never ignored.
Schema = dict[str, Any]

PORT_SCHEMA: Schema = {
    "description": None, "make_dir": None, "toolchain": None, "tools": None,
    "submodules": None, "needs": None, "size_elf": None,
    "boards": {"dir": None, "marker": None, "default": None, "var": None, "dir_var": None,
               "make_vars": {"*": None}},
    "make": {"targets": None, "build_var": None, "vars": None, "cc_flags": None, "post": None,
             "passes": {"name": None, "vars": None, "targets": None}},
    "artifacts": {"path": None, "name": None, "in_tree": None, "dist": None},
    "deplibs": {"name": None, "source": None, "steps": None, "make_vars": None,
                "outputs": None, "tools": None, "aclocal_macros": None},
    "sources": {"name": None, "url": None, "rev": None},
    "size_regions": {"*": {"sections": None, "limit": None}},
    # invoke build --app: how the port freezes an app's Python files (see mpforge.firmware.app)
    "app": {"freeze": None, "freeze_var": None, "freeze_also": None, "needs": None,
            "mpy_cross": None, "mpy_cross_var": None, "mpy_cross_flags": None,
            "keep_symbols_var": None, "keep_symbols_flag": None},
    "flash": {"runner": None, "fallback": None, "usb_id": None, "artifact": None,
              "ld_file": None, "ld_file_var": None, "mcu": None, "offset": None},
    # invoke build/test --variant NAME: the same target built another way (its own build
    # folder and dist/<target>-NAME/), e.g. coverage or an -O0 debug build
    "variants": {"*": {"description": None, "make_vars": None, "append_vars": None}},
    # invoke debug (and the SWD runners of invoke deploy): the debugger, the file it reads,
    # and the probe's gdb server and flashing tool (see mpforge.device.debug)
    "debug": {"gdb": None, "elf": None, "server": None,
              "openocd": {"interface": None, "target": None, "commands": None},
              "pyocd": {"target": None, "options": None}},
    "test": {"host": {"binary": None, "dirs": None, "target": None,
                      # invoke ci runs each of these too, with baselines of their own
                      "variants": {"*": {"description": None, "emit": None, "heapsize": None, "dirs": None}}},
             "device": {"target": None, "dirs": None},
             "emulator": {"*": {"board": None, "command": None, "tools": None}}},
}
TOOLCHAIN_SCHEMA: Schema = {
    "description": None, "cross_compile": None, "probe": None, "debian": None, "hint": None,
    "make_vars": None, "cc_flags": None, "path_env": None, "path_subdir": None,
}
HOST_TOOLS_SCHEMA: Schema = {
    "project": {"tools": None},
    "tools": {"*": {"probe": None, "debian": None, "hint": None, "purpose": None}},
}


def check_keys(data: Mapping[str, Any], schema: Schema, where: Path, table: str = "") -> None:
    """Refuse any key ``schema`` does not know, naming file, table, key and the nearest valid key."""
    for key, value in data.items():
        if key in schema:
            sub = schema[key]
        elif "*" in schema:
            sub = schema["*"]
        else:
            near = difflib.get_close_matches(key, list(schema), n=1)
            place = f"[{table}]" if table else "the top level"
            raise ConfigError(f"{where.name}: unknown key '{key}' in {place}",
                              f"did you mean '{near[0]}'?" if near
                              else f"valid keys there: {', '.join(sorted(schema))}")
        if sub is None:
            continue
        name = f"{table}.{key}" if table else key
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                check_keys(item, sub, where, name)


def _need(data: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    if key not in data:
        raise ConfigError(f"{where.name}: missing required key '{key}'", f"add it to {where}")
    if not isinstance(data[key], kind):
        raise ConfigError(f"{where.name}: '{key}' must be a {kind.__name__}", f"fix {where}")
    return data[key]


def _str_list(data: Mapping[str, Any], key: str, where: Path) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where.name}: '{key}' must be a list of strings", f"fix {where}")
    return list(value)


def _str_map(data: Mapping[str, Any], key: str, where: Path) -> dict[str, str]:
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{where.name}: '{key}' must be a table of strings", f"fix {where}")
    return dict(value)


@dataclass(frozen=True)
class ToolDef:
    """A host program some job needs (``git``, ``autoconf``, ``dfu-util``)."""

    name: str
    probe: list[str]
    debian: list[str] = field(default_factory=list)
    hint: str = ""
    purpose: str = ""

    def install_hint(self) -> str:
        if self.debian:
            return f"apt-get install {' '.join(self.debian)}"
        return self.hint or "install it and put it on PATH"


@dataclass(frozen=True)
class ToolchainDef:
    """A C toolchain: ``CROSS_COMPILE`` prefix, version probe, packages."""

    name: str
    description: str
    cross_compile: str
    probe: list[str]
    debian: list[str] = field(default_factory=list)
    hint: str = ""
    make_vars: dict[str, str] = field(default_factory=dict)
    cc_flags: list[str] = field(default_factory=list)
    path_env: str = ""
    path_subdir: str = "bin"
    source: Path | None = None

    @property
    def cc(self) -> str:
        return f"{self.cross_compile}gcc"

    def install_hint(self) -> str:
        if self.debian:
            return f"apt-get install {' '.join(self.debian)}"
        return self.hint or f"install the {self.name} toolchain and put it on PATH"

    @classmethod
    def from_file(cls, path: Path) -> ToolchainDef:
        data = _load(path)
        check_keys(data, TOOLCHAIN_SCHEMA, path)
        return cls(
            name=path.stem,
            description=data.get("description", ""),
            cross_compile=data.get("cross_compile", ""),
            probe=_str_list(data, "probe", path) or [f"{data.get('cross_compile', '')}gcc", "-dumpfullversion"],
            debian=_str_list(data, "debian", path),
            hint=data.get("hint", ""),
            make_vars=_str_map(data, "make_vars", path),
            cc_flags=_str_list(data, "cc_flags", path),
            path_env=data.get("path_env", ""),
            path_subdir=data.get("path_subdir", "bin"),
            source=path,
        )


@dataclass(frozen=True)
class DeplibDef:
    """A dependency library built out of tree from a submodule's sources.

    The sources of ``source`` (a folder of the tree, usually a submodule, or
    ``@NAME`` for the port's pinned source NAME; empty for none) are exported to
    ``build/deplibs/<port>/<name>/src`` and ``steps`` run there
    (a step written as ``{ in = "sub", run = [...] }`` runs in ``src/sub``,
    made on demand); the library installs into ``{prefix}``. ``make_vars`` are then passed to
    the port's make so it links against the result.
    """

    name: str
    source: str
    steps: list[tuple[str, list[str]]]  # (sub-folder of src, argv)
    make_vars: dict[str, str]
    outputs: list[str]
    tools: list[str]
    #: autoconf macros its ``autogen.sh`` needs from aclocal's folders, each with the
    #: Debian package that installs it (``LT_SYS_SYMBOL_USCORE = "libltdl-dev"``):
    #: a program on PATH is not enough, ``invoke doctor`` looks for the macro itself
    aclocal_macros: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceDef:
    """A pinned repository a port needs besides the tree (an SDK, say).

    Fetched (through the mirror mapping, like the tree) into
    ``build/sources/<name>`` at ``rev``: a full commit id, so it cannot move.
    """

    name: str
    url: str
    rev: str


@dataclass(frozen=True)
class ArtifactDef:
    """A file make produces (``path``, with placeholders) and its name in ``dist/``.

    ``in_tree`` marks a file the port's makefile writes into the tree (the unix
    port links its program into the port folder). mpforge moves such a file
    into the target's build folder right after make, so the tree stays clean
    and a stale copy left by some other build can never be published.
    """

    path: str
    name: str
    in_tree: bool = False
    dist: bool = True  # False: kept in build/<target>/out only (e.g. link maps, which embed paths)


@dataclass(frozen=True)
class SizeRegion:
    """A memory region worth watching (esp8266 IRAM): ELF sections summed, against a limit."""

    name: str
    sections: list[str]
    limit: int


@dataclass(frozen=True)
class MakePass:
    """One make run of a target: most ports need one, cc3200 two (application, bootloader)."""

    name: str
    vars: dict[str, str]
    targets: list[str]


@dataclass(frozen=True)
class FlashDef:
    """``[flash]``: how ``invoke deploy`` writes the port's firmware (see :mod:`mpforge.device.deploy`)."""

    runner: str = ""  # dfu-util, pydfu, esptool, teensy, cc3200
    fallback: list[str] = field(default_factory=list)  # runners to try when ``runner`` is absent
    usb_id: str = ""  # vendor:product of the board in its bootloader (DFU)
    artifact: str = ""  # the file of dist/<target>/ to write (default: the first artifact)
    ld_file: str = ""  # the linker script that bounds the flash a file may write
    ld_file_var: str = ""  # ...or the board's make variable naming it (stmhal: LD_FILE)
    mcu: str = ""  # the runner's chip name (teensy: mk20dx256)
    offset: str = "0"  # where the image goes (esptool)


@dataclass(frozen=True)
class OpenOcdDef:
    """``[debug.openocd]``: the OpenOCD configs of the board's probe and chip, as OpenOCD
    finds them in its scripts folder (``interface/stlink.cfg``, ``target/stm32f4x.cfg``),
    and commands run after them (``-c``), e.g. a reset configuration."""

    interface: str
    target: str
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class PyOcdDef:
    """``[debug.pyocd]``: pyOCD's name for the chip (``-t``, ``pyocd list --targets``) and
    its other options (``-O KEY=VALUE``, ``--pack FILE`` ...), passed as given."""

    target: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class DebugDef:
    """``[debug]``: how ``invoke debug`` debugs the port's firmware, and what the SWD runners
    (``openocd``, ``pyocd``) of ``invoke deploy`` drive.

    ``gdb`` is the debugger (a host tool of ``toolchains/host-tools.toml``:
    ``gdb-multiarch`` for firmware, ``gdb`` for a host program); ``elf`` the file of
    ``dist/<target>/`` it reads (symbols and, built with ``-g``, file and line); ``server``
    the probe's gdb server on hardware (``openocd`` or ``pyocd``, whose tables say how
    to reach the board). An emulated board needs no server: QEMU's gdb stub serves.
    """

    gdb: str = ""
    elf: str = ""
    server: str = ""
    openocd: OpenOcdDef | None = None
    pyocd: PyOcdDef | None = None

    def __bool__(self) -> bool:
        return bool(self.gdb)


def _debug_def(raw: Mapping[str, Any], where: Path) -> DebugDef:
    if not raw:
        return DebugDef()
    openocd = raw.get("openocd")
    pyocd = raw.get("pyocd")
    server = str(raw.get("server", ""))
    if server and server not in ("openocd", "pyocd"):
        raise ConfigError(f"{where.name}: [debug] server = '{server}' is not a gdb server mpforge runs",
                          "use 'openocd' or 'pyocd'")
    if server and not raw.get(server):
        raise ConfigError(f"{where.name}: [debug] server = '{server}' needs a [debug.{server}] table",
                          f"add it to {where}")
    return DebugDef(
        gdb=_need(raw, "gdb", str, where), elf=_need(raw, "elf", str, where), server=server,
        openocd=OpenOcdDef(_need(openocd, "interface", str, where), _need(openocd, "target", str, where),
                           tuple(_str_list(openocd, "commands", where))) if openocd else None,
        pyocd=PyOcdDef(_need(pyocd, "target", str, where), tuple(_str_list(pyocd, "options", where)))
        if pyocd else None)


@dataclass(frozen=True)
class RunVariantDef:
    """``[test.host.variants.NAME]``: the suite run another way, by the tree's runner's own
    options: ``emit`` (``--emit native``), ``heapsize`` (``--heapsize 32k``), or other test
    folders (``dirs = ["thread"]``). ``invoke ci`` runs every variant a port lists."""

    name: str
    description: str = ""
    emit: str = ""
    heapsize: str = ""
    dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteDef:
    """``[test.host]`` or ``[test.device]``: which folders of ``tests/`` run, and how."""

    dirs: list[str]
    target: str = "unix"  # run-tests --target (pyboard for a board)
    binary: str = ""  # the artifact run-tests runs, for host ports (MICROPY_MICROPYTHON)
    variants: dict[str, RunVariantDef] = field(default_factory=dict)


@dataclass(frozen=True)
class EmulatorDef:
    """``[test.emulator.NAME]``: the board built for an emulator and the command that boots it."""

    command: str  # ``{dist}`` is the board's dist folder; must offer its UART on a pty
    board: str = ""  # the variant to build (default: the port's default board)
    tools: tuple[str, ...] = ()  # host tools it runs (their Debian packages reach CI jobs)


@dataclass(frozen=True)
class TestDef:
    """``[test]``: the port's test suites; an absent table is ``None`` / empty."""

    host: SuiteDef | None = None
    device: SuiteDef | None = None
    emulators: dict[str, EmulatorDef] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.host or self.device or self.emulators)


def _suite(raw: Any, where: Path) -> SuiteDef | None:
    if not raw:
        return None
    variants = {name: RunVariantDef(name, str(v.get("description", "")), str(v.get("emit", "")),
                                    str(v.get("heapsize", "")), tuple(_str_list(v, "dirs", where)))
                for name, v in raw.get("variants", {}).items()}
    return SuiteDef(_str_list(raw, "dirs", where), str(raw.get("target", "unix")),
                    str(raw.get("binary", "")), variants)


def _test_def(raw: Mapping[str, Any], where: Path) -> TestDef:
    emulators = {name: EmulatorDef(_need(spec, "command", str, where), str(spec.get("board", "")),
                                   tuple(_str_list(spec, "tools", where)))
                 for name, spec in raw.get("emulator", {}).items()}
    return TestDef(_suite(raw.get("host"), where), _suite(raw.get("device"), where), emulators)


def _flash_def(raw: Mapping[str, Any], where: Path) -> FlashDef:
    return FlashDef(str(raw.get("runner", "")), _str_list(raw, "fallback", where),
                    str(raw.get("usb_id", "")), str(raw.get("artifact", "")),
                    str(raw.get("ld_file", "")), str(raw.get("ld_file_var", "")),
                    str(raw.get("mcu", "")), str(raw.get("offset", "0")))


@dataclass(frozen=True)
class VariantDef:
    """``[variants.NAME]``: a way of building a target other than the default one.

    ``make_vars`` replace the port's variables of the same name; ``append_vars`` are
    added after them (as deplib flags are), so the port's own flags and the deplibs'
    include paths stay. A variant's build has its own folder and ``dist/`` target,
    ``<target>-NAME`` (e.g. ``unix-coverage``, ``stmhal-PYBV10_QEMU-debug``), so it
    never overwrites the default build.
    """

    name: str
    description: str = ""
    make_vars: dict[str, str] = field(default_factory=dict)
    append_vars: dict[str, str] = field(default_factory=dict)


def _variants(raw: Mapping[str, Any], where: Path) -> dict[str, VariantDef]:
    variants = {}
    for name, spec in raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(f"{where.name}: variant name '{name}' is not lower-case letters, digits and _",
                              f"rename [variants.{name}] in {where}")
        variants[name] = VariantDef(name, str(spec.get("description", "")), _str_map(spec, "make_vars", where),
                                    _str_map(spec, "append_vars", where))
    return variants


@dataclass(frozen=True)
class PortDef:
    """One port of the tree, as described by ``ports/<name>.toml``."""

    name: str
    description: str
    make_dir: str
    toolchain: str
    tools: list[str]
    submodules: list[str]
    make_vars: dict[str, str]
    make_targets: list[str]
    make_passes: list[MakePass]
    cc_flags: list[str]
    post_steps: list[list[str]]
    sources: list[SourceDef]
    needs: list[str]
    size_regions: list[SizeRegion]
    build_var: str
    artifacts: list[ArtifactDef]
    size_elf: str
    deplibs: list[DeplibDef]
    boards_dir: str = ""
    board_marker: str = "mpconfigboard.h"
    board_var: str = ""
    default_board: str = ""
    board_make_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    #: the make variable that takes a board folder outside the tree (``--board-dir``)
    board_dir_var: str = ""
    #: ``[app]``: how the port freezes an app (typed by :class:`mpforge.firmware.app.FreezeMethod`)
    app: dict[str, Any] = field(default_factory=dict)
    flash: FlashDef = field(default_factory=FlashDef)
    test: TestDef = field(default_factory=TestDef)
    #: ``[variants.NAME]``: other ways to build the port's targets (see :class:`VariantDef`)
    variants: dict[str, VariantDef] = field(default_factory=dict)
    #: ``[debug]``: the debugger and the probe (see :class:`DebugDef`; empty: none declared)
    debug: DebugDef = field(default_factory=DebugDef)
    source: Path | None = None

    def variant(self, name: str) -> VariantDef:
        """The variant ``name`` of this port, or an :class:`UnknownTarget` listing the others."""
        if name not in self.variants:
            known = ", ".join(sorted(self.variants)) or "none"
            raise UnknownTarget(f"port '{self.name}' has no variant '{name}'",
                                f"variants of {self.name}: {known} ([variants] in ports/{self.name}.toml)")
        return self.variants[name]

    @property
    def has_boards(self) -> bool:
        return bool(self.boards_dir)

    def boards(self, tree: Path) -> list[str]:
        """Board names read from the tree: folders of ``boards.dir`` holding the marker file."""
        if not self.has_boards:
            return []
        folder = tree / self.make_dir / self.boards_dir
        return sorted(p.parent.name for p in folder.glob(f"*/{self.board_marker}"))

    def target_name(self, board: str) -> str:
        """``unix``, or ``stmhal-PYBV10`` for a board of a board port."""
        return f"{self.name}-{board}" if board else self.name

    @classmethod
    def from_file(cls, path: Path) -> PortDef:
        data = _load(path)
        check_keys(data, PORT_SCHEMA, path)
        make = data.get("make", {})
        boards = data.get("boards", {})
        deplibs = []
        for raw in data.get("deplibs", []):
            steps: list[tuple[str, list[str]]] = []
            for step in raw.get("steps", []):
                sub, argv = (step.get("in", ""), step.get("run")) if isinstance(step, dict) else ("", step)
                if not isinstance(argv, list) or not argv:
                    raise ConfigError(f"{path.name}: deplib steps must be non-empty argv lists "
                                      "or {{ in = DIR, run = [...] }}", f"fix {path}")
                steps.append((sub, [str(a) for a in argv]))
            deplibs.append(DeplibDef(
                name=_need(raw, "name", str, path),
                source=raw.get("source", ""),
                steps=steps,
                make_vars=_str_map(raw, "make_vars", path),
                outputs=_str_list(raw, "outputs", path),
                tools=_str_list(raw, "tools", path),
                aclocal_macros=_str_map(raw, "aclocal_macros", path),
            ))
        artifacts = [ArtifactDef(_need(a, "path", str, path), a.get("name") or Path(a["path"]).name,
                                 bool(a.get("in_tree", False)), bool(a.get("dist", True)))
                     for a in data.get("artifacts", [])]
        if not artifacts:
            raise ConfigError(f"{path.name}: no [[artifacts]] declared", f"add one to {path}")
        board_vars = boards.get("make_vars", {})
        passes = [MakePass(_need(p, "name", str, path), _str_map(p, "vars", path),
                           _str_list(p, "targets", path))
                  for p in make.get("passes", [])]
        return cls(
            name=path.stem,
            description=data.get("description", ""),
            make_dir=_need(data, "make_dir", str, path),
            toolchain=_need(data, "toolchain", str, path),
            tools=_str_list(data, "tools", path),
            submodules=_str_list(data, "submodules", path),
            make_vars=_str_map(make, "vars", path),
            make_targets=_str_list(make, "targets", path) or ["all"],
            make_passes=passes,
            cc_flags=_str_list(make, "cc_flags", path),
            post_steps=[[str(a) for a in step] for step in make.get("post", [])],
            sources=[SourceDef(_need(s, "name", str, path), _need(s, "url", str, path),
                               _need(s, "rev", str, path)) for s in data.get("sources", [])],
            needs=_str_list(data, "needs", path),
            size_regions=[SizeRegion(name, _str_list(r, "sections", path), int(r.get("limit", 0)))
                          for name, r in data.get("size_regions", {}).items()],
            build_var=make.get("build_var", "BUILD"),
            artifacts=artifacts,
            size_elf=data.get("size_elf", ""),
            deplibs=deplibs,
            boards_dir=boards.get("dir", ""),
            board_marker=boards.get("marker", "mpconfigboard.h"),
            board_var=boards.get("var", "BOARD"),
            default_board=boards.get("default", ""),
            board_make_vars={k: dict(v) for k, v in board_vars.items()},
            board_dir_var=boards.get("dir_var", ""),
            app=dict(data.get("app", {})),
            flash=_flash_def(data.get("flash", {}), path),
            test=_test_def(data.get("test", {}), path),
            variants=_variants(data.get("variants", {}), path),
            debug=_debug_def(data.get("debug", {}), path),
            source=path,
        )


@dataclass
class Catalog:
    """Every port, toolchain and host tool the project defines."""

    ports: dict[str, PortDef]
    toolchains: dict[str, ToolchainDef]
    tools: dict[str, ToolDef]
    #: tools every port needs (``[project] tools`` of ``host-tools.toml``)
    project_tools: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, ports_dir: Path, toolchains_dir: Path) -> Catalog:
        if not ports_dir.is_dir():
            raise ConfigError(f"no ports folder at {ports_dir}", "run mpforge from the project checkout")
        ports = {p.stem: PortDef.from_file(p) for p in sorted(ports_dir.glob("*.toml"))}
        toolchains = {p.stem: ToolchainDef.from_file(p)
                      for p in sorted(toolchains_dir.glob("*.toml")) if p.stem != "host-tools"}
        tools: dict[str, ToolDef] = {}
        project_tools: list[str] = []
        host_tools = toolchains_dir / "host-tools.toml"
        if host_tools.exists():
            data = _load(host_tools)
            check_keys(data, HOST_TOOLS_SCHEMA, host_tools)
            for name, raw in data.get("tools", {}).items():
                debian = raw.get("debian", [])
                tools[name] = ToolDef(
                    name=name,
                    probe=_str_list(raw, "probe", host_tools) or [name, "--version"],
                    debian=[debian] if isinstance(debian, str) else _str_list(raw, "debian", host_tools),
                    hint=raw.get("hint", ""),
                    purpose=raw.get("purpose", ""),
                )
            project_tools = _str_list(data.get("project", {}), "tools", host_tools)
        catalog = cls(ports, toolchains, tools, project_tools)
        catalog._check_references()
        return catalog

    def _check_references(self) -> None:
        for port in self.ports.values():
            if port.toolchain not in self.toolchains:
                raise ConfigError(f"{port.name}.toml names unknown toolchain '{port.toolchain}'",
                                  f"add toolchains/{port.toolchain}.toml or fix the name")
            for need in port.needs:
                if need not in self.ports:
                    raise ConfigError(f"{port.name}.toml needs unknown port '{need}'",
                                      "fix 'needs'")
            emulated = [t for e in port.test.emulators.values() for t in e.tools]
            for tool in [*self.tools_for(port), *emulated]:
                if tool not in self.tools:
                    raise ConfigError(f"{port.name}.toml needs unknown host tool '{tool}'",
                                      "define it in toolchains/host-tools.toml")

    def port(self, name: str) -> PortDef:
        if name not in self.ports:
            raise UnknownTarget(f"unknown port '{name}'",
                                f"valid ports: {', '.join(sorted(self.ports))}")
        return self.ports[name]

    def toolchain_for(self, port: PortDef) -> ToolchainDef:
        return self.toolchains[port.toolchain]

    def tools_for(self, port: PortDef) -> list[str]:
        """Every host tool ``port`` needs: the project's, the port's and its deplibs', each once."""
        names = [*self.project_tools, *port.tools, *(t for d in port.deplibs for t in d.tools)]
        return list(dict.fromkeys(names))

    def with_needs(self, ports: list[str]) -> list[str]:
        """``ports`` preceded by the ports they need (``needs``, transitively), each once."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            for need in self.port(name).needs:
                visit(need)
            if name not in ordered:
                ordered.append(name)

        for name in ports:
            visit(name)
        return ordered

    def needed(self, ports: Iterable[PortDef]) -> list[PortDef]:
        """:meth:`with_needs` for ports themselves: ``ports`` preceded by what they need."""
        return [self.port(name) for name in self.with_needs([p.name for p in ports])]

    def debian_packages(self, ports: list[str], *, emulators: bool = False) -> list[str]:
        """The Debian packages that give ``ports`` everything they need, in a stable order.

        This one list feeds the README's install line, ``.ci/run``, ``invoke doctor
        --fix`` and the generated pipelines: the project tools, each port's
        toolchain and host tools, and the packages of its deplibs' aclocal macros.
        ``emulators`` adds the tools of the ports' emulators (QEMU), which a CI job that
        tests on emulated boards needs. Tools packaged elsewhere (esptool from PyPI,
        XC16) add nothing here.
        """
        packages: list[str] = []
        for name in self.with_needs(ports):
            port = self.port(name)
            packages += self.toolchain_for(port).debian
            emulated = [t for e in port.test.emulators.values() for t in e.tools] if emulators else []
            for tool in [*self.tools_for(port), *emulated]:
                packages += self.tools[tool].debian
            packages += [pkg for d in port.deplibs for pkg in d.aclocal_macros.values()]
        if not ports:
            packages += [p for t in self.project_tools for p in self.tools[t].debian]
        return list(dict.fromkeys(packages))
