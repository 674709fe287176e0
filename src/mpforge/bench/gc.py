"""``invoke bench-gc --emulator qemu``: the GC threshold on a small heap, cycle-exact.

The unix benchmark (:mod:`mpforge.bench.runs`) shows what the threshold buys on a
huge heap (resident memory). This one measures what it is for on a
microcontroller, whose heap is small and finite: keeping part of the heap
unfragmented for an occasional large allocation, and what the extra
collections cost. It runs on the emulated pyboard (``PYBV10_QEMU``, about
100 KiB of heap), with our patched tree, the same series without the
threshold patch, and (a reference, built and measured only) upstream's own
implementation of the idea, a later MicroPython commit built with our other
patches.

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
measured program (:func:`scrub_program`), so the measured program is compiled
into the same memory whatever ran before it (without it, a count moved by up
to 5% with the cell run before). What is left is a few hundred instructions in
a few cells (``--repeat 2`` reports it).

**The heap's own figures**, read over the raw REPL: ``gc.mem_free()`` and
``gc.mem_alloc()``, and the largest free block, which ``micropython.mem_info()``
prints as ``max free sz`` (16-byte blocks). **Collections** are counted outside
the firmware, the same way for every tree: QEMU's exec trace restricted to the
entry of ``gc_collect_start`` and of a marker function (:class:`Probes`).

**Workloads** (our own guest code, :data:`WORKLOADS`): ``churn`` allocates
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

import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mpforge.core.config import PortDef
from mpforge.core.errors import GuestError, MpforgeError
from mpforge.core.project import Project
from mpforge.tree.patches import Patch, read_series

if TYPE_CHECKING:
    from mpforge.device.transport import Opened, RawRepl

#: The thresholds measured by default: off, and the heap divided by these.
DEFAULT_DIVISORS = (0, 2, 3, 4, 8)
#: The workloads measured by default, in the table's order.
DEFAULT_WORKLOADS = ("churn", "pidigits", "float", "chaos")
#: Upstream's later commit implementing gc.threshold (measured as a reference only).
UPSTREAM_COMMIT = "93e353e"
#: Bytes of stack below the stack pointer the guest zeroes before a run (the
#: pyboard has 16 KiB of stack; ``micropython.stack_use()`` of it is in use).
STACK_SCRUB = 14 * 1024
#: Programs go to the board this many bytes at a time, with this pause (seconds)
#: after each piece: less than the 64 bytes its UART holds (see GuestSession._exec).
SEND_CHUNK = 32
SEND_PAUSE = 0.001
#: Runs of a cell on a board that stops answering (QEMU is started again in between).
ATTEMPTS = 3
#: A workload may run this long (wall seconds) before it counts as hung.
CELL_TIMEOUT = 120.0


# --- the guest code ----------------------------------------------------------------
#
# MicroPython 1.8 syntax: no f-strings, single-precision floats on the pyboard.
# The timing helpers never allocate: they store small ints into a list made once.

PRELUDE = """\
import gc, micropython, pyb, stm
_T = [0] * 8
# TIM2 (32 bits) counts at 1 GHz of QEMU's virtual clock: under -icount
# shift=0, one count per instruction. Addresses are named once: 0x40000000
# and up are not small ints, and arithmetic on them would allocate.
_TIM_CR1 = 0x40000000
_TIM_SR = 0x40000010
_TIM_EGR = 0x40000014
_TIM_CNT = 0x40000024
_TIM_PSC = 0x40000028
_TIM_ARR = 0x4000002C
_SYST_CSR = 0xE000E010
_NVIC_ISER = (0xE000E100, 0xE000E104, 0xE000E108)
_NVIC_ICER = (0xE000E180, 0xE000E184, 0xE000E188)
_SAVED = [0, 0, 0, 0]

def _clock_start():
    stm.mem32[_TIM_PSC] = 0
    stm.mem32[_TIM_ARR] = 0x3FFFFFFF   # counts stay small ints
    stm.mem32[_TIM_EGR] = 1            # load PSC and ARR
    stm.mem32[_TIM_SR] = 0             # clear the wrap flag
    stm.mem32[_TIM_CNT] = 0
    stm.mem32[_TIM_CR1] = 1

def _mark(k):
    # no allocation: a small int into a list made once
    _T[k] = stm.mem32[_TIM_CNT]

def _wrapped():
    return stm.mem32[_TIM_SR] & 1

def _quiet():
    # No interrupts while a workload runs: they keep wall-clock time, so they
    # would land on other instructions, and leave other words on the stack
    # for the conservative collector to find, in every run. Masks the
    # peripheral interrupts (timers, flash, UART) and SysTick's.
    for i in range(3):
        _SAVED[i] = stm.mem32[_NVIC_ISER[i]]
        stm.mem32[_NVIC_ICER[i]] = _SAVED[i]
    _SAVED[3] = stm.mem32[_SYST_CSR]
    stm.mem32[_SYST_CSR] = _SAVED[3] & ~2

def _unquiet():
    stm.mem32[_SYST_CSR] = _SAVED[3]
    for i in range(3):
        stm.mem32[_NVIC_ISER[i]] = _SAVED[i]

def _report(tag, *values):
    print(tag, ' '.join(str(v) for v in values))

@micropython.asm_thumb
def _zero_below_sp(r0):
    mov(r1, sp)
    movw(r2, 0)
    label(loop)
    sub(r1, r1, 4)
    str(r2, [r1, 0])
    sub(r0, r0, 1)
    bne(loop)

def _clean():
    # The collector is conservative: a stale word in the free heap or below the
    # stack pointer that looks like a pointer keeps garbage alive. What is left
    # there depends on what ran before, so zero both: every run starts equal.
    gc.collect()
    gc.disable()
    keep = []
    n = 65536
    while n >= 16:
        try:
            keep.append(bytearray(n))
        except MemoryError:
            n //= 2
    # single free blocks between live ones: an empty bytearray fills one
    try:
        while True:
            keep.append(bytearray(0))
    except MemoryError:
        pass
    keep = None
    gc.enable()
    gc.collect()
    _zero_below_sp((%(stack)d - micropython.stack_use()) // 4)
"""

CALIBRATE = """\
@micropython.asm_thumb
def _spin(r0):
    label(loop)
    sub(r0, r0, 1)
    bne(loop)

_quiet()
try:
    for _n in (1000000, 3000000):
        _clock_start()
        _mark(0)
        _spin(_n)
        _mark(2)
        _report('CAL', _n, _T[2] - _T[0], _wrapped())
finally:
    _unquiet()
"""

# A workload defines ``work()``, returning an int checksum (the same for every
# threshold and tree: the GC must not change what a program computes).

CHURN = """\
def work():
    heap = gc.mem_free() + gc.mem_alloc()
    big = heap * 2 // 5
    ring = [None] * %(survivors)d
    seed = 1
    k = 0
    ok = 0
    paused = 0
    for rnd in range(%(rounds)d):
        for i in range(%(per_round)d):
            seed = (seed * 75 + 74) %% 65537
            if seed & 7 == 0:
                obj = [seed, bytearray(8 + seed %% 24)]
            else:
                obj = bytearray(8 + seed %% 120)
            if i & 7 == 0:
                ring[k] = obj
                k = (k + 1) %% %(survivors)d
        obj = None
        try:
            b = bytearray(big)
            ok += 1
        except MemoryError:
            pass
        b = None
        # the largest allocation that succeeds now (a failing one collects first)
        _mark(4)
        gc.isenabled()
        gc.collect()
        print('ROUND', rnd, ok, gc.mem_free())
        micropython.mem_info()
        gc.isenabled()
        _mark(6)
        paused += _T[6] - _T[4]
    _report('CHURN', heap, big, ok, paused)
    return seed + k
"""

PIDIGITS = """\
def work():
    # the unbounded spigot for pi's digits: big-integer temporaries
    q, r, t, k, m, x = 1, 0, 1, 1, 3, 3
    digits = 0
    acc = 0
    while digits < %(digits)d:
        if 4 * q + r - t < m * t:
            acc = (acc * 10 + m) %% 1000003
            digits += 1
            q, r, m = 10 * q, 10 * (r - m * t), (10 * (3 * q + r)) // t - 10 * m
        else:
            q, r, t, k, m, x = (q * k, (2 * q + r) * x, t * x, k + 1,
                                (q * (7 * k + 2) + r * x) // (t * x), x + 2)
    return acc
"""

FLOAT = """\
import math

class Vec:
    def __init__(self, x, y, z):
        self.x = x
        self.y = y
        self.z = z

    def length(self):
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)

    def scaled(self, f):
        return Vec(self.x * f, self.y * f, self.z * f)

    def larger(self, other):
        return Vec(max(self.x, other.x), max(self.y, other.y), max(self.z, other.z))

def work():
    top = Vec(-9.0, -9.0, -9.0)
    for rnd in range(%(rounds)d):
        pts = [Vec(math.sin(i * 0.25 + rnd), 2.0 * math.cos(i * 0.5), math.sin(i) * math.cos(rnd))
               for i in range(%(points)d)]
        pts = [p.scaled(1.0 / (p.length() + 0.5)) for p in pts]
        for p in pts:
            top = top.larger(p)
    return int((top.x + top.y + top.z) * 100000)
"""

CHAOS = """\
class Pt:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def moved(self, m):
        return Pt(m[0] * self.x + m[1] * self.y + m[4], m[2] * self.x + m[3] * self.y + m[5])

def work():
    # a chaos game: three contractions, points kept in a trail, visits counted
    maps = [(0.5, 0.0, 0.0, 0.5, 0.0, 0.0), (0.5, 0.0, 0.0, 0.5, 0.5, 0.0),
            (0.5, 0.0, 0.0, 0.5, 0.25, 0.5), (0.45, -0.1, 0.1, 0.45, 0.3, 0.2)]
    grid = bytearray(32 * 32)
    trail = [None] * %(trail)d
    p = Pt(0.1, 0.1)
    seed = 7
    for i in range(%(steps)d):
        seed = (seed * 75 + 74) %% 65537
        p = p.moved(maps[seed & 3])
        trail[i %% %(trail)d] = p
        cell = int(p.x * 31.0) * 32 + int(p.y * 31.0)
        grid[cell] = (grid[cell] + 1) & 255
    total = 0
    for i in range(len(grid)):
        total = (total * 31 + grid[i]) %% 1000003
    return total
"""

RUN = """\
_heap = gc.mem_free() + gc.mem_alloc()
_div = %(divisor)d
_has = hasattr(gc, 'threshold')
if _div and _has:
    gc.threshold(_heap // _div)
_quiet()
try:
    _clean()
    _free = gc.mem_free()
    _clock_start()
    gc.isenabled()
    _mark(0)
    _sum = work()
    _mark(2)
    gc.isenabled()
finally:
    _unquiet()
_report('RUN', _heap, gc.threshold() if _has else -2, _free, _sum, _T[2] - _T[0], _wrapped())
micropython.mem_info()
"""


def prelude() -> str:
    """The helpers every guest program starts with."""
    return PRELUDE % {"stack": STACK_SCRUB}


def scrub_program() -> str:
    """A program that only zeroes the free heap and the unused stack.

    A program's own scrub (``_clean``) runs after it was compiled, and what
    the compiler allocated holds words left by whatever ran before: the
    conservative collector reads them, and a measured count moved by up to 5%
    with the program run before it. After a soft reset, this program (always
    the same text, so it lands where it landed last time) leaves the memory the
    same for the next one, whatever came before: the measured program then
    gives the same count in any order.
    """
    return prelude() + "_quiet()\ntry:\n    _clean()\nfinally:\n    _unquiet()\n"


@dataclass(frozen=True)
class Workload:
    """One guest workload: its code (``%(name)d`` placeholders) and their values."""

    name: str
    what: str
    code: str
    params: dict[str, int]
    fragmentation: bool = False  # reports largest free blocks per round

    def program(self, divisor: int) -> str:
        """The whole guest program for threshold ``heap // divisor`` (0: off)."""
        return prelude() + (self.code % self.params) + RUN % {"divisor": divisor}


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("churn", "small objects (8-128 bytes), every 8th kept in a ring of 96 survivors; "
             "per round one 40%-of-heap bytearray, then the largest free block",
             CHURN, {"rounds": 12, "per_round": 2000, "survivors": 96}, fragmentation=True),
    Workload("pidigits", "spigot for 300 digits of pi: big-integer temporaries",
             PIDIGITS, {"digits": 300}),
    Workload("float", "200 objects of three floats, built, normalised and scanned, 12 rounds",
             FLOAT, {"rounds": 12, "points": 200}),
    Workload("chaos", "chaos game: 12000 steps of a point object, a 256-point trail",
             CHAOS, {"steps": 12000, "trail": 256}),
)}


def threshold_label(divisor: int) -> str:
    return "off" if divisor == 0 else f"heap/{divisor}"


def parse_thresholds(text: str) -> list[int]:
    """``off,heap/2,1/3,4`` -> ``[0, 2, 3, 4]`` (divisors of the heap; 0 = off)."""
    divisors = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        match = re.fullmatch(r"(?:off|-1)|(?:(?:heap|1)/)?(\d+)", item)
        if not match:
            raise MpforgeError(f"not a threshold for the emulated heap: {item!r}",
                               "use off or a fraction of the heap: heap/2, 1/3, 4")
        value = int(match.group(1)) if match.group(1) else 0
        if match.group(1) and value < 1:
            raise MpforgeError(f"heap/{value} is not a threshold", "use heap/1 or more")
        if value not in divisors:
            divisors.append(value)
    return divisors or [0]


def parse_workloads(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise MpforgeError(f"unknown workload(s): {', '.join(unknown)}",
                           f"choose from {', '.join(WORKLOADS)}")
    return names


# --- reading what the guest said ----------------------------------------------------


def _fields(output: str, tag: str) -> list[list[int]]:
    rows = []
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] == tag:
            try:
                rows.append([int(p) for p in parts[1:]])
            except ValueError:
                raise GuestError(f"unreadable {tag} line from the guest: {line!r}") from None
    return rows


def parse_calibration(output: str) -> float:
    """Instructions per clock count, from two spin loops of 2 instructions a turn.

    Under ``-icount shift=0`` it is 1: anything else means the emulator runs on
    wall-clock time, and the counts would measure the host, not the guest.
    """
    rows = _fields(output, "CAL")
    if len(rows) != 2 or any(len(r) != 3 for r in rows):
        raise GuestError("the calibration printed no timing", "", output[-400:])
    (turns0, counts0, wrap0), (turns1, counts1, wrap1) = rows
    if wrap0 or wrap1 or counts1 <= counts0:
        raise GuestError("the guest's clock does not follow its instructions",
                         "the emulator must run with -icount shift=0", output[-400:])
    return 2 * (turns1 - turns0) / (counts1 - counts0)


@dataclass
class Outcome:
    """What one guest run reported."""

    heap: int
    threshold: int  # bytes as the guest reports it; -1 off; -2 no gc.threshold
    free_at_start: int
    checksum: int
    counts: int  # guest clock counts: instructions
    max_free_end: int  # bytes, after the workload (no collection)
    rounds: list[tuple[int, int]] = field(default_factory=list)  # (free, largest free) per round
    big_ok: int = 0
    big_size: int = 0
    paused_counts: int = 0  # spent measuring, inside the workload
    collections: int | None = None  # traced by QEMU (None: not traced)


def parse_mem_info(output: str) -> list[int]:
    """``max free sz`` of each ``micropython.mem_info()`` printed, in bytes."""
    return [int(n) * 16 for n in re.findall(r"max free sz: (\d+)", output)]


def parse_run(output: str) -> Outcome:
    runs = _fields(output, "RUN")
    if len(runs) != 1 or len(runs[0]) != 6:
        raise GuestError("the guest printed no result", "", output[-600:])
    heap, threshold, free, checksum, counts, wrapped = runs[0]
    if wrapped:
        raise GuestError("the workload ran past the guest clock's 2**30 counts",
                         "make the workload smaller")
    largest = parse_mem_info(output)
    outcome = Outcome(heap, threshold, free, checksum, counts, largest[-1] if largest else 0)
    rounds = _fields(output, "ROUND")
    if rounds:
        # each ROUND line is followed by its mem_info; the last mem_info is the final one
        if len(largest) != len(rounds) + 1:
            raise GuestError("a round of the workload printed no heap figures", "",
                             output[-600:])
        outcome.rounds = [(free_now, largest[i]) for i, (_, _, free_now) in enumerate(rounds)]
        churn = _fields(output, "CHURN")
        if churn:
            _, outcome.big_size, outcome.big_ok, outcome.paused_counts = churn[0]
    return outcome


# --- results ------------------------------------------------------------------------


@dataclass
class Cell:
    """One variant x workload x threshold, over ``--repeat`` runs."""

    variant: str
    workload: str
    divisor: int  # 0: off
    threshold: int  # bytes (-1: off)
    heap: int
    instructions: int  # median of the runs
    runs: list[int]  # instructions, each run
    checksum: int
    largest_free_min: int | None = None  # bytes, over the rounds (fragmentation workloads)
    largest_free_median: int | None = None
    big_ok: int | None = None
    big_rounds: int | None = None
    big_size: int | None = None
    largest_free_end: int = 0
    collections: int | None = None  # during the workload (explicit ones left out)
    live_median: int | None = None  # bytes in use after each round's collection

    @property
    def label(self) -> str:
        return threshold_label(self.divisor)

    @property
    def deterministic(self) -> bool:
        return len(set(self.runs)) == 1

    @property
    def spread(self) -> float:
        """(max - min) / min of the runs' instruction counts."""
        return (max(self.runs) - min(self.runs)) / max(min(self.runs), 1)


@dataclass
class Variant:
    """A firmware measured side by side with the others."""

    name: str  # patched, unpatched, upstream
    label: str  # what the table says about it
    elf: Path
    reference: bool = False
    instructions_per_count: float = 0.0  # the calibration: 1.0 under -icount shift=0
    probes: Probes | None = None  # None: collections are not counted


@dataclass
class EmuReport:
    variants: list[Variant] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line each: what was left out, why
    notes: list[str] = field(default_factory=list)  # one line each: what happened on the way
    repeat: int = 1
    targets: list[tuple[str, float, float, bool, str]] = field(default_factory=list)

    def cell(self, variant: str, workload: str, divisor: int) -> Cell | None:
        return next((c for c in self.cells
                     if (c.variant, c.workload, c.divisor) == (variant, workload, divisor)), None)

    def cost(self, cell: Cell) -> float | None:
        """Instructions relative to the same variant and workload with the threshold off."""
        base = self.cell(cell.variant, cell.workload, 0)
        if base is None or not base.instructions:
            return None
        return cell.instructions / base.instructions - 1

    @property
    def deterministic(self) -> bool:
        return all(c.deterministic for c in self.cells)

    @property
    def max_spread(self) -> float:
        return max((c.spread for c in self.cells), default=0.0)

    def as_dict(self) -> dict:
        return {
            "variants": [{**asdict(v), "elf": str(v.elf)} for v in self.variants],
            "cells": [{**asdict(c), "label": c.label, "cost": self.cost(c),
                       "deterministic": c.deterministic} for c in self.cells],
            "repeat": self.repeat,
            "deterministic": self.deterministic,
            "max_spread": self.max_spread,
            "skipped": self.skipped,
            "notes": self.notes,
            "targets": [{"name": n, "value": v, "limit": lim, "met": ok, "why": why}
                        for n, v, lim, ok, why in self.targets],
        }


def make_cell(variant: Variant, workload: Workload, divisor: int,
              outcomes: list[Outcome]) -> Cell:
    """Fold the runs of one cell; runs must agree on what they computed."""
    first = outcomes[0]
    if any(o.checksum != first.checksum for o in outcomes):
        raise GuestError(f"{variant.name} {workload.name} {threshold_label(divisor)}: the runs "
                         f"computed different results ({[o.checksum for o in outcomes]})",
                         "a GC bug: run it again by hand on the emulator")
    if divisor and first.threshold < 0:
        raise GuestError(f"{variant.name}: gc.threshold() did not take "
                         f"({threshold_label(divisor)} -> {first.threshold})")
    runs = [o.counts - o.paused_counts for o in outcomes]
    cell = Cell(variant.name, workload.name, divisor, first.threshold if divisor else -1,
                first.heap, int(statistics.median(runs)), runs, first.checksum,
                largest_free_end=first.max_free_end, collections=first.collections)
    if any(o.collections != first.collections for o in outcomes):
        cell.collections = None  # not the same in every run: say nothing rather than a median
    if workload.fragmentation:
        largest = [lf for _, lf in first.rounds]
        cell.live_median = int(statistics.median(first.heap - free for free, _ in first.rounds))
        cell.largest_free_min = min(largest) if largest else 0
        cell.largest_free_median = int(statistics.median(largest)) if largest else 0
        cell.big_ok, cell.big_rounds, cell.big_size = first.big_ok, len(first.rounds), first.big_size
    return cell


# --- targets ------------------------------------------------------------------------


def check_targets(report: EmuReport) -> list[tuple[str, float, float, bool, str]]:
    """The issue's two targets, on the patched tree, where the grid covers them.

    Each entry: (name, measured, limit, met, note).
    """
    targets = []
    half, off = report.cell("patched", "churn", 2), report.cell("patched", "churn", 0)
    if half and half.largest_free_min is not None:
        share = half.largest_free_min / half.heap
        note = ""
        if off and off.largest_free_min is not None:
            note = f"threshold off: {off.largest_free_min / off.heap:.1%}"
        targets.append(("largest free block after churn, heap/2 (share of heap, worst round)",
                        round(share, 3), 0.40, share >= 0.40, note))
    third = report.cell("patched", "pidigits", 3)
    cost = report.cost(third) if third else None
    if cost is not None:
        targets.append(("pidigits instructions, heap/3 over threshold off",
                        round(cost, 3), 0.15, cost <= 0.15, ""))
    return targets


# --- talking to the emulator ---------------------------------------------------------


def icount_command(command: str) -> str:
    """The emulator command with ``-icount shift=0`` (one instruction per virtual ns)."""
    if "-icount" in command.split():
        return command
    return f"{command} -icount shift=0"


@dataclass(frozen=True)
class Probes:
    """Where the collector starts a collection, and a marker the guest calls.

    QEMU's exec trace (``-d exec,nochain -dfilter``) restricted to these two
    addresses writes one line each time the guest enters either function: a
    collection counter outside the firmware, the same for every tree. The guest
    calls ``gc.isenabled()`` (the marker, otherwise unused) where counting
    starts and stops, and around the measurements inside a workload.
    """

    collect: int  # gc_collect_start
    marker: int  # the function behind gc.isenabled()

    def qemu_args(self, log: Path) -> str:
        return (f"-d exec,nochain -dfilter {self.collect:#x}+2,{self.marker:#x}+2 "
                f"-D {log}")


def find_probes(symbols: str) -> Probes | None:
    """:class:`Probes` from ``nm`` output of the firmware; None when a symbol is missing."""
    found: dict[str, int] = {}
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("gc_collect_start", "gc_isenabled"):
            found[parts[2]] = int(parts[0], 16) & ~1  # a Thumb address, as QEMU logs it
    if len(found) != 2:
        return None
    return Probes(found["gc_collect_start"], found["gc_isenabled"])


def trace_events(log_text: str, probes: Probes) -> str:
    """The traced entries as a string: ``C`` a collection, ``M`` a marker.

    QEMU logs ``Trace ... [../PC/..]`` as it enters a block of code. Under
    -icount a block can be stopped before its first instruction (its share of
    instructions ran out) and entered again: QEMU then logs ``Stopped execution
    of TB chain before ... [PC]``, and that entry did not happen.
    """
    events: list[str] = []
    kinds = {probes.collect: "C", probes.marker: "M"}
    for line in log_text.splitlines():
        if line.startswith("Trace "):
            match = re.search(r"\[[0-9a-f]+/([0-9a-f]+)/", line)
            kind = kinds.get(int(match.group(1), 16)) if match else None
            if kind:
                events.append(kind)
        elif line.startswith("Stopped execution"):
            match = re.search(r"\[([0-9a-f]+)\]", line)
            kind = kinds.get(int(match.group(1), 16)) if match else None
            if kind and events and events[-1] == kind:
                events.pop()
    return "".join(events)


def count_collections(events: str) -> int:
    """Collections between the first and the last marker, leaving out those between
    the inner marker pairs (measurements inside the workload)."""
    marks = [i for i, e in enumerate(events) if e == "M"]
    if len(marks) < 2 or len(marks) % 2:
        raise GuestError(f"the collection trace has {len(marks)} markers, not a start, "
                         "an end and pairs between them")
    count = 0
    outside = True
    for event in events[marks[0] + 1:marks[-1]]:
        if event == "M":
            outside = not outside
        elif outside:
            count += 1
    return count


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
        from mpforge.device.transport import RawRepl, open_device

        if self.log and self.log.exists():
            self.log.unlink()
        self._opened = open_device("execpty:" + self.command)
        try:
            self.repl = RawRepl(self._opened.port, silence=self.silence)
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

        ``scrub``: first run :func:`scrub_program` after a soft reset of its own, so
        that ``program`` finds the memory the same whatever ran before it.
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
        """The raw REPL's exchange (code, Ctrl-D, ``OK``, output, error output), with
        the code sent a little at a time.

        The board's UART holds 64 received bytes. When they are not read in time,
        its interrupt handler stops taking more by switching the receive interrupt
        off; QEMU 7's model of that UART keeps the interrupt raised regardless, and
        the board spends the rest of its life entering the handler (the REPL
        never answers again). Sent in small pieces with a pause, the REPL keeps
        up. A board that stops answering anyway is started again by
        :func:`measure_variant`.
        """
        import time

        from mpforge.device.transport import UnsendableCode

        assert self.repl is not None
        if any(1 <= b <= 4 for b in code):
            raise UnsendableCode("the program holds raw-REPL control bytes",
                                 "the raw REPL cannot carry them")
        for i in range(0, len(code), SEND_CHUNK):
            self.repl.write(code[i:i + SEND_CHUNK])
            time.sleep(SEND_PAUSE)
        self.repl.write(b"\x04")
        ack = self.repl.read_until(b"OK", self.silence)
        if not ack.endswith(b"OK"):
            raise GuestError(f"the board did not accept the program (got {ack[-40:]!r})")
        out = self.repl.read_until(b"\x04", timeout)
        err = self.repl.read_until(b"\x04", self.silence)
        self.repl.read_until(b">", self.silence)
        return out[:-1], err[:-1]

    def calibrate(self) -> float:
        return parse_calibration(self.run(prelude() + CALIBRATE, scrub=False))


def measure_variant(variant: Variant, command: str, workloads: list[str], divisors: list[int],
                    repeat: int, on_cell: Callable[[Cell], None] | None = None,
                    log: Path | None = None) -> tuple[list[Cell], list[str]]:
    """Every workload x threshold on one firmware, ``repeat`` times each; one QEMU.

    ``log``: trace collections there (needs ``variant.probes``). A board that
    stops answering is started again and the cell run once more (a line in the
    returned notes says so), up to :data:`ATTEMPTS` times in all.
    """
    from mpforge.device.transport import TargetSilent

    def start() -> GuestSession:
        session = GuestSession(command, probes=variant.probes, log=log).__enter__()
        try:
            variant.instructions_per_count = ratio = session.calibrate()
        except BaseException:
            session.__exit__()
            raise
        if abs(ratio - 1) > 0.01:
            session.__exit__()
            raise GuestError(f"{variant.name}: the guest clock counts {1 / ratio:.3f} per "
                             "instruction, not 1", "run the emulator with -icount shift=0")
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


# --- the firmwares, side by side ------------------------------------------------------

#: Which firmware each variant name stands for, as the table labels it.
LABELS = {
    "patched": "our tree (full series)",
    "unpatched": "our series without the threshold patch",
    "upstream": "upstream {commit} (reference: built and measured only)",
}


def series_without(project: Project, feature: str) -> list[Patch]:
    """The patch series with the one patch whose name contains ``feature`` left out."""
    series = read_series(project.patches_dir)
    matches = [p for p in series if feature in p.name]
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise MpforgeError(f"--feature {feature!r} must name exactly one patch of patches/series "
                           f"(matches: {found})", "pass part of the feature patch's file name")
    return [p for p in series if p is not matches[0]]


def firmwares(project: Project, *, port: PortDef, emulator: str, feature: str, upstream: str | None,
              mirror: str | None, jobs: int | None) -> tuple[str, list[Variant], list[str]]:
    """Build (or reuse) the emulated board's firmware for each variant.

    Returns the emulator command (``{dist}`` still to fill in), the variants that
    built, and one line per variant left out with the reason. Our patched tree
    must build; the unpatched pin is the same series without ``feature``'s patch;
    the upstream reference is ``upstream``'s commit with that same series (our
    compatibility patches: toolchain fixes, the emulated board, the rest).
    """
    from mpforge.device.emulate import plan
    from mpforge.firmware.pipeline import BuildOptions, Pipeline
    from mpforge.tree.variants import resolve_commit, variant_project

    console = project.console
    pipeline = Pipeline(project, mirror)
    pipeline.tree([port])  # the emulated board may come from the series
    emu = plan(project, port, emulator)
    options = BuildOptions(jobs=jobs or 0)
    board = emu.target.board
    nm = f"{emu.target.toolchain.cross_compile}nm"

    def probes(elf: Path) -> Probes | None:
        result = project.executor.run([nm, str(elf)], check=False, mutates=False, what="nm")
        return find_probes(result.stdout) if result.ok else None

    elf = pipeline.build_one(emu.target, options).dist_dir / "firmware.elf"
    variants = [Variant("patched", LABELS["patched"], elf, probes=probes(elf))]
    others = series_without(project, feature)
    plans: list[tuple[str, str | None, str]] = [("unpatched", None, LABELS["unpatched"])]
    if upstream:
        plans.append(("upstream", upstream, LABELS["upstream"].format(commit=upstream)))
    skipped = []
    for name, commit, label in plans:
        full = None
        if commit:
            full = resolve_commit(project, commit, mirror)
            if not full:
                skipped.append(f"{name}: commit {commit} is in neither the tree's repository "
                               "nor the mirror; not measured")
                continue
        vname = f"series-without-{feature}" if not commit else f"upstream-{commit}"
        try:
            variant = variant_project(project, vname, others, port, full)
            other = Pipeline(variant, mirror)  # another tree: its own preparation
            other.tree([port])
            result = other.build_one(variant.target(port.name, board), options)
        except MpforgeError as exc:
            if name == "unpatched":
                raise
            skipped.append(f"{name}: {commit} does not build for {board} with our "
                           f"compatibility patches ({exc.one_line()}); not measured")
            continue
        elf = result.dist_dir / "firmware.elf"
        variants.append(Variant(name, label, elf, reference=bool(commit), probes=probes(elf)))
    console.info(f"firmwares: {', '.join(v.name for v in variants)}")
    return emu.command, variants, skipped


def bench_emulated(project: Project, *, port: PortDef | None = None, emulator: str = "qemu",
                   workloads: list[str], divisors: list[int], repeat: int, feature: str,
                   upstream: str | None, mirror: str | None = None,
                   jobs: int | None = None) -> EmuReport:
    """Every workload x threshold on each firmware; see the module docstring. ``port``:
    the port whose emulated board runs them (default: stmhal's, the emulated pyboard)."""
    command, variants, skipped = firmwares(project, port=port or project.catalog.port("stmhal"),
                                           emulator=emulator,
                                           feature=feature, upstream=upstream, mirror=mirror,
                                           jobs=jobs)
    report = EmuReport(skipped=skipped, repeat=repeat)
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
