"""``invoke bench-gc --emulator qemu``: the GC threshold on a small heap, cycle-exact.

The host benchmark (:mod:`mpforge.bench.gc.host`) shows what the threshold buys on a
huge heap (resident memory). This one measures what it is for on a
microcontroller, whose heap is small and finite: keeping part of the heap
unfragmented for an occasional large allocation, and what the extra
collections cost. It runs on the emulated pyboard (``PYBV10_QEMU``, about
100 KiB of heap), with our patched tree, the same series without the
threshold patch (:mod:`mpforge.bench.gc.variants`), and (a reference, built and
measured only) upstream's own implementation of the idea, a later MicroPython
commit built with our other patches.

**Time in guest instructions.** QEMU runs with ``-icount shift=0``: virtual
time advances exactly one nanosecond per guest instruction. The guest starts
TIM2 (32 bits, 1 GHz of virtual time: one count per instruction) and reads it
before and after a workload, from a list made beforehand (the reading must not
allocate). The calibration checks the rate: an inline-assembler loop of a
known number of instructions must count exactly that.

**The same count every time.** Three things made counts wander, and each is
removed. Interrupts (SysTick, timers, UART) keep wall-clock time when the
board idles, so they land on other instructions: all are masked while a
workload runs. The collector is conservative: a stale word that looks like a
pointer keeps garbage alive, and stale words depend on what ran before, so the
free heap and the unused stack are zeroed before each workload (``_clean``),
and a fixed scrub program runs after a soft reset of its own before every
measured program (:func:`mpforge.bench.gc.guest.scrub_program`), so the measured
program is compiled into the same memory whatever ran before it (without it, a
count moved by up to 5% with the cell run before). What is left is a few hundred
instructions in a few cells (``--repeat 2`` reports it).

**The heap's own figures**, read over the raw REPL: ``gc.mem_free()`` and
``gc.mem_alloc()``, and the largest free block, which ``micropython.mem_info()``
prints as ``max free sz``. **Collections** are counted from QEMU's exec trace
(:mod:`mpforge.bench.gc.trace`).

**Workloads** (our own guest code, :mod:`mpforge.bench.gc.guest`): ``churn`` allocates
small objects of varied sizes, keeps every eighth in a ring of survivors that
lives for a few hundred allocations (so survivors end up scattered), and once
a round tries one large allocation (40% of the heap); after each round it
collects and reads the largest free block: the largest allocation that would
succeed at that point (that collection restarts the threshold's count, and its
cost is left out). ``pidigits`` (big-integer spigot), ``float`` (objects
holding floats, built, normalised and scanned) and ``chaos`` (an iterated
function system walked with small point objects) are compute loops whose cost
is mostly allocation and collection. Each is run with the threshold off and at
fractions of the heap (``heap/2`` ... ``heap/8``); every cell starts from a
soft reset (a fresh heap) and must compute the same checksum in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mpforge.bench.gc.guest import WORKLOADS, Workload, threshold_label
from mpforge.bench.gc.results import Cell, EmuReport, Variant, check_targets, make_cell
from mpforge.bench.gc.session import GuestSession, calibrated_session, icount_command
from mpforge.bench.gc.trace import Outcome, Probes, count_collections, find_probes, parse_run
from mpforge.bench.gc.variants import LABELS, build_variant
from mpforge.core.config import PortDef
from mpforge.core.errors import GuestError, MpforgeError, TargetSilent
from mpforge.core.project import Project
from mpforge.firmware.pipeline import BuildOptions, Pipeline

#: Runs of a cell on a board that stops answering (QEMU is started again in between).
ATTEMPTS = 3


def measure_variant(variant: Variant, command: str, workloads: list[str], divisors: list[int],
                    repeat: int, on_cell: Callable[[Cell], None] | None = None,
                    log: Path | None = None) -> tuple[list[Cell], list[str]]:
    """Every workload x threshold on one firmware, ``repeat`` times each; one QEMU.

    ``log``: trace collections there (needs ``variant.probes``). A board that
    stops answering is started again and the cell run once more (a line in the
    returned notes says so), up to :data:`ATTEMPTS` times in all.
    """
    def start() -> GuestSession:
        session, variant.instructions_per_count = calibrated_session(
            command, variant.name, probes=variant.probes, log=log)
        return session

    def run_cell(session: GuestSession, workload: Workload, divisor: int) -> list[Outcome]:
        outcomes = []
        for _ in range(repeat):
            outcome = parse_run(session.run(workload.program(divisor)))
            if session.probes:
                outcome.collections = count_collections(session.events)
            outcomes.append(outcome)
        return outcomes

    cells: list[Cell] = []
    notes: list[str] = []
    session = start()
    try:
        for name in workloads:
            workload = WORKLOADS[name]
            for divisor in divisors:
                where = f"{variant.name} {name} {threshold_label(divisor)}"
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        outcomes = run_cell(session, workload, divisor)
                        break
                    except TargetSilent as exc:
                        if attempt == ATTEMPTS:
                            raise GuestError(f"{where}: the board stopped answering "
                                             f"{ATTEMPTS} times",
                                             "run the cell by hand: invoke emulate --pty",
                                             exc.details) from None
                        notes.append(f"{where}: the board stopped answering ({exc.message}); "
                                     "QEMU started again, the cell run again")
                        session.__exit__()
                        session = start()
                cell = make_cell(variant, workload, divisor, outcomes)
                cells.append(cell)
                if on_cell:
                    on_cell(cell)
    finally:
        session.__exit__()
    return cells, notes


def firmwares(project: Project, *, port: PortDef, emulator: str, feature: str, upstream: str | None,
              mirror: str | None, options: BuildOptions) -> tuple[str, list[Variant], list[str]]:
    """Build (or reuse) the emulated board's firmware for each variant.

    Returns the emulator command (``{dist}`` still to fill in), the variants that
    built, and one line per variant left out with the reason. Our patched tree
    must build, and so must the unpatched one (:mod:`mpforge.bench.gc.variants`); the
    upstream reference is ``upstream``'s commit with that same series (our
    compatibility patches: toolchain fixes, the emulated board, the rest).
    """
    from mpforge.device.emulate import plan
    from mpforge.tree.variants import resolve_commit

    console = project.console
    pipeline = Pipeline(project, mirror, options=options)
    pipeline.tree([port])  # the emulated board may come from the series
    emu = plan(project, port, emulator)
    board = emu.target.board
    nm = f"{emu.target.toolchain.cross_compile}nm"

    def probes(elf: Path) -> Probes | None:
        result = project.executor.run([nm, str(elf)], check=False, mutates=False, what="nm")
        return find_probes(result.stdout) if result.ok else None

    elf = pipeline.build_one(emu.target).dist_dir / "firmware.elf"
    variants = [Variant("patched", LABELS["patched"], elf, probes=probes(elf))]
    elf = build_variant(project, feature, port, board, mirror=mirror,
                        options=options).dist_dir / "firmware.elf"
    variants.append(Variant("unpatched", LABELS["unpatched"], elf, probes=probes(elf)))
    skipped = []
    if upstream:
        full = resolve_commit(project, upstream, mirror)
        if not full:
            skipped.append(f"upstream: commit {upstream} is in neither the tree's repository "
                           "nor the mirror; not measured")
        else:
            try:
                elf = build_variant(project, feature, port, board, mirror=mirror, options=options,
                                    upstream=(upstream, full)).dist_dir / "firmware.elf"
                variants.append(Variant("upstream", LABELS["upstream"].format(commit=upstream), elf,
                                        reference=True, probes=probes(elf)))
            except MpforgeError as exc:
                skipped.append(f"upstream: {upstream} does not build for {board} with our "
                               f"compatibility patches ({exc.one_line()}); not measured")
    console.info(f"firmwares: {', '.join(v.name for v in variants)}")
    return emu.command, variants, skipped


def bench_emulated(project: Project, *, port: PortDef | None = None, emulator: str = "qemu",
                   workloads: list[str], divisors: list[int], repeat: int, feature: str,
                   upstream: str | None, mirror: str | None = None,
                   options: BuildOptions | None = None) -> EmuReport:
    """Every workload x threshold on each firmware; see the module docstring. ``port``:
    the port whose emulated board runs them (default: stmhal's, the emulated pyboard)."""
    command, variants, skipped = firmwares(project, port=port or project.catalog.port("stmhal"),
                                           emulator=emulator,
                                           feature=feature, upstream=upstream, mirror=mirror,
                                           options=options or BuildOptions())
    report = EmuReport(skipped=skipped, repeat=repeat, root=project.root)
    work = project.build_root / "bench-gc"
    work.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        if variant.probes is None:
            report.skipped.append(f"{variant.name}: no gc_collect_start/gc_isenabled symbols "
                                  "in its ELF; collections not counted")
        wanted = divisors if variant.name != "unpatched" else [0]
        spec = icount_command(command.replace("{dist}", str(variant.elf.parent)))
        project.console.step(f"{variant.name}: {len(workloads)} workloads x "
                             f"{len(wanted)} thresholds x {repeat} runs")
        try:
            cells, notes = measure_variant(variant, spec, workloads, wanted, repeat,
                                           log=work / f"{variant.name}.qemu-trace.log")
        except GuestError as exc:
            if not variant.reference:
                raise
            report.skipped.append(f"{variant.name}: {exc.one_line()}; not measured")
            continue
        report.variants.append(variant)
        report.cells.extend(cells)
        report.notes.extend(notes)
    report.targets = check_targets(report)
    return report
