"""Two binaries, every workload: one :class:`~.compare.Comparison`.

Each workload is counted on each binary at the heap layouts (:mod:`.layouts`); a
byte-identical pair is counted once (its delta is 0 and its verdict ``same`` by
construction, see :func:`~.compare.judge`); the functions that moved come from the two
first-layout runs (:func:`~.valgrind.top_functions`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from mpforge.bench.perf.builds import Built
from mpforge.bench.perf.compare import Comparison, Counts, judge
from mpforge.bench.perf.layouts import DEFAULT_PADS, sha256
from mpforge.bench.perf.valgrind import Measured, top_functions
from mpforge.bench.perf.workloads import Workload


class Measurer(Protocol):
    """What counts a workload on a binary: :class:`~.layouts.Bench` (valgrind, the host)
    or :class:`~.emulated.EmulatedBench` (QEMU, the emulated pyboard)."""

    def measure(self, binary: Path, name: str, source: str,
                pads: Sequence[int]) -> tuple[Counts, Measured]: ...


def compare(bench: Measurer, base: Built, head: Built, workloads: Sequence[Workload],
            pads: Sequence[int] = DEFAULT_PADS,
            on_row: Callable[[str], None] | None = None) -> Comparison:
    """One comparison of two builds, with their sizes. Workload problems are raised
    (nothing kept)."""
    identical = sha256(base.binary) == sha256(head.binary)
    comparison = Comparison(base.label, head.label)
    if base.size or head.size:
        comparison.size = {"base": dict(base.size), "head": dict(head.size)}
    for workload in workloads:
        base_counts, base_fns = bench.measure(base.binary, workload.name, workload.source, pads)
        if identical:
            row = judge(workload.name, base_counts, base_counts, identical=True)
        else:
            head_counts, head_fns = bench.measure(head.binary, workload.name, workload.source, pads)
            row = judge(workload.name, base_counts, head_counts,
                        top=top_functions(base_fns, head_fns))
        comparison.workloads.append(row)
        if on_row:
            on_row(f"{row.name}: {row.base} -> {row.head} ({row.delta_pct:+.4f}%, band "
                   f"{row.band_pct:.4f}%) {row.verdict}")
    return comparison
