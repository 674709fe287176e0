"""``invoke perf``: the instruction-exact performance gate (issue #28; unix, default mode).

Builds the tree as it is now and the pin plus the series (:mod:`mpforge.bench.perf.builds`),
counts every workload on both under valgrind at several heap layouts
(:mod:`mpforge.bench.perf.gate`) and prints workload | base | head | delta | delta % |
band % | verdict | top functions. ``--json F`` writes the issue's contract;
``--check`` exits 1 naming every regressed or unstable workload in one line.
"""

from __future__ import annotations

import shutil

from invoke import Context, Exit

from mpforge.bench import record as record_mod
from mpforge.bench.perf import builds, gate, targets, workloads
from mpforge.bench.perf.compare import check_line, report
from mpforge.bench.perf.layouts import Bench
from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.core.errors import MissingTool


@task(shared=("mirror",), help=dict(
    port="unix (valgrind), or stmhal with --board PYBV10_QEMU (the emulated pyboard, QEMU)",
    board="the board of --port (stmhal: PYBV10_QEMU, the emulated pyboard)",
    workloads="NAME,... of ours and/or FILE.py (default: all of ours)",
    json="write the figures (the issue's JSON contract) to this file",
    check="exit 1 when a workload regressed beyond its band or is unstable"))
def perf(c: Context, port: str = "unix", board: str | None = None, workloads_: str | None = None,
         json: str | None = None, check: bool = False) -> None:
    """Count instructions of every workload, tree as it is now vs pin + series, under valgrind."""
    target = targets.find(port, board)
    # a wrong name is said before anything else
    chosen = target.workloads(workloads.select(workloads_), named=workloads_ is not None)
    if target.emulator:
        _perf_emulated(target, chosen, json, check)
        return
    if shutil.which("valgrind") is None:
        raise MissingTool("valgrind", "perf: valgrind is not installed", "apt-get install valgrind")
    project = fw.checkout()
    console = fw.console_of(project)
    base, head = builds.default_pair(project, mirror=fw.options().mirror, options=fw.build_options())
    bench = Bench(project.executor, project.build_root / "perf")
    comparison = gate.compare(bench, base, head, chosen, on_row=console.info)
    if json:
        data = report(record_mod.provenance(project, fw.command_line()), "unix", [comparison])
        fw.write_json(json, data)
        console.ok(f"figures written to {json}")
    line = check_line([comparison])
    if check and line:
        raise Exit(line, code=1)


def _perf_emulated(target: targets.PerfTarget, chosen: list[workloads.Workload], json: str | None,
                   check: bool) -> None:
    """``--port stmhal --board PYBV10_QEMU``: :mod:`mpforge.bench.perf.emulated`."""
    from mpforge.bench.perf import emulated

    project = fw.checkout()
    console = fw.console_of(project)
    comparison = emulated.compare_emulated(project, target, chosen, mirror=fw.options().mirror,
                                           options=fw.build_options(), on_row=console.info)
    if json:
        data = report(record_mod.provenance(project, fw.command_line()), target.name, [comparison])
        fw.write_json(json, data)
        console.ok(f"figures written to {json}")
    line = check_line([comparison])
    if check and line:
        raise Exit(line, code=1)
