"""A benchmark's targets: each figure that has one, its limit, and whether it was met.

Every benchmark ends with a list of :class:`BenchTarget` (only those its measured grid
covers). The tables show them; ``--check`` turns a miss into an error through
:func:`require`, so that a script or CI job running a benchmark fails when the figure
it guards gets worse, instead of printing ``NO`` and exiting 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from mpforge.core.errors import TargetMissed


@dataclass(frozen=True)
class BenchTarget:
    """One figure with a target. ``met`` is decided by the benchmark (a limit may be an
    upper bound, a lower bound or a band around it); ``note`` adds context for the table."""

    name: str
    measured: float
    limit: float
    met: bool
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def require(targets: Sequence[BenchTarget], what: str) -> None:
    """``--check``: raise :class:`TargetMissed` unless every target was met.

    A run whose grid covers no target checked nothing: that is an error too, since
    ``--check`` promised a verdict.
    """
    if not targets:
        raise TargetMissed(f"{what}: this run covers none of its targets, so --check has nothing "
                           "to check", "measure the grid the targets need (see the task's help)")
    missed = [t for t in targets if not t.met]
    if missed:
        listed = "; ".join(f"{t.name}: {t.measured:g} (limit {t.limit:g})" for t in missed)
        raise TargetMissed(f"{what}: {len(missed)} of {len(targets)} targets missed: {listed}",
                           "the figures are above; without --check the run only reports them")
