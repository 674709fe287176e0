"""bench-gc on the emulated board: the result model.

A :class:`Cell` is one firmware (:class:`Variant`) x workload x threshold, folded from
``--repeat`` runs (:func:`make_cell`, which refuses runs that computed different
results); an :class:`EmuReport` holds them all, with what was left out and why, and the
targets of the feature's issue (:func:`check_targets`).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mpforge.bench.gc.guest import Workload, threshold_label
from mpforge.bench.gc.trace import Outcome, Probes
from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import GuestError


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
    oom_round: int | None = None  # grow: a MemoryError outside the probe ended this round

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
    targets: list[BenchTarget] = field(default_factory=list)
    root: Path | None = None  # the checkout: paths in as_dict() are shown relative to it

    def _shown(self, path: Path) -> str:
        """``path`` relative to the checkout (a result file names no path of this machine)."""
        if self.root is not None and path.is_relative_to(self.root):
            return str(path.relative_to(self.root))
        return path.name

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
            "variants": [{**asdict(v), "elf": self._shown(v.elf)} for v in self.variants],
            "cells": [{**asdict(c), "label": c.label, "cost": self.cost(c),
                       "deterministic": c.deterministic} for c in self.cells],
            "repeat": self.repeat,
            "deterministic": self.deterministic,
            "max_spread": self.max_spread,
            "skipped": self.skipped,
            "notes": self.notes,
            "targets": [t.as_dict() for t in self.targets],
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
        cell.oom_round = first.oom_round
    return cell


def check_targets(report: EmuReport) -> list[BenchTarget]:
    """The issue's two targets, on the patched tree, where the grid covers them."""
    targets = []
    half, off = report.cell("patched", "churn", 2), report.cell("patched", "churn", 0)
    if half and half.largest_free_min is not None:
        share = half.largest_free_min / half.heap
        note = ""
        if off and off.largest_free_min is not None:
            note = f"threshold off: {off.largest_free_min / off.heap:.1%}"
        targets.append(BenchTarget("largest free block after churn, heap/2 (share of heap, worst round)",
                                   round(share, 3), 0.40, share >= 0.40, note))
    third = report.cell("patched", "pidigits", 3)
    cost = report.cost(third) if third else None
    if cost is not None:
        targets.append(BenchTarget("pidigits instructions, heap/3 over threshold off",
                                   round(cost, 3), 0.15, cost <= 0.15))
    return targets + auto_targets(report)


#: The compute workloads on which auto/2 may cost no more than heap/4.
COMPUTE = ("pidigits", "float", "chaos")


def auto_targets(report: EmuReport) -> list[BenchTarget]:
    """gc.threshold(auto=2)'s targets (issue 30), where the grid covers them: with
    growing live data, the large block available at least as often as with every
    fixed threshold down to heap/4 and no MemoryError outside the probe; on the
    compute workloads, no more instructions than heap/4."""
    targets = []
    auto = report.cell("patched", "grow", -2)
    if auto and auto.big_ok is not None:
        for fixed in (c for c in report.cells if c.variant == "patched" and c.workload == "grow"
                      and 2 <= c.divisor <= 4):
            fixed_ok = fixed.big_ok or 0
            targets.append(BenchTarget(f"grow: large-block successes, auto/2 vs {fixed.label}",
                                       auto.big_ok, fixed_ok, auto.big_ok >= fixed_ok,
                                       f"of {auto.big_rounds} rounds"))
        targets.append(BenchTarget("grow, auto/2: rounds ended by a MemoryError outside the probe",
                                   0 if auto.oom_round is None else 1, 0, auto.oom_round is None,
                                   "" if auto.oom_round is None else f"round {auto.oom_round}"))
    for name in COMPUTE:
        auto, quarter = report.cell("patched", name, -2), report.cell("patched", name, 4)
        if auto and quarter:
            targets.append(BenchTarget(f"{name} instructions, auto/2 over heap/4",
                                       auto.instructions, quarter.instructions,
                                       auto.instructions <= quarter.instructions))
    return targets
