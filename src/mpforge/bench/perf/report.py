"""What ``invoke perf`` writes besides its JSON: Markdown, a history, a plot.

* :func:`markdown`: one table per comparison (workload | base | head | delta | delta % |
  band % | verdict | top functions) and the code size (text/data/bss) of both builds,
  for a pull request or a CI job summary (``--markdown F``);
* :func:`append_history`: ``--record`` appends the whole report (its ``run`` header
  included) as one JSON line to ``bench-results/perf-history.jsonl``, so the history
  is a file that only grows and that git diffs line by line;
* :func:`plot`: ``--plot F`` draws the history: instructions per workload (the head of
  each recorded report's last comparison) over the recorded commits, one line per
  workload on a log scale (workloads differ by orders of magnitude). matplotlib is an
  optional extra (``pip install 'mpforge[plot]'``): :func:`require_matplotlib` says so
  in one line before anything is built.

Every file is written whole or not at all (:func:`mpforge.core.state.atomic_write_bytes`).
"""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpforge.bench.perf.compare import Comparison
from mpforge.core.errors import ConfigError, MissingTool
from mpforge.core.state import atomic_write_bytes
from mpforge.firmware.size import SECTIONS

#: ``--record``'s file, relative to the checkout's root
HISTORY = Path("bench-results") / "perf-history.jsonl"
HEADER = ("workload", "base", "head", "delta", "delta %", "band %", "verdict", "top functions")


def _top(top: Sequence[dict[str, object]], limit: int = 3) -> str:
    return ", ".join(f"`{t['function']}` {int(str(t['delta'])):+,}" for t in top[:limit])


def _size_lines(comparison: Comparison) -> list[str]:
    if not comparison.size:
        return []
    base, head = comparison.size.get("base", {}), comparison.size.get("head", {})
    cells = []
    for section in SECTIONS:
        if section in base and section in head:
            cells.append(f"{section} {base[section]:,} -> {head[section]:,} "
                         f"({head[section] - base[section]:+,})")
    return ["", "Code size: " + ", ".join(cells) + "."] if cells else []


def markdown(target: str, comparisons: Sequence[Comparison]) -> str:
    """The report as Markdown: a heading and a table per comparison, then its sizes."""
    lines = [f"# Performance ({target}): instructions per workload", ""]
    for comparison in comparisons:
        lines += [f"## {comparison.base} -> {comparison.head}", "",
                  "| " + " | ".join(HEADER) + " |",
                  "|" + "|".join(["---", "---:", "---:", "---:", "---:", "---:", "---", "---"]) + "|"]
        for w in comparison.workloads:
            lines.append(f"| {w.name} | {w.base:,} | {w.head:,} | {w.delta:+,} | {w.delta_pct:+.4f} "
                         f"| {w.band_pct:.4f} | {w.verdict} | {_top(w.top)} |")
        lines += _size_lines(comparison)
        lines.append("")
    return "\n".join(lines)


def write_markdown(path: Path, target: str, comparisons: Sequence[Comparison]) -> None:
    atomic_write_bytes(path, markdown(target, comparisons).encode())


def append_history(path: Path, data: dict[str, Any]) -> None:
    """Append one report as one line (the file is rewritten whole: never half a line)."""
    before = path.read_bytes() if path.exists() else b""
    if before and not before.endswith(b"\n"):
        before += b"\n"
    atomic_write_bytes(path, before + (json.dumps(data, sort_keys=True) + "\n").encode())


def read_history(path: Path) -> list[dict[str, Any]]:
    """Every recorded report; a line that is not a report is an error naming it."""
    if not path.is_file():
        raise ConfigError(f"perf: no history at {path}", "record one first with `invoke perf --record`")
    runs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            data["comparisons"][-1]["workloads"]  # noqa: B018 (a report has them)
        except (ValueError, KeyError, IndexError, TypeError):
            raise ConfigError(f"perf: {path} line {number} is not a perf report",
                              "remove the line or record again") from None
        runs.append(data)
    return runs


def series_of(runs: Sequence[dict[str, Any]]) -> tuple[list[str], dict[str, list[int | None]]]:
    """(x labels, workload -> instructions per run): the head of each run's last comparison,
    labelled by the checkout's commit (short) and the head's label."""
    labels: list[str] = []
    lines: dict[str, list[int | None]] = {}
    for index, run in enumerate(runs):
        last = run["comparisons"][-1]
        commit = str((run.get("run") or {}).get("project_commit") or "?")[:8]
        labels.append(f"{commit}\n{last.get('head', '')}")
        for w in last["workloads"]:
            lines.setdefault(w["name"], [None] * index)
        for name, values in lines.items():
            found = [w["head"] for w in last["workloads"] if w["name"] == name]
            values.append(int(found[0]) if found else None)
    return labels, lines


def require_matplotlib() -> None:
    """``--plot`` needs matplotlib: one line saying how to get it, before any work is done."""
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingTool("matplotlib", "perf --plot: matplotlib is not installed",
                          "pip install 'mpforge[plot]'")


def plot(history: Path, out: Path) -> None:
    """The history as a PNG: instructions per workload over the recorded runs."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, lines = series_of(read_history(history))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) + 4), 6))
    for name, values in sorted(lines.items()):
        points = [(i, v) for i, v in enumerate(values) if v is not None]
        axes.plot([i for i, _ in points], [v for _, v in points], marker="o", label=name)
    axes.set_yscale("log")
    axes.set_xticks(range(len(labels)), labels, fontsize=7)
    axes.set_ylabel("instructions (cachegrind, first heap layout)")
    axes.set_title("invoke perf: instructions per workload over the recorded runs")
    axes.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(out, buffer.getvalue())
