"""bench-test: cold and warm against the runner, no division by a runner that took no time,
an empty selection is an error; a real run on the fixture tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import project_for
from mpforge.bench import testsuite
from mpforge.bench.testsuite import TestBench
from mpforge.core.errors import BenchError
from mpforge.firmware.pipeline import Pipeline


def figures(runner: float, cold: float, warm: float, differing: tuple[str, ...] = ()) -> TestBench:
    return TestBench("unix (host)", 10, runner, cold, warm, 2, not differing, list(differing), [])


def test_the_ratios_and_the_verdicts_are_its_targets() -> None:
    assert [(t.measured, t.met) for t in figures(10.0, 5.0, 3.0).limits] == [(0, True), (0.5, True), (0.3, True)]
    assert [t.met for t in figures(10.0, 7.0, 4.5).limits] == [True, False, False]
    assert [t.met for t in figures(10.0, 5.0, 3.0, ("basics/a.py",)).limits] == [False, True, True]


def test_a_runner_that_took_no_time_gives_no_target_and_no_crash() -> None:
    zero = figures(0.0, 1.0, 1.0)
    assert zero.cold_ratio == zero.warm_ratio == 0.0 and zero.limits == []
    assert zero.as_dict()["targets_checked"] == []


def test_bench_test_times_the_runner_and_invoke_test_cold_and_warm(fixture_project, fixture_mirror,
                                                                   tmp_path) -> None:
    from conftest import run_cli, write_baseline

    assert run_cli(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    write_baseline(fixture_project, {"misc/drift.py": "the fixture's drift"})
    out = tmp_path / "bench.json"
    result = run_cli(fixture_project, "bench-test", "--port", "unix", "--rounds", "2", "--jobs", "2",
                     "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert figures["rounds"] == 2 and len(figures["samples"]) == 2
    assert figures["same_verdicts"] and figures["differing"] == []
    assert all(s > 0 for sample in figures["samples"] for s in sample)
    assert [t["name"] for t in figures["targets_checked"]] == [
        "verdicts that differ from run-tests'", "invoke test, cold / the tree's run-tests",
        "invoke test, warm / the tree's run-tests"]
    # the timed commands ran under no lock of the bench's, and left the cache warm
    assert "cold" in result.stdout and "warm" in result.stdout


def test_a_pattern_that_selects_no_test_is_an_error(fixture_project: Path, monkeypatch) -> None:
    project = project_for(fixture_project)
    monkeypatch.setattr("mpforge.testing.testrun.select_tests", lambda tests_dir, dirs, pattern: [])
    with pytest.raises(BenchError, match="no test of unix matches -k 'nothing'"):
        testsuite.bench_test(Pipeline(project), project.target("unix"), 2, "nothing", None)
