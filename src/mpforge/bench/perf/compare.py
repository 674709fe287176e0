"""From instruction counts to verdicts: delta, measured noise band, regression or not.

Each workload is counted on each binary at K heap layouts (a pad allocated before the
workload moves every later address; object hashes are addresses, so hash-heavy code
moves with the layout). The first layout is counted twice: if the two counts differ,
the figure is not exact and the workload is ``unstable`` (the gate checks itself).

* **delta**: head minus base, both at the first layout (the same script, the same pad).
* **band**: the spread (max - min) over the layouts, as a percentage of the smallest
  count, the larger of base's and head's: how far a change that only moves the heap
  can move this workload.
* **verdict**: ``unstable`` when a repeated count differs; otherwise ``regression`` /
  ``improvement`` only when ``|delta %|`` is beyond ``max(MIN_PCT, 2 x band)``, else
  ``same``. Byte-identical binaries (same sha256) give delta 0 and ``same`` by
  construction: their counts are not compared, the base's are used for both.

:meth:`Comparison.as_dict` is the JSON contract other tools read:
``{"base", "head", "workloads": [{"name", "base", "head", "delta_pct", "band_pct",
"verdict", "top"}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: A delta within this many percent is ``same`` whatever the band (counts are exact,
#: but a change this small is not worth a red gate).
MIN_PCT = 0.05
VERDICTS = ("regression", "improvement", "same", "unstable")


@dataclass(frozen=True)
class Counts:
    """One workload on one binary: ``repeat`` is the first layout counted twice;
    ``layouts`` every layout's count, the first layout first."""

    repeat: tuple[int, int]
    layouts: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.layouts or self.layouts[0] != self.repeat[0]:
            raise ValueError("layouts must start with the first repeated count")
        if min((*self.repeat, *self.layouts)) <= 0:
            raise ValueError("instruction counts are positive")

    @property
    def stable(self) -> bool:
        return self.repeat[0] == self.repeat[1]

    @property
    def count(self) -> int:
        return self.repeat[0]

    @property
    def band_pct(self) -> float:
        """Spread over the heap layouts, percent of the smallest count."""
        return 100.0 * (max(self.layouts) - min(self.layouts)) / min(self.layouts)


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    base: int
    head: int
    delta_pct: float
    band_pct: float
    verdict: str
    top: list[dict[str, object]] = field(default_factory=list)

    @property
    def delta(self) -> int:
        return self.head - self.base

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "base": self.base, "head": self.head,
                "delta_pct": self.delta_pct, "band_pct": self.band_pct,
                "verdict": self.verdict, "top": self.top}


def threshold_pct(band_pct: float) -> float:
    """The smallest ``|delta %|`` that is a change: ``max(MIN_PCT, 2 x band)``."""
    return max(MIN_PCT, 2.0 * band_pct)


def judge(name: str, base: Counts, head: Counts, *, identical: bool = False,
          top: Sequence[dict[str, object]] = ()) -> WorkloadResult:
    """One workload's row; ``identical``: the two binaries are byte-identical."""
    if identical:
        return WorkloadResult(name, base.count, base.count, 0.0, round(base.band_pct, 4),
                              "unstable" if not base.stable else "same")
    band = max(base.band_pct, head.band_pct)
    delta_pct = 100.0 * (head.count - base.count) / base.count
    if not (base.stable and head.stable):
        verdict = "unstable"
    elif abs(delta_pct) <= threshold_pct(band):
        verdict = "same"
    else:
        verdict = "regression" if delta_pct > 0 else "improvement"
    return WorkloadResult(name, base.count, head.count, round(delta_pct, 4), round(band, 4),
                          verdict, list(top))


@dataclass
class Comparison:
    """One base against one head (with ``--per-patch``, ``head`` is the patch's file name)."""

    base: str
    head: str
    workloads: list[WorkloadResult] = field(default_factory=list)
    #: text/data/bss of the two builds (``{"base": {...}, "head": {...}}``)
    size: dict[str, dict[str, int]] = field(default_factory=dict)

    def failing(self) -> list[WorkloadResult]:
        """The rows ``--check`` fails on: regressions and unstable figures."""
        return [w for w in self.workloads if w.verdict in ("regression", "unstable")]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"base": self.base, "head": self.head,
                                  "workloads": [w.as_dict() for w in self.workloads]}
        if self.size:
            out["size"] = self.size
        return out


def check_line(comparisons: Sequence[Comparison]) -> str | None:
    """``--check``'s one line naming every regressed or unstable workload, or None."""
    named = [f"{w.name} ({w.verdict} {w.delta_pct:+.3f}%" + (f" in {c.head}" if len(comparisons) > 1
                                                                else "") + ")"
             for c in comparisons for w in c.failing()]
    if not named:
        return None
    return f"perf: {len(named)} workload(s) regressed or unstable: " + ", ".join(named)


def report(run: dict[str, object], target: str, comparisons: Sequence[Comparison]) -> dict[str, object]:
    """The whole JSON document: ``{"run", "target", "comparisons"}``."""
    return {"run": run, "target": target, "comparisons": [c.as_dict() for c in comparisons]}
