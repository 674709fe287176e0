"""Tasks for CI: ``ci`` (the whole pipeline with CI result files) and ``ci-generate``
(GitHub / GitLab pipeline files from the data)."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Context, Exit

from mpforge.ci import generate as cigen_mod
from mpforge.ci import run as ci_mod
from mpforge.cli import framework as fw
from mpforge.cli import render
from mpforge.cli.framework import task
from mpforge.cli.render import ci as render_ci
from mpforge.cli.render import tests as render_tests
from mpforge.cli.ui import Console
from mpforge.core.errors import MpforgeError, ReportError
from mpforge.firmware.selection import select


@task(shared=("mirror", "jobs"), help=dict(ports="ports: NAME, A,B or all (default unix)",
    boards="boards of board ports: NAME, A,B or all (default: each port's default)",
    out="folder for summary.json, junit.xml, size.md, summary.md (default ci-out)",
    size_baseline="compare sizes with this baseline (from `invoke size --save`)",
    jobs="job budget (default: CPU count)",
    retry_failed="re-run failed tests up to N times; one that then passes is "
                 "'flaky' and does not fail the run (default 1)",
    coverage="run the host suites on their coverage variant; Cobertura, HTML and coverage per "
             "patch into OUT/coverage/<port>/",
    tests="all (every suite the ports' data declares: host, its variants, emulated boards) or none"))
def ci(c: Context, ports: str = "unix", boards: str | None = None, out: str = "ci-out",
       size_baseline: str | None = None, jobs: int = 0, retry_failed: int = 1, coverage: bool = False,
       tests: str = "all") -> None:
    """The whole pipeline (doctor, fetch, patch, build, test, size) with CI result files."""
    project = fw.checkout()
    console = fw.console_of(project)
    try:
        chosen = select(project, ports, boards)
    except MpforgeError as exc:  # a typo in --ports: still the result files CI uploads, red
        report = ci_mod.CiReport(steps=[ci_mod.Step("select", "failed", 0.0, exc.one_line())])
    else:
        report = ci_mod.run_ci(chosen, mirror=fw.options().mirror, options=fw.build_options(),
                               size_baseline=Path(size_baseline) if size_baseline else None,
                               retries=retry_failed, coverage=Path(out) / "coverage" if coverage else None,
                               tests=tests,
                               progress=lambda targets: render.BuildProgress(console, targets))
    try:  # the result files first: whatever else happens, they are there
        render_ci.write_outputs(report, Path(out))
    except ReportError as exc:
        report.output_error = exc.one_line()
    for suite in report.tests:
        render_tests.show_test_report(console, suite)
    render_ci.show_ci(console, report)
    if report.output_error:
        console.error(report.output_error)
    if not report.ok:
        failed = [s.name for s in report.steps if s.status == "failed"]
        if report.output_error:
            failed.append("result files")
        fw.console_of(project).error(f"ci failed: {', '.join(failed)} (results in {out}/)")
        raise Exit(code=1)
    fw.console_of(project).ok(f"ci passed (results in {out}/)")


@task(name="ci-generate", locks=False, help=dict(provider="github or gitlab",
    output="write here (default: stdout)",
    runner="container (default: debian:bookworm, apt-get) or shell (self-hosted runners "
           "with the toolchains installed: no image, no apt-get)",
    with_xc16="XC16's install folder on the runner: generates the pic16bit job (sets XC16_DIR)",
    farm="add a device-test job on a labgrid farm: the places matching this spec "
         "(labgrid:board=PYBV10_QEMU), a runner tagged 'labgrid', LG_COORDINATOR as a variable",
    perf="add the performance gate for pull/merge requests: invoke perf --base <target branch> "
         "--check, its table in the job summary (GitHub) or the merge request (GitLab)"))
def ci_generate(c: Context, provider: str = "github", output: str | None = None,
                runner: str = "container", with_xc16: str | None = None, farm: str | None = None,
                perf: bool = False) -> None:
    """Render a CI pipeline (one job per port) from the ports and toolchains data."""
    project = fw.checkout()
    settings = cigen_mod.Settings(provider, runner, {"xc16": with_xc16} if with_xc16 else {}, farm or "", perf)
    pipeline = cigen_mod.plan(project, settings)
    text = cigen_mod.render_plan(pipeline)
    notes = Console(stream=sys.stderr)  # stdout may be the pipeline itself
    for port, reason in pipeline.left_out.items():
        notes.warn(f"{port} left out: {reason}")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text)
        count = len(pipeline.jobs) + bool(pipeline.farm) + bool(pipeline.perf)
        notes.ok(f"{output}: {count} jobs ({provider}, {runner} runners)")
    else:
        sys.stdout.write(text)
