"""How a build is shown: a line per change in CI, a live table on a terminal from the first make."""

from __future__ import annotations

import io

from conftest import project_for
from mpforge.cli.render.build import BuildProgress
from mpforge.cli.ui import Console
from mpforge.firmware.matrix import Status, TargetResult


def test_in_ci_each_change_is_a_line_skips_and_failures_included(fixture_project):
    project = project_for(fixture_project)
    targets = [project.target("unix"), project.target("bare-arm")]
    stream = io.StringIO()
    with BuildProgress(Console(plain=True, stream=stream), targets) as on_change:
        on_change(TargetResult("bare-arm", Status.SKIPPED, reason="no arm-none-eabi-gcc"))
        on_change(TargetResult("unix", Status.BUILDING))
        on_change(TargetResult("unix", Status.OK, duration=1.5))
    lines = stream.getvalue()
    assert "bare-arm: skipped: no arm-none-eabi-gcc" in lines
    assert "unix: building" in lines and "unix: ok in 1.5 s" in lines


def test_on_a_terminal_the_live_table_waits_for_the_first_make(fixture_project):
    # the tree's fetch and the deplibs' spinners come first: a live table must not meet them
    project = project_for(fixture_project)
    targets = [project.target("unix"), project.target("bare-arm")]
    console = Console(plain=False, stream=io.StringIO())
    progress = BuildProgress(console, targets)
    with progress as on_change:
        on_change(TargetResult("bare-arm", Status.SKIPPED, reason="no compiler"))
        assert progress.live is None
        with console.status("deplib axtls"):  # what preparation shows meanwhile
            pass
        on_change(TargetResult("unix", Status.BUILDING))
        assert progress.live is not None
        rows = progress._table().rows
        assert len(rows) == 2  # the skipped target is in the table too
    assert not progress.live.is_started


def test_one_target_shows_its_make_step_only(fixture_project):
    project = project_for(fixture_project)
    stream = io.StringIO()
    with BuildProgress(Console(plain=True, stream=stream), [project.target("unix")]) as on_change:
        on_change(TargetResult("unix", Status.BUILDING))
        on_change(TargetResult("unix", Status.OK, duration=1.0))
    assert "make unix" in stream.getvalue() and "ok in" not in stream.getvalue()
