"""``invoke perf --port stmhal --board PYBV10_QEMU``: guest instructions on the emulated pyboard.

The same gate as on the host (:mod:`~mpforge.bench.perf.gate`: the same workloads, heap
layouts, :class:`~mpforge.bench.perf.compare.Counts` and verdicts), with another counter:
instead of valgrind on the unix binary, the firmware runs under QEMU ``-icount shift=0``
and the guest reads TIM2 around the workload, one count per guest instruction. The board
is bench-gc's (:mod:`mpforge.bench.gc.session`): calibrated at boot, a soft reset and the
heap and stack scrub before every program, interrupts masked while the workload runs, and
programs sent through the one raw-REPL sender.

**The guest program** (:func:`guest_program`) is bench-gc's prelude (the clock, the
masking, the scrub), the pad (``_perf_pad = bytearray(PAD)``, as on the host), then the
workload itself between two clock readings, indented into a ``try`` whose ``finally``
unmasks interrupts (a workload that raises leaves a board that still answers)::

    _quiet()
    try:
        _clean()
        _clock_start()
        _mark(0)
        <the workload, top-level code as on the host>
        _mark(2)
    finally:
        _unquiet()
    _report('PERF', counts, wrapped)

The raw REPL compiles the whole program before it runs: the count is the workload's run
only (its output over the UART included), never its compilation.

**Binaries.** The gate is given stripped copies of the two ELFs (:meth:`EmulatedBench.install`,
``objcopy --strip-all``): two builds of the same code in two folders differ in their debug
information only, and must count as byte-identical (delta 0, ``same``). There is no
per-function attribution on the board (QEMU's plugins are not packaged): ``top`` is empty.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mpforge.bench.gc.guest import prelude
from mpforge.bench.gc.session import CELL_TIMEOUT, calibrated_session, icount_command
from mpforge.bench.perf import gate
from mpforge.bench.perf.builds import SERIES_VARIANT, Built
from mpforge.bench.perf.compare import Comparison, Counts
from mpforge.bench.perf.layouts import pad_line
from mpforge.bench.perf.targets import PerfTarget
from mpforge.bench.perf.valgrind import Measured
from mpforge.bench.perf.workloads import Workload
from mpforge.core.config import PortDef
from mpforge.core.errors import GuestError, MissingTool, MpforgeError, TargetSilent
from mpforge.core.executor import Executor
from mpforge.core.project import Project
from mpforge.device.emulate import plan
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.tree.patches import read_series
from mpforge.tree.variants import variant_project

#: Starts of a board for one workload on one firmware when it stops answering.
ATTEMPTS = 2
#: The clock's limit: TIM2 is reloaded at 2**30 so that readings stay small ints.
CLOCK_LIMIT = 1 << 30

#: Run (after a soft reset of its own) before bench-gc's scrub, which runs before every
#: measured program: see :meth:`EmulatedBench._count`. Small on purpose: all it leaves in
#: the heap lies inside what the raw REPL's buffer for the (longer) scrub program covers.
PRESCRUB = ("import gc\ngc.collect()\ngc.disable()\nk = []\nn = 65536\nwhile n >= 16:\n"
            "    try:\n        k.append(bytearray(n))\n    except MemoryError:\n        n //= 2\n"
            "try:\n    while True:\n        k.append(bytearray(0))\nexcept MemoryError:\n"
            "    pass\nk = None\ngc.enable()\ngc.collect()\n")
MEASURE_HEAD = "_quiet()\ntry:\n    _clean()\n    _clock_start()\n    _mark(0)\n"
MEASURE_TAIL = ("    _mark(2)\nfinally:\n    _unquiet()\n"
                "_report('PERF', _T[2] - _T[0], _wrapped())\n")


class Board(Protocol):
    """What :class:`EmulatedBench` needs of a running board (a
    :class:`~mpforge.bench.gc.session.GuestSession`; the tests pass their own)."""

    def run(self, program: str, timeout: float = ..., scrub: bool = ...) -> str: ...

    def __exit__(self, *exc: object) -> None: ...


#: Starts a calibrated board from an emulator command; names the firmware in errors.
Opener = Callable[[str, str], Board]


def open_board(command: str, what: str) -> Board:
    """A calibrated :class:`~mpforge.bench.gc.session.GuestSession` (bench-gc's)."""
    return calibrated_session(command, what)[0]


def indent(source: str, what: str, prefix: str = "    ") -> str:
    """``source`` one block deeper, lines that continue a multi-line string left as they
    are (indenting them would change the string). A workload that does not tokenize is
    an error naming it."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise MpforgeError(f"{what}: not a Python program ({exc})", "check its syntax") from None
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(line if number in inside or not line.strip() else prefix + line
                   for number, line in enumerate(lines, 1))


def guest_program(source: str, pad: int, what: str = "workload") -> str:
    """The whole program the board runs for one workload at one pad (module docstring)."""
    return prelude() + pad_line(pad) + MEASURE_HEAD + indent(source, what) + MEASURE_TAIL


def parse_counts(output: str, what: str) -> int:
    """Guest instructions from the program's ``PERF counts wrapped`` line."""
    found = re.findall(r"^PERF (\d+) (\d+)\s*$", output, re.MULTILINE)
    if len(found) != 1:
        raise GuestError(f"{what}: the emulated board printed no count", "", output[-600:])
    counts, wrapped = (int(v) for v in found[0])
    if wrapped:
        raise GuestError(f"{what}: ran past the guest clock's 2**30 instructions on the "
                         "emulated board", "make the workload smaller")
    if counts <= 0:
        raise GuestError(f"{what}: the guest clock did not advance", "", output[-600:])
    return counts


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class EmulatedBench:
    """Counts on emulated boards, one board per firmware, kept running between workloads.

    ``command``: the emulator command with ``{dist}`` for the firmware's folder (the
    port's ``[test.emulator.*]`` table); ``objcopy``: the cross toolchain's. Use it as a
    context manager: leaving it stops every board it started.
    """

    executor: Executor
    work: Path
    command: str
    objcopy: str
    opener: Opener = open_board
    timeout: float = CELL_TIMEOUT
    on_note: Callable[[str], None] | None = None
    boards: dict[Path, Board] = field(default_factory=dict)

    def __enter__(self) -> EmulatedBench:
        return self

    def __exit__(self, *exc: object) -> None:
        while self.boards:
            self.boards.popitem()[1].__exit__()

    def install(self, elf: Path) -> Path:
        """A stripped copy of ``elf`` at ``<work>/bin/<sha256[:16]>/firmware.elf``: only what
        the board loads, so two builds of the same code are byte-identical."""
        staging = self.work / "bin" / "staging.elf"
        staging.parent.mkdir(parents=True, exist_ok=True)
        self.executor.run([self.objcopy, "--strip-all", str(elf), str(staging)], mutates=False,
                          what="objcopy --strip-all", hint="install the cross toolchain")
        target = self.work / "bin" / sha256(staging)[:16] / "firmware.elf"
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
        return target

    def _board(self, binary: Path) -> Board:
        if binary not in self.boards:
            command = icount_command(self.command.replace("{dist}", str(binary.parent)))
            self.boards[binary] = self.opener(command, binary.parent.name)
        return self.boards[binary]

    def _count(self, binary: Path, name: str, program: str) -> int:
        board = self._board(binary)
        try:
            board.run(PRESCRUB, timeout=self.timeout, scrub=False)
            output = board.run(program, timeout=self.timeout)
        except GuestError as exc:
            detail = exc.details.strip().splitlines()[-1:] if exc.details else []
            raise GuestError(f"{name}: {exc.message} on the emulated board"
                             + (f": {detail[0]}" if detail else ""), exc.hint, exc.details) from None
        return parse_counts(output, name)

    def measure(self, binary: Path, name: str, source: str,
                pads: Sequence[int]) -> tuple[Counts, Measured]:
        """Counts of ``source`` at every pad (the first twice), as
        :meth:`mpforge.bench.perf.layouts.Bench.measure` gives them on the host. A board
        that stops answering is started again and the workload counted again from its
        first pad (:data:`ATTEMPTS` starts in all)."""
        programs = [guest_program(source, pad, name) for pad in pads]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                first = self._count(binary, name, programs[0])
                repeat = self._count(binary, name, programs[0])
                others = [self._count(binary, name, program) for program in programs[1:]]
                return Counts((first, repeat), (first, *others)), Measured(first, {})
            except TargetSilent as exc:  # a board that stopped answering, or never booted
                board = self.boards.pop(binary, None)
                if board is not None:
                    board.__exit__()
                if attempt == ATTEMPTS:
                    raise GuestError(f"{name}: the emulated board stopped answering "
                                     f"{ATTEMPTS} times", "run it by hand: invoke emulate --pty",
                                     exc.details) from None
                if self.on_note:
                    self.on_note(f"{name}: the board stopped answering ({exc.message}); "
                                 "started again")
        raise AssertionError("unreachable")


def require_tools(tools: Sequence[str]) -> None:
    """:class:`MissingTool` for the first of ``tools`` (the emulator table's) not on PATH."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise MissingTool(tool, f"perf: {tool} is not installed (needed for the emulated board)",
                              "apt-get install qemu-system-arm" if "qemu" in tool
                              else f"install {tool}")


def parse_size(output: str) -> dict[str, int]:
    """text/data/bss from Berkeley ``size`` output (one file)."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0][:3] != ["text", "data", "bss"]:
        raise MpforgeError("size printed no text/data/bss line", "", output[-300:])
    text, data, bss = (int(v) for v in lines[1][:3])
    return {"text": text, "data": data, "bss": bss}


def firmware_pair(project: Project, port: PortDef, board: str, *, mirror: str | None,
                  options: BuildOptions) -> tuple[tuple[str, Path], tuple[str, Path]]:
    """(("pin + series", ELF), ("tree", ELF)) for ``port``/``board``, as
    :func:`mpforge.bench.perf.builds.default_pair` gives them for unix (the same variant
    tree, :data:`~mpforge.bench.perf.builds.SERIES_VARIANT`)."""
    pipeline = Pipeline(project, mirror, options=options)
    pipeline.tree([port])  # the emulated board comes from the series
    head = pipeline.build_one(project.target(port.name, board))
    variant = variant_project(project, SERIES_VARIANT, read_series(project.patches_dir), port)
    pipeline = Pipeline(variant, mirror, options=options)
    pipeline.tree([port])
    base = pipeline.build_one(variant.target(port.name, board))
    return ("pin + series", base.dist_dir / "firmware.elf"), ("tree", head.dist_dir / "firmware.elf")


def compare_emulated(project: Project, target: PerfTarget, chosen: Sequence[Workload], *,
                     mirror: str | None, options: BuildOptions,
                     on_row: Callable[[str], None] | None = None,
                     opener: Opener = open_board) -> Comparison:
    """Build both firmwares, count every workload on each emulated board: one comparison
    (with the two builds' text/data/bss). The emulator's tools are checked first."""
    port = project.catalog.port(target.port)
    emulator = target.emulator or ""
    emu = plan(project, port, emulator)
    require_tools(port.test.emulators[emulator].tools)
    (base_label, base_elf), (head_label, head_elf) = firmware_pair(
        project, port, target.board or emu.target.board, mirror=mirror, options=options)
    cross = emu.target.toolchain.cross_compile
    with EmulatedBench(project.executor, project.build_root / "perf-emulated", emu.command,
                       f"{cross}objcopy", opener=opener, on_note=on_row) as bench:
        base, head = bench.install(base_elf), bench.install(head_elf)
        comparison = gate.compare(bench, Built(base_label, base), Built(head_label, head), chosen,
                                  pads=target.pads, on_row=on_row)
    for key, elf in (("base", base_elf), ("head", head_elf)):
        result = project.executor.run([f"{cross}size", str(elf)], mutates=False, what="size")
        comparison.size[key] = parse_size(result.stdout)
    return comparison
