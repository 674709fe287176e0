"""Benchmarks: their figures as tables, and each target met or not.

The limits belong to the benchmarks (:mod:`mpforge.bench`); this module only shows
what they measured.
"""

from __future__ import annotations

from pathlib import Path

from mpforge.bench.build import ONE_AT_A_TIME, BuildBench
from mpforge.bench.gc.guest import threshold_label
from mpforge.bench.gc.host import MIB, Report, threshold_text
from mpforge.bench.gc.results import Cell, EmuReport
from mpforge.bench.remote_cache import RemoteBench, Run
from mpforge.bench.targets import BenchTarget
from mpforge.bench.testsuite import TestBench
from mpforge.cli.ui import Console
from mpforge.core.errors import MpforgeError


def target_rows(targets: list[BenchTarget]) -> list[tuple[str, ...]]:
    """target, measured, limit, met, note: one row each."""
    return [(t.name, f"{t.measured:.3f}", f"{t.limit:g}", "yes" if t.met else "NO", t.note)
            for t in targets]


def _targets(console: Console, targets: list[BenchTarget]) -> None:
    if not targets:
        console.warn("targets: this run's figures cover none of them")
        return
    console.table("targets", ["target", "measured", "limit", "met", "note"], target_rows(targets))


def show_gc_host(console: Console, report: Report, repeat: int) -> None:
    """``bench-gc`` on the host: RSS and CPU per binary, heap and threshold; instructions."""
    mib = MIB
    rows = [(r.binary, f"{r.heap // mib} MiB",
             threshold_text(r.threshold),
             f"{r.peak_rss_kib / 1024:.1f} MiB", f"{r.cpu_seconds:.3f}") for r in report.runs]
    console.table(f"bench-gc: {report.rounds} x 200-byte objects (median of {repeat})",
                  ["binary", "heap", "threshold", "peak RSS", "CPU s"], rows)
    if report.instructions:
        console.table(f"instructions (callgrind, {report.callgrind_heap // mib} MiB heap, "
                      f"{report.callgrind_rounds} objects, threshold off)",
                      ["binary", "instructions"],
                      [(k, f"{v:,}") for k, v in report.instructions.items()])
    _targets(console, report.targets)


def show_gc_emulated(console: Console, report: EmuReport) -> None:
    """``bench-gc --emulator``: the firmwares, fragmentation, cost, determinism, targets."""
    heap = report.cells[0].heap if report.cells else 0
    for variant in report.variants:
        console.info(f"{variant.name}: {variant.label}")
    for line in report.skipped:
        console.warn(f"left out: {line}")
    for line in report.notes:
        console.warn(line)
    for workload in dict.fromkeys(c.workload for c in report.cells if c.largest_free_min is not None):
        share = big_share(report, workload)
        console.table(f"fragmentation ({workload}), heap {heap:,} B: largest free block after each "
                      f"round, and a {share}-of-heap bytearray per round",
                      ["firmware", "threshold", "live", "largest free, worst round", "median",
                       f"{share} alloc ok", "instructions", "vs off", "collections"],
                      fragmentation_rows(report, workload))
    console.table("cost: guest instructions (change against the same firmware, threshold off) "
                  "and collections",
                  ["workload", "threshold", *(v.name for v in report.variants)],
                  cost_rows(report))
    if report.deterministic:
        console.ok(f"deterministic: each of {len(report.cells)} cells gave the same "
                   f"instruction count in all {report.repeat} runs")
    else:
        console.warn(f"not deterministic: the runs of a cell differ by up to "
                     f"{report.max_spread:.4%} (median shown)")
    _targets(console, report.targets)


def build_bench_rows(result: BuildBench) -> list[tuple[str, str]]:
    """``bench-build``'s figures, each named for what ran."""
    cores = f"{result.cpu_total / result.jobs:.1f} s" if result.jobs else ""
    return [
        ("matrix wall time (parallel phase)", f"{result.matrix_wall:.1f} s"),
        ("CPU seconds of all compiles", f"{result.cpu_total:.1f} s"),
        ("CPU seconds / cores", cores),
        (ONE_AT_A_TIME.format(jobs=result.jobs), f"{result.sequential_wall:.1f} s"),
    ]


def show_build_bench(console: Console, result: BuildBench) -> None:
    """``bench-build``: the matrix against the same targets built one at a time."""
    console.table(f"bench-build: {len(result.targets)} targets, {result.jobs} cores", ["figure", "value"],
                  build_bench_rows(result))
    _targets(console, result.limits)
    if result.failed:
        console.warn(f"failed: {', '.join(result.failed)}")
    if result.skipped:
        console.warn(f"skipped (left out of the figures): {', '.join(result.skipped)}")


def show_remote_bench(console: Console, result: RemoteBench) -> None:
    """``bench-build --remote-cache``: cold, a second checkout with a warm remote, warm local."""
    def figures(run: Run) -> str:
        c = run.ccache
        return (f"{run.wall:.1f} s; {c.get('local_hits', 0)} local, {c.get('remote_hits', 0)} remote hits, "
                f"{c.get('misses', 0)} misses, {c.get('remote_errors', 0)} remote errors")

    console.table(f"bench-build --remote-cache {result.remote}: {len(result.targets)} target(s), "
                  f"{result.jobs} jobs", ["run", "wall (parallel phase); ccache"], [
        ("1 cold: empty local cache, remote read-write", figures(result.cold)),
        ("2 second checkout elsewhere: empty local cache, warm remote", figures(result.second_checkout)),
        ("3 warm local cache, no remote", figures(result.warm_local)),
        ("artifacts identical between the checkouts", "yes" if not result.differing
         else f"NO: {', '.join(result.differing)}")])
    _targets(console, result.limits)
    for run in (result.cold, result.second_checkout, result.warm_local):
        if run.failed:
            console.warn(f"failed or skipped: {', '.join(run.failed)}")


def show_test_bench(console: Console, result: TestBench) -> None:
    """``bench-test``: ``invoke test`` against the tree's own runner, verdict by verdict."""
    console.table(f"bench-test: {result.where}, {result.tests} tests, median of {result.rounds} round(s)",
                  ["figure", "value"], [
        ("tree's run-tests, one process", f"{result.runner_seconds:.2f} s"),
        (f"invoke test, {result.jobs} shards, cold (no expected output cached)",
         f"{result.cold_seconds:.2f} s ({result.cold_ratio:.2f} of run-tests)"),
        (f"invoke test, {result.jobs} shards, warm", f"{result.warm_seconds:.2f} s ({result.warm_ratio:.2f})"),
        ("rounds (run-tests, cold, warm)", "; ".join(f"{a:.2f}, {b:.2f}, {c:.2f} s" for a, b, c in result.samples)),
        ("identical verdicts", "yes" if result.same_verdicts else f"NO: {', '.join(result.differing)}"),
        ("unexpected failures", ", ".join(result.unexpected_failures) or "none"),
    ])
    _targets(console, result.limits)


# --- bench-gc --emulator: its tables and its plot ---------------------------------------


def _mi(instructions: int) -> str:
    return f"{instructions / 1e6:.2f} M"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _kib(n: int | None, heap: int) -> str:
    return "" if n is None else f"{n / 1024:.1f} KiB ({n / heap:.0%})"


def _gcs(cell: Cell) -> str:
    return "" if cell.collections is None else f"{cell.collections} GC"


def big_share(report: EmuReport, workload: str) -> str:
    """The large allocation a fragmentation workload probes each round, as a share of
    the heap (``40%``), from its cells; ``large`` when they do not say."""
    shares = {round(100 * c.big_size / c.heap) for c in report.cells
              if c.workload == workload and c.big_size and c.heap}
    return f"{shares.pop()}%" if len(shares) == 1 else "large"


def fragmentation_rows(report: EmuReport, workload: str = "churn") -> list[tuple[str, ...]]:
    """firmware, threshold, live data, largest free (worst round, median), the large
    allocation's successes, instructions, their change against threshold off, and
    collections, for one fragmentation workload."""
    rows: list[tuple[str, ...]] = []
    for variant in report.variants:
        for cell in (c for c in report.cells if c.variant == variant.name
                     and c.workload == workload and c.largest_free_min is not None):
            threshold = "off" if cell.divisor == 0 else f"{cell.label} = {cell.threshold:,} B"
            rows.append((variant.name, threshold, _kib(cell.live_median, cell.heap),
                         _kib(cell.largest_free_min, cell.heap),
                         _kib(cell.largest_free_median, cell.heap),
                         f"{cell.big_ok}/{cell.big_rounds}", _mi(cell.instructions),
                         _pct(report.cost(cell)) if cell.divisor else "", _gcs(cell)))
    return rows


def cost_rows(report: EmuReport) -> list[tuple[str, ...]]:
    """workload, threshold, then per firmware its instructions, (for a threshold) the
    change against the same firmware with the threshold off, and its collections."""
    names = [v.name for v in report.variants]
    workloads = list(dict.fromkeys(c.workload for c in report.cells))
    divisors = list(dict.fromkeys(c.divisor for c in report.cells))
    rows = []
    for workload in workloads:
        for divisor in divisors:
            row = [workload, threshold_label(divisor)]
            for name in names:
                cell = report.cell(name, workload, divisor)
                if cell is None:
                    row.append("")
                    continue
                cost = report.cost(cell) if divisor else None
                parts = [_mi(cell.instructions)]
                if cost is not None:
                    parts.append(f"({_pct(cost)})")
                if cell.collections is not None:
                    parts.append(f"{cell.collections} GC")
                row.append(" ".join(parts))
            rows.append(tuple(row))
    return rows


def write_plot(report: EmuReport, path: Path) -> None:
    """A PNG: the largest free block after churn (left) and the instruction cost of
    every workload (right) against the threshold. Colour: the workload (right) or
    firmware (left); solid: our tree, dashed: the upstream reference."""
    try:
        import matplotlib
    except ImportError:
        raise MpforgeError("--plot needs matplotlib", "pip install -e '.[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # thresholds from small to none: heap/8 ... heap/2, off
    divisors = sorted({c.divisor for c in report.cells if c.divisor}, reverse=True)
    divisors += [0] if any(c.divisor == 0 for c in report.cells) else []
    xs = list(range(len(divisors)))
    labels = [threshold_label(d) for d in divisors]
    lines = {"patched": "-", "upstream": "--", "unpatched": "none"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 5))

    # left: largest free block, and the ceiling heap - threshold - live data
    colors = {"patched": "tab:blue", "unpatched": "tab:gray", "upstream": "tab:orange"}
    markers = {"patched": "o", "unpatched": "s", "upstream": "^"}
    ceiling = []
    for variant in report.variants:
        shares = []
        for x, d in zip(xs, divisors):
            cell = report.cell(variant.name, "churn", d)
            if cell and cell.largest_free_min is not None:
                shares.append((x, 100 * cell.largest_free_min / cell.heap))
                if variant.name == "patched" and d and cell.live_median is not None:
                    ceiling.append((x, 100 * (1 - 1 / d - cell.live_median / cell.heap)))
        if shares:
            left.plot([x for x, _ in shares], [y for _, y in shares], color=colors.get(variant.name),
                      linestyle=lines.get(variant.name, "-"), marker=markers.get(variant.name, "x"),
                      markersize=7 if variant.name == "patched" else 6, label=variant.label)
    if ceiling:
        left.plot([x for x, _ in ceiling], [y for _, y in ceiling], color="black", linewidth=0.8,
                  linestyle=":", label="heap - threshold - live data")
    for x, d in zip(xs, divisors):
        cell = report.cell("patched", "churn", d)
        if cell and cell.largest_free_min is not None:
            left.annotate(f"{100 * cell.largest_free_min / cell.heap:.0f}%",
                          (x, 100 * cell.largest_free_min / cell.heap), textcoords="offset points",
                          xytext=(0, 9), ha="center", fontsize=8)
    left.axhline(40, color="tab:red", linewidth=0.8, linestyle=":")
    left.text(len(xs) - 1, 41.5, "target at heap/2: 40%", color="tab:red", fontsize=8, ha="right")
    left.set_title("largest free block after churn (worst of the rounds)")
    left.set_ylabel("% of the heap")
    left.set_ylim(0, 100)

    # right: cost per workload
    palette = {"churn": "tab:purple", "pidigits": "tab:green", "float": "tab:blue", "chaos": "tab:brown"}
    for workload in dict.fromkeys(c.workload for c in report.cells):
        for variant in (v for v in report.variants if v.name != "unpatched"):
            values = []
            for x, d in zip(xs, divisors):
                cell = report.cell(variant.name, workload, d)
                cost = report.cost(cell) if cell else None
                if cost is not None:
                    values.append((x, 100 * cost))
            if values:
                right.plot([x for x, _ in values], [y for _, y in values],
                           color=palette.get(workload, "black"), linestyle=lines.get(variant.name, "-"),
                           marker="o" if variant.name == "patched" else "^", markersize=5,
                           label=f"{workload}: {'ours' if variant.name == 'patched' else variant.name}")
    right.axhline(15, color="tab:red", linewidth=0.8, linestyle=":")
    right.text(len(xs) - 1, 16.5, "target for pidigits at heap/3: +15%", color="tab:red", fontsize=8,
               ha="right")
    right.axhline(0, color="black", linewidth=0.5)
    right.set_title("cost: guest instructions over the same firmware, threshold off")
    right.set_ylabel("% more instructions")

    heap = report.cells[0].heap if report.cells else 0
    for axis in (left, right):
        axis.set_xticks(xs, labels)
        axis.set_xlabel(f"gc.threshold (heap = {heap / 1024:.1f} KiB)")
        axis.grid(True, alpha=0.3)
    left.legend(fontsize=7, loc="upper right")
    right.legend(fontsize=7, loc="upper right", ncol=2)
    fig.suptitle("gc.threshold() on the emulated pyboard (PYBV10_QEMU, QEMU -icount: "
                 "instructions counted exactly)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
