"""``ports/<port>.toml``: every table and key a port file may hold, typed and documented.

:class:`PortFile` is the whole file. The tables the code uses as they are
(:class:`FlashDef`, :class:`SourceDef`, :class:`ArtifactDef`, :class:`MakePass`,
:class:`EmulatorDef`, :class:`OpenOcdDef`, :class:`PyOcdDef`) are the typed objects
themselves; the others are read into :mod:`mpforge.core.model.defs` (``PortDef`` and its
parts), which add the names that come from table keys and the defaults that depend on
other keys. String values may hold placeholders (see :mod:`mpforge.core.config`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from pydantic.dataclasses import dataclass

from mpforge.core.model.base import TABLE, Argv, Bool, Count, Str

#: a variant's name: part of a folder name (``dist/unix-coverage``)
VariantName = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_]*$")]


@dataclass(frozen=True, config=TABLE)
class BoardsTable:
    """``[boards]``: where a board port's boards live in the tree (read from there, never copied)."""

    dir: Str = ""
    """the port's folder of boards, one folder per board (stmhal: ``boards``); empty: no boards"""
    marker: Str = "mpconfigboard.h"
    """the file that makes a folder of ``dir`` a board"""
    default: Str = ""
    """the board built when none is named"""
    var: Str = "BOARD"
    """the make variable that takes the board's name"""
    dir_var: Str = ""
    """the make variable that takes a board folder outside the tree (``--board-dir``)"""
    make_vars: dict[Str, dict[Str, Str]] = Field(default_factory=dict)
    """more make variables for one board: ``[boards.make_vars.PYBV10] X = "1"``"""


@dataclass(frozen=True, config=TABLE)
class MakePass:
    """``[[make.passes]]``: one make run of a target; most ports need one, cc3200 two
    (application, bootloader), each in its own ``{obj}/<name>``."""

    name: Str
    """the pass's name (its folder under ``{obj}``)"""
    vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables of this pass only"""
    targets: list[Str] = Field(default_factory=list)
    """make targets of this pass (default: ``[make] targets``)"""


@dataclass(frozen=True, config=TABLE)
class MakeTable:
    """``[make]``: how the port's makefile is run."""

    targets: list[Str] = Field(default_factory=lambda: ["all"])
    """make targets (default ``["all"]``)"""
    build_var: Str = "BUILD"
    """the make variable that takes the build folder"""
    vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables (``[make.vars] PYTHON = "python3"``)"""
    cc_flags: list[Str] = Field(default_factory=list)
    """compiler flags added to the toolchain's (``-Wno-error=...``)"""
    post: list[Argv] = Field(default_factory=list)
    """commands run after make, each a list: ``post = [["{cross}objcopy", "-O", "binary", ...]]``"""
    passes: list[MakePass] = Field(default_factory=list)
    """several make runs (see ``[[make.passes]]``)"""


@dataclass(frozen=True, config=TABLE)
class ArtifactDef:
    """``[[artifacts]]``: a file make produces (``path``, with placeholders) and its name in ``dist/``.

    ``in_tree`` marks a file the port's makefile writes into the tree (the unix port
    links its program into the port folder). mpforge moves such a file into the
    target's build folder right after make, so the tree stays clean and a stale copy
    left by some other build can never be published.
    """

    path: Str
    """where make leaves the file (``{obj}/firmware.elf``)"""
    name: Str = ""
    """its name in ``dist/<target>/`` (default: the file name of ``path``)"""
    in_tree: Bool = False
    """make writes it into the tree: moved out right after make"""
    dist: Bool = True
    """false: kept in ``build/<target>/out`` only (link maps, which embed paths)"""


@dataclass(frozen=True, config=TABLE)
class DeplibStep:
    """A deplib step run in a sub-folder of its sources: ``{ in = "build_dir", run = [...] }``."""

    run: Argv
    """the command"""
    in_: Str = Field("", alias="in")
    """the sub-folder of the sources it runs in (made on demand)"""


@dataclass(frozen=True, config=TABLE)
class DeplibTable:
    """``[[deplibs]]``: a dependency library built out of tree (see ``DeplibDef``)."""

    name: Str
    """its name (its folder: ``build/deplibs/<port>/<name>``)"""
    source: Str = ""
    """a folder of the tree (usually a submodule), ``@NAME`` for the pinned source NAME, or empty"""
    steps: list[Argv | DeplibStep] = Field(default_factory=list)
    """the commands that build it, each a list, or ``{ in = DIR, run = [...] }``"""
    make_vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables the port's make then takes, to link against it"""
    outputs: list[Str] = Field(default_factory=list)
    """the files it installs (its build is skipped when all are there and up to date)"""
    tools: list[Str] = Field(default_factory=list)
    """host tools its steps run (names of ``toolchains/host-tools.toml``)"""
    aclocal_macros: dict[Str, Str] = Field(default_factory=dict)
    """autoconf macros its ``autogen.sh`` needs, each with the Debian package that has it"""


@dataclass(frozen=True, config=TABLE)
class SourceDef:
    """``[[sources]]``: a pinned repository a port needs besides the tree (an SDK, say).

    Fetched (through the mirror mapping, like the tree) into ``build/sources/<name>``
    at ``rev``: a full commit id, so it cannot move.
    """

    name: Str
    """its name (``{src-NAME}``, ``@NAME`` in a deplib's ``source``)"""
    url: Str
    """where it is cloned from"""
    rev: Str
    """the commit, a full id"""


@dataclass(frozen=True, config=TABLE)
class SizeRegionTable:
    """``[size_regions.NAME]``: a memory region worth watching (esp8266 IRAM)."""

    sections: list[Str] = Field(default_factory=list)
    """the ELF sections summed (``[".text"]``)"""
    limit: Count = 0
    """the region's size in bytes"""


@dataclass(frozen=True, config=TABLE)
class FreezeTable:
    """``[app]``: how the port freezes an app's Python files (``invoke build --app``;
    typed and cross-checked by ``mpforge.firmware.app.FreezeMethod``)."""

    freeze: Str = ""
    """``mpy`` (bytecode, through mpy-cross) or ``str`` (source text); empty: no freezing"""
    freeze_var: Str = ""
    """the make variable naming the folder to freeze"""
    freeze_also: list[Str] = Field(default_factory=list)
    """the port's own frozen folders, frozen with the app's files"""
    needs: list[Str] = Field(default_factory=list)
    """ports built first when an app is frozen (``mpy-cross``)"""
    mpy_cross: Str = ""
    """the mpy-cross program (``{dist_root}/mpy-cross/mpy-cross``)"""
    mpy_cross_var: Str = ""
    """the make variable that takes it"""
    mpy_cross_flags: list[Str] = Field(default_factory=list)
    """its flags"""
    keep_symbols_var: Str = ""
    """the make variable of the strip flags that keep the C modules' symbols"""
    keep_symbols_flag: Str = ""
    """the flag that keeps one symbol (``-K``)"""


@dataclass(frozen=True, config=TABLE)
class FlashDef:
    """``[flash]``: how ``invoke deploy`` writes the port's firmware (see :mod:`mpforge.device.deploy`)."""

    runner: Str = ""
    """the runner: dfu-util, pydfu, esptool, teensy, cc3200, openocd, pyocd"""
    fallback: list[Str] = Field(default_factory=list)
    """runners to try when ``runner``'s program is absent"""
    usb_id: Str = ""
    """vendor:product of the board in its bootloader (DFU)"""
    artifact: Str = ""
    """the file of ``dist/<target>/`` to write (default: the first artifact)"""
    ld_file: Str = ""
    """the linker script that bounds the flash a file may write"""
    ld_file_var: Str = ""
    """...or the board's make variable naming it (stmhal: ``LD_FILE``)"""
    mcu: Str = ""
    """the runner's chip name (teensy: ``mk20dx256``)"""
    offset: Str = "0"
    """where the image goes (esptool)"""


@dataclass(frozen=True, config=TABLE)
class OpenOcdDef:
    """``[debug.openocd]``: the OpenOCD configs of the board's probe and chip, as OpenOCD
    finds them in its scripts folder, and commands run after them (``-c``)."""

    interface: Str
    """the probe's config (``interface/stlink.cfg``)"""
    target: Str
    """the chip's config (``target/stm32f4x.cfg``)"""
    commands: tuple[Str, ...] = ()
    """OpenOCD commands run after the configs (a reset configuration, say)"""


@dataclass(frozen=True, config=TABLE)
class PyOcdDef:
    """``[debug.pyocd]``: pyOCD's name for the chip and its other options, passed as given."""

    target: Str
    """the chip (``-t``; ``pyocd list --targets``)"""
    options: tuple[Str, ...] = ()
    """more options (``-O KEY=VALUE``, ``--pack FILE`` ...)"""


@dataclass(frozen=True, config=TABLE)
class DebugTable:
    """``[debug]``: how ``invoke debug`` debugs the port's firmware (see ``DebugDef``)."""

    gdb: Str
    """the debugger, a host tool (``gdb-multiarch`` for firmware, ``gdb`` for a host program)"""
    elf: Str
    """the file of ``dist/<target>/`` it reads"""
    server: Literal["", "openocd", "pyocd"] = ""
    """the probe's gdb server on hardware (its table says how to reach the board)"""
    openocd: OpenOcdDef | None = None
    """OpenOCD's configs (``[debug.openocd]``)"""
    pyocd: PyOcdDef | None = None
    """pyOCD's chip (``[debug.pyocd]``)"""


@dataclass(frozen=True, config=TABLE)
class RunVariantTable:
    """``[test.host.variants.NAME]``: the suite run another way (``invoke ci`` runs each)."""

    description: Str = ""
    """one line on what it tests"""
    emit: Str = ""
    """run-tests ``--emit`` (``native``)"""
    heapsize: Str = ""
    """run-tests ``--heapsize`` (``32k``)"""
    dirs: list[Str] = Field(default_factory=list)
    """other test folders (``["thread"]``)"""


@dataclass(frozen=True, config=TABLE)
class HostSuiteTable:
    """``[test.host]``: the tree's tests run on a host program."""

    dirs: list[Str] = Field(default_factory=list)
    """the folders of ``tests/`` that run"""
    target: Str = "unix"
    """run-tests ``--target``"""
    binary: Str = ""
    """the artifact run-tests runs (``MICROPY_MICROPYTHON``)"""
    variants: dict[Str, RunVariantTable] = Field(default_factory=dict)
    """other ways of running the suite"""


@dataclass(frozen=True, config=TABLE)
class DeviceSuiteTable:
    """``[test.device]``: the tree's tests run on a board (``invoke test --device``)."""

    dirs: list[Str] = Field(default_factory=list)
    """the folders of ``tests/`` that run"""
    target: Str = "unix"
    """run-tests ``--target`` (``pyboard``)"""


@dataclass(frozen=True, config=TABLE)
class EmulatorDef:
    """``[test.emulator.NAME]``: the board built for an emulator and the command that boots it."""

    command: Str
    """the command (``{dist}`` is the board's dist folder); it must offer the UART on a pty"""
    board: Str = ""
    """the board to build (default: the port's default board)"""
    tools: tuple[Str, ...] = ()
    """host tools it runs (their Debian packages reach CI jobs)"""


@dataclass(frozen=True, config=TABLE)
class TestTable:
    """``[test]``: the port's test suites."""

    host: HostSuiteTable | None = None
    """on a host program"""
    device: DeviceSuiteTable | None = None
    """on a board"""
    emulator: dict[Str, EmulatorDef] = Field(default_factory=dict)
    """on emulated boards, by emulator name (``invoke test --emulator NAME``)"""


@dataclass(frozen=True, config=TABLE)
class VariantTable:
    """``[variants.NAME]``: a way of building a target other than the default one."""

    description: Str = ""
    """one line on what it is for"""
    make_vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables replacing the port's of the same name"""
    append_vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables added after the port's (its own flags stay)"""


@dataclass(frozen=True, config=TABLE)
class PortFile:
    """A port of the MicroPython tree: ``ports/<port>.toml`` (the port's name is the file's)."""

    make_dir: Str
    """the port's folder in the tree, where make runs (``stmhal``)"""
    toolchain: Str
    """the toolchain that builds it (a file of ``toolchains/``)"""
    artifacts: list[ArtifactDef] = Field(min_length=1)
    """what the build publishes, at least one (``[[artifacts]]``)"""
    description: Str = ""
    """one line on the port"""
    tools: list[Str] = Field(default_factory=list)
    """host tools its build runs (names of ``toolchains/host-tools.toml``)"""
    submodules: list[Str] = Field(default_factory=list)
    """the tree's submodules it needs checked out"""
    needs: list[Str] = Field(default_factory=list)
    """ports built before it (``mpy-cross``)"""
    size_elf: Str = ""
    """the ELF ``invoke size`` reads"""
    boards: BoardsTable = Field(default_factory=BoardsTable)
    """where its boards are (board ports only)"""
    make: MakeTable = Field(default_factory=MakeTable)
    """how make runs"""
    deplibs: list[DeplibTable] = Field(default_factory=list)
    """libraries built out of tree first"""
    sources: list[SourceDef] = Field(default_factory=list)
    """pinned repositories besides the tree"""
    size_regions: dict[Str, SizeRegionTable] = Field(default_factory=dict)
    """memory regions watched by ``invoke size``"""
    app: FreezeTable | None = None
    """how it freezes an app (``invoke build --app``)"""
    flash: FlashDef = Field(default_factory=FlashDef)
    """how ``invoke deploy`` writes it"""
    variants: dict[VariantName, VariantTable] = Field(default_factory=dict)
    """other builds, each in ``build/<target>-NAME`` and ``dist/<target>-NAME``"""
    debug: DebugTable | None = None
    """how ``invoke debug`` debugs it"""
    test: TestTable = Field(default_factory=TestTable)
    """its test suites"""
