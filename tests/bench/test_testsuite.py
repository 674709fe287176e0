"""bench-test: no division by a runner that took no time; an empty selection is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import project_for
from mpforge.bench import testsuite
from mpforge.bench.testsuite import TestBench
from mpforge.core.errors import BenchError
from mpforge.firmware.pipeline import Pipeline


def figures(runner: float, ours: float) -> TestBench:
    return TestBench("unix (host)", 10, runner, ours, 2, True, [], [])


def test_the_ratio_and_its_target() -> None:
    assert [(t.measured, t.met) for t in figures(10.0, 5.0).limits] == [(0.5, True)]
    assert [t.met for t in figures(10.0, 7.0).limits] == [False]


def test_a_runner_that_took_no_time_gives_no_target_and_no_crash() -> None:
    zero = figures(0.0, 1.0)
    assert zero.ratio == 0.0 and zero.limits == [] and zero.as_dict()["targets_checked"] == []


def test_a_pattern_that_selects_no_test_is_an_error(fixture_project: Path, monkeypatch) -> None:
    project = project_for(fixture_project)
    monkeypatch.setattr("mpforge.testing.testrun.select_tests", lambda tests_dir, dirs, pattern: [])
    with pytest.raises(BenchError, match="no test of unix matches -k 'nothing'"):
        testsuite.bench_test(Pipeline(project), project.target("unix"), 2, "nothing", None)
