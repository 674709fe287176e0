"""``invoke perf``: the instruction-exact performance gate (issue #28; unix, default mode).

Builds the tree as it is now and the pin plus the series (:mod:`mpforge.bench.perf.builds`),
counts every workload on both under valgrind at several heap layouts
(:mod:`mpforge.bench.perf.gate`) and prints workload | base | head | delta | delta % |
band % | verdict | top functions. ``--json F`` writes the issue's contract;
``--check`` exits 1 naming every regressed or unstable workload in one line.
:mod:`mpforge.cli.tasks` registers this task in its collection.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from invoke import Context, Exit

from mpforge.bench import record as record_mod
from mpforge.bench.perf import builds, gate, workloads
from mpforge.bench.perf.compare import check_line, report
from mpforge.bench.perf.layouts import Bench
from mpforge.cli.tasks import (
    _build_options,
    _command_line,
    _console,
    _project,
    _write_json,
    helps,
    reports_errors,
    task,
)


@task(help=helps(
    "mirror", "verbose", "debug",
    port="unix (the emulated pyboard is not landed yet)",
    workloads="NAME,... of ours and/or FILE.py (default: all of ours)",
    json="write the figures (the issue's JSON contract) to this file",
    check="exit 1 when a workload regressed beyond its band or is unstable"))
@reports_errors
def perf(c: Context, port: str = "unix", workloads_: str | None = None, json: str | None = None,
         check: bool = False, mirror: str | None = None, verbose: bool = False,
         debug: bool = False) -> None:
    """Count instructions of every workload, tree as it is now vs pin + series, under valgrind."""
    if port != "unix":
        raise Exit(f"perf: --port {port} is not supported yet (unix only)", code=1)
    chosen = workloads.select(workloads_)  # a wrong name is said before anything else
    if shutil.which("valgrind") is None:
        raise Exit("perf: valgrind is not installed (apt-get install valgrind)", code=1)
    project = _project(verbose)
    console = _console(project)
    base, head = builds.default_pair(project, mirror=mirror, options=_build_options())
    bench = Bench(project.executor, project.build_root / "perf")
    comparison = gate.compare(bench, base, head, chosen, on_row=console.info)
    if json:
        data = report(record_mod.provenance(project, _command_line()), "unix", [comparison])
        Path(json).parent.mkdir(parents=True, exist_ok=True)
        _write_json(json, data)
        console.ok(f"figures written to {json}")
    line = check_line([comparison])
    if check and line:
        raise Exit(line, code=1)
