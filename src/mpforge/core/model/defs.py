"""The typed objects the rest of mpforge uses, read from the validated files.

The keys, their types and their docs are declared once, in the model
(:mod:`~mpforge.core.model.ports`, :mod:`~mpforge.core.model.toolchains`); nothing here
checks a type. What these objects add is the reading the code wants: the names that
come from file names and table keys (``VariantDef.name``), defaults that depend on other
keys (a toolchain's probe, an artifact's name), flat attributes for nested tables
(``PortDef.make_vars`` is ``[make] vars``) and the behaviour (``PortDef.boards()``).
Tables the code uses as the file writes them are the model's own classes, re-exported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mpforge.core.errors import ConfigError, UnknownTarget
from mpforge.core.model.loader import load
from mpforge.core.model.ports import (
    ArtifactDef,
    DebugTable,
    DeplibStep,
    EmulatorDef,
    FlashDef,
    HostSuiteTable,
    MakePass,
    OpenOcdDef,
    PortFile,
    PyOcdDef,
    SourceDef,
    TestTable,
)
from mpforge.core.model.toolchains import ToolchainFile, ToolTable

__all__ = ["ArtifactDef", "DebugDef", "DeplibDef", "EmulatorDef", "FlashDef", "MakePass", "OpenOcdDef",
           "PortDef", "PyOcdDef", "RunVariantDef", "SizeRegion", "SourceDef", "SuiteDef", "TestDef",
           "ToolDef", "ToolchainDef", "VariantDef", "shown_path"]


def shown_path(path: Path) -> str:
    """How messages name a data file: ``ports/stmhal.toml`` for the checkout's own, else its path."""
    return f"{path.parent.name}/{path.name}" if path.parent.name in ("ports", "toolchains") else str(path)


@dataclass(frozen=True)
class ToolDef:
    """A host program some job needs (``git``, ``autoconf``, ``dfu-util``): ``[tools.NAME]``."""

    name: str
    probe: list[str]
    debian: list[str] = field(default_factory=list)
    hint: str = ""
    purpose: str = ""

    def install_hint(self) -> str:
        if self.debian:
            return f"apt-get install {' '.join(self.debian)}"
        return self.hint or "install it and put it on PATH"

    @classmethod
    def from_table(cls, name: str, raw: ToolTable) -> ToolDef:
        debian = [raw.debian] if isinstance(raw.debian, str) else list(raw.debian)
        return cls(name, list(raw.probe) or [name, "--version"], debian, raw.hint, raw.purpose)


@dataclass(frozen=True)
class ToolchainDef:
    """A C toolchain (``toolchains/<name>.toml``): ``CROSS_COMPILE`` prefix, version probe, packages."""

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
        raw = load(ToolchainFile, path, shown_path(path))
        return cls(path.stem, raw.description, raw.cross_compile,
                   list(raw.probe) or [f"{raw.cross_compile}gcc", "-dumpfullversion"], list(raw.debian),
                   raw.hint, dict(raw.make_vars), list(raw.cc_flags), raw.path_env, raw.path_subdir, path)


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
class SizeRegion:
    """A memory region worth watching (esp8266 IRAM): ELF sections summed, against a limit."""

    name: str
    sections: list[str]
    limit: int


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

    @classmethod
    def from_table(cls, raw: DebugTable | None, shown: str) -> DebugDef:
        if raw is None:
            return cls()
        if raw.server and getattr(raw, raw.server) is None:
            raise ConfigError(f"{shown}: [debug] server = '{raw.server}' needs a [debug.{raw.server}] table",
                              f"add it to {shown}")
        return cls(raw.gdb, raw.elf, raw.server, raw.openocd, raw.pyocd)


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
class TestDef:
    """``[test]``: the port's test suites; an absent table is ``None`` / empty."""

    __test__ = False  # not a pytest class

    host: SuiteDef | None = None
    device: SuiteDef | None = None
    emulators: dict[str, EmulatorDef] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.host or self.device or self.emulators)

    @classmethod
    def from_table(cls, raw: TestTable) -> TestDef:
        host = device = None
        if raw.host is not None:
            host = _host_suite(raw.host)
        if raw.device is not None:
            device = SuiteDef(list(raw.device.dirs), raw.device.target)
        return cls(host, device, dict(raw.emulator))


def _host_suite(raw: HostSuiteTable) -> SuiteDef:
    variants = {name: RunVariantDef(name, v.description, v.emit, v.heapsize, tuple(v.dirs))
                for name, v in raw.variants.items()}
    return SuiteDef(list(raw.dirs), raw.target, raw.binary, variants)


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


def _step(step: list[str] | DeplibStep) -> tuple[str, list[str]]:
    return (step.in_, list(step.run)) if isinstance(step, DeplibStep) else ("", list(step))


@dataclass(frozen=True)
class PortDef:
    """One port of the tree, as described by ``ports/<name>.toml`` (see :class:`PortFile`
    for every key; the attributes here are those keys, flattened)."""

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
        """``ports/<name>.toml`` loaded through the model (every problem one line)."""
        shown = shown_path(path)
        raw = load(PortFile, path, shown)
        make, boards = raw.make, raw.boards
        deplibs = [DeplibDef(d.name, d.source, [_step(s) for s in d.steps], dict(d.make_vars),
                             list(d.outputs), list(d.tools), dict(d.aclocal_macros)) for d in raw.deplibs]
        return cls(
            name=path.stem,
            description=raw.description,
            make_dir=raw.make_dir,
            toolchain=raw.toolchain,
            tools=list(raw.tools),
            submodules=list(raw.submodules),
            make_vars=dict(make.vars),
            make_targets=list(make.targets) or ["all"],
            make_passes=list(make.passes),
            cc_flags=list(make.cc_flags),
            post_steps=[list(step) for step in make.post],
            sources=list(raw.sources),
            needs=list(raw.needs),
            size_regions=[SizeRegion(name, list(r.sections), r.limit) for name, r in raw.size_regions.items()],
            build_var=make.build_var,
            artifacts=[replace(a, name=a.name or Path(a.path).name) for a in raw.artifacts],
            size_elf=raw.size_elf,
            deplibs=deplibs,
            boards_dir=boards.dir,
            board_marker=boards.marker,
            board_var=boards.var,
            default_board=boards.default,
            board_make_vars={k: dict(v) for k, v in boards.make_vars.items()},
            board_dir_var=boards.dir_var,
            app=asdict(raw.app) if raw.app is not None else {},
            flash=raw.flash,
            test=TestDef.from_table(raw.test),
            variants={name: VariantDef(name, v.description, dict(v.make_vars), dict(v.append_vars))
                      for name, v in raw.variants.items()},
            debug=DebugDef.from_table(raw.debug, shown),
            source=path,
        )
