"""``invoke test``: the tree's test suite on the host, an emulated board or real boards."""

from __future__ import annotations

import os

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli.framework import WAIT_HELP, task
from mpforge.cli.render import tests as render_tests
from mpforge.core.errors import MpforgeError
from mpforge.firmware.selection import select, split_names
from mpforge.testing import testrun as testrun_mod


@task(shared=("mirror", "jobs"), help=dict(port="port whose test suite to run (default unix)",
    jobs="shards run in parallel (default: CPU count)",
    junit="write JUnit XML here", json="write the results as JSON here",
    k="only tests whose path matches (substring or glob)",
    device="run on a board: /dev/ttyACM0, auto, rfc2217://host:port, execpty:<command>, or labgrid "
           "places: labgrid:PLACE, labgrid:TAG=VALUE[,...] (--jobs N places, one shard each)",
    wait=WAIT_HELP,
    emulator="run on emulated boards, one per shard (stmhal, minimal: qemu)",
    retry_failed="re-run failed tests up to N times on the same shard; one that then "
                 "passes is 'flaky' and does not fail the run (default 0)",
    no_exp_cache="compute every expected output with CPython (default: cached in build/test-cache)",
    coverage="run the port's coverage variant and write Cobertura XML, HTML and coverage per patch "
             "(gcovr) into --coverage-out",
    coverage_out="where --coverage writes its reports (default build/coverage)",
    emit="the runner's code emitter: bytecode (default) or native (its own baseline)",
    heapsize="the interpreter's heap size for every test, e.g. 32k (its own baseline)",
    dirs="test folders to run instead of the port's, e.g. thread (their own baseline)"))
def test(c: Context, port: str = "unix", jobs: int = 0, junit: str | None = None,
         json: str | None = None, k: str | None = None, device: str | None = None,
         emulator: str | None = None, retry_failed: int = 0, no_exp_cache: bool = False,
         coverage: bool = False, coverage_out: str = "build/coverage", emit: str | None = None,
         heapsize: str | None = None, dirs: str | None = None, wait: int = 0) -> None:
    """Run the tree's test suite (sharded) on the built port; exit 0 only without unexpected failures."""
    spec = fw.device_spec(device)
    project = fw.checkout()
    pipeline = fw.pipeline(project)
    report = testrun_mod.run_for_target(pipeline, select(project, port).target(),
                                        jobs=jobs or os.cpu_count() or 1, pattern=k, device=spec,
                                        emulator=emulator, retries=retry_failed,
                                        exp_cache=not no_exp_cache,
                                        coverage=project.root / coverage_out if coverage else None,
                                        run=testrun_mod.RunOptions(emit or "", heapsize or "",
                                                                   tuple(split_names(dirs or ""))),
                                        wait=wait)
    unwritten = None
    try:  # the result files first: whatever else happens, they are there
        render_tests.write_outputs(report, junit, json)
    except MpforgeError as exc:
        unwritten = exc
    render_tests.show_test_report(fw.console_of(project), report)
    if unwritten is not None:
        fw.console_of(project).error(unwritten.one_line())
    if not report.ok or unwritten is not None:
        raise Exit(code=1)
