"""``invoke perf``: the instruction-exact performance gate (issue #28).

What is compared (:mod:`mpforge.bench.perf.builds`): by default the tree as it is now
against the pin plus the series; ``--base REF`` the series and pin at git ref REF of
this checkout against the current ones; ``--per-patch`` each patch of the series
against the series before it. Every workload is counted on both builds of each pair
under valgrind (unix) or QEMU's guest count (``--port stmhal --board PYBV10_QEMU``,
:mod:`mpforge.bench.perf.emulated`; default mode only) at several heap layouts
(:mod:`mpforge.bench.perf.gate`) and a table
per comparison is printed: workload | base | head | delta | delta % | band % | verdict |
top functions.

Outputs (:mod:`mpforge.bench.perf.report`), all written after every figure is in:
``--json F`` the issue's contract, ``--markdown F`` the tables and code sizes,
``--record`` one line in ``bench-results/perf-history.jsonl``, ``--plot F`` a PNG of
that history. ``--check`` exits 1 naming every regressed or unstable workload in one
line. Bad input (an unknown workload or REF, valgrind or matplotlib missing) is one
line before anything is built; a workload that fails stops the run, nothing written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from invoke import Context, Exit

from mpforge.bench import record as record_mod
from mpforge.bench.perf import builds, gate, targets, workloads
from mpforge.bench.perf import report as out
from mpforge.bench.perf.compare import Comparison, check_line, report
from mpforge.bench.perf.layouts import Bench
from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.core.errors import ConfigError, MissingTool, UsageError
from mpforge.core.project import Project


@task(shared=("mirror",), help=dict(
    port="unix (valgrind), or stmhal with --board PYBV10_QEMU (the emulated pyboard, QEMU)",
    board="the board of --port (stmhal: PYBV10_QEMU, the emulated pyboard)",
    workloads="NAME,... of ours and/or FILE.py (default: all of ours)",
    base="compare the series and pin at this git ref of the checkout with the current ones",
    per_patch="compare each patch of the series with the series before it (N+1 builds)",
    json="write the figures (the issue's JSON contract) to this file",
    markdown="write the tables and code sizes as Markdown to this file",
    record="append the figures to bench-results/perf-history.jsonl",
    plot="draw the recorded history to this PNG (needs matplotlib: mpforge[plot])",
    check="exit 1 when a workload regressed beyond its band or is unstable"))
def perf(c: Context, port: str = "unix", board: str | None = None, workloads_: str | None = None,
         base: str | None = None, per_patch: bool = False, json: str | None = None,
         markdown: str | None = None, record: bool = False, plot: str | None = None,
         check: bool = False) -> None:
    """Count instructions of every workload: tree vs pin + series, --base REF, --per-patch."""
    target = targets.find(port, board)
    if base and per_patch:
        raise UsageError("perf: --base and --per-patch go alone", "give one of them")
    if target.emulator and (base or per_patch):
        raise UsageError(f"perf: --base and --per-patch are not supported yet on {target.name}",
                         "use them with --port unix; the emulated pyboard compares tree vs pin + series")
    # a wrong name is said before anything else
    chosen = target.workloads(workloads.select(workloads_), named=workloads_ is not None)
    if not target.emulator and shutil.which("valgrind") is None:
        raise MissingTool("valgrind", "perf: valgrind is not installed", "apt-get install valgrind")
    project = fw.checkout()
    history = project.root / out.HISTORY
    if plot:
        out.require_matplotlib()
        if not record and not history.is_file():
            raise ConfigError(f"perf --plot: no history at {out.HISTORY}", "add --record")
    comparisons = _comparisons(project, target, base, per_patch, chosen)

    data = report(record_mod.provenance(project, fw.command_line()), target.name, comparisons)
    console = fw.console_of(project)
    if json:
        fw.write_json(json, data)
        console.ok(f"figures written to {json}")
    if markdown:
        out.write_markdown(Path(markdown), target.name, comparisons)
        console.ok(f"tables written to {markdown}")
    if record:
        out.append_history(history, data)
        console.ok(f"recorded in {out.HISTORY}")
    if plot:
        out.plot(history, Path(plot))
        console.ok(f"history drawn to {plot}")
    line = check_line(comparisons)
    if check and line:
        raise Exit(line, code=1)


def _comparisons(project: Project, target: targets.PerfTarget, base: str | None, per_patch: bool,
                 chosen: list[workloads.Workload]) -> list[Comparison]:
    """Build the pairs the mode asks for, then count every workload on each pair."""
    console = fw.console_of(project)
    mirror, options = fw.options().mirror, fw.build_options()
    if target.emulator:  # --port stmhal --board PYBV10_QEMU: mpforge.bench.perf.emulated
        from mpforge.bench.perf import emulated

        return [emulated.compare_emulated(project, target, chosen, mirror=mirror, options=options,
                                          on_row=console.info)]
    if base:
        at_ref, commit = builds.ref_at(project, base, mirror)  # a bad REF: nothing built
        pairs = builds.ref_pair(project, at_ref, commit, mirror=mirror, options=options)
    elif per_patch:
        pairs = builds.per_patch(project, mirror=mirror, options=options, on_step=console.info)
    else:
        pairs = builds.default_pair(project, mirror=mirror, options=options)
    bench = Bench(project.executor, project.build_root / "perf")
    comparisons = []
    for pair in pairs:
        console.info(f"{pair[0].label} -> {pair[1].label}")
        comparisons.append(gate.compare(bench, *pair, chosen, on_row=console.info))
    return comparisons
