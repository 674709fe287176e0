"""The one build path: each shared step once per command, failures kept with their targets."""

from __future__ import annotations

import shutil

import pytest

from conftest import project_for
from mpforge.core.errors import MissingTool, MpforgeError
from mpforge.firmware import pipeline as pipeline_mod
from mpforge.firmware.matrix import Status
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.firmware.selection import select

needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """Wrap ``pipeline.<name>`` so each call is recorded (the real one still runs)."""
    calls: list[object] = []
    real = getattr(pipeline_mod, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline_mod, name, wrapper)
    return calls


@needs_arm
def test_two_boards_prepare_the_tree_once_and_probe_the_toolchain_once(fixture_project, fixture_mirror,
                                                                      monkeypatch):
    prepared = counting(monkeypatch, "prepare_tree")
    probed = counting(monkeypatch, "find_toolchain")
    tools = counting(monkeypatch, "find_tool")
    project = project_for(fixture_project)
    pipeline = Pipeline(project, str(fixture_mirror.base), keep_going=True)
    chosen = select(project, "stmhal", "PYBV10,PYBV11")
    targets = chosen.targets(pipeline)  # board names are checked against the patched tree
    report = pipeline.build(targets, BuildOptions(ccache=False))

    assert [t.name for t in targets] == ["stmhal-PYBV10", "stmhal-PYBV11"]
    assert {r.target: r.status for r in report.results} == {"stmhal-PYBV10": Status.OK,
                                                            "stmhal-PYBV11": Status.OK}
    assert len(prepared) == 1  # the selection's check and the build share one preparation
    assert len(probed) == 1  # one toolchain for both boards: probed once
    assert sorted(t.name for t in tools) == sorted(project.catalog.port("stmhal").tools)  # each tool once
    # asking again (as `invoke ci`'s test step does) builds nothing more
    again = pipeline.build_one(targets[0])
    assert again is report.results[0].built
    assert len(prepared) == 1


def test_a_missing_toolchain_skips_its_targets_in_a_matrix_and_is_raised_for_one(fixture_project,
                                                                                fixture_mirror,
                                                                                monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no compiler at all
    project = project_for(fixture_project)
    target = project.target("bare-arm")
    matrix = Pipeline(project, str(fixture_mirror.base), keep_going=True)
    report = matrix.build([target])
    assert report.results[0].status == Status.SKIPPED
    assert isinstance(report.results[0].error, MissingTool)
    assert not (fixture_project / "micropython" / "py").exists()  # skipped before any fetch

    with pytest.raises(MissingTool):
        Pipeline(project, str(fixture_mirror.base)).build([target])


@needs_arm
def test_a_port_whose_sources_cannot_be_fetched_fails_alone_in_a_matrix(fixture_project, fixture_mirror,
                                                                       monkeypatch):
    # as a mirror without esp8266's SDK does to the real tree: the fetch reports the port
    real = pipeline_mod.prepare_tree

    def without_stmhal_sources(*args, **kwargs):
        tree = real(*args, **kwargs)
        tree.failed_ports["stmhal"] = MpforgeError("mirror has no stmhal sources", "add them")
        return tree
    monkeypatch.setattr(pipeline_mod, "prepare_tree", without_stmhal_sources)
    project = project_for(fixture_project)
    targets = select(project, "stmhal,bare-arm").targets()
    report = Pipeline(project, str(fixture_mirror.base), keep_going=True).build(targets,
                                                                                 BuildOptions(ccache=False))
    assert {r.target: r.status for r in report.results} == {"stmhal-PYBV10": Status.FAILED,
                                                            "bare-arm": Status.OK}
    assert report.failed[0].reason == "mirror has no stmhal sources (add them)"

    alone = Pipeline(project, str(fixture_mirror.base))  # one target: the error itself
    with pytest.raises(MpforgeError, match="mirror has no stmhal sources"):
        alone.build([project.target("stmhal")])


def test_build_options_budget_defaults_to_the_cpu_count():
    assert BuildOptions(jobs=3).budget == 3
    assert BuildOptions().budget >= 1


def test_a_bug_while_making_fails_its_target_with_the_traceback_in_a_matrix(fixture_project):
    from mpforge.firmware import matrix
    from mpforge.firmware.matrix import TargetResult

    project = project_for(fixture_project)
    targets = [project.target("unix"), project.target("bare-arm")]

    def broken_make(target, jobs, make_env, pass_fds):
        raise RuntimeError(f"bug while making {target.name}")

    results = {t.name: TargetResult(t.name) for t in targets}
    matrix.run(targets, results, broken_make, jobs=2, keep_going=True)
    for result in results.values():
        assert result.status == Status.FAILED and "internal error" in result.reason
        assert "RuntimeError: bug while making" in result.details  # the traceback, kept
    alone = {"unix": TargetResult("unix")}
    with pytest.raises(RuntimeError):  # one target, not keep_going: raised where it happened
        matrix.run(targets[:1], alone, broken_make, jobs=2, keep_going=False)


def test_a_make_killed_by_ctrl_c_is_not_announced_as_a_failure(fixture_project):
    # the task says once that the command was interrupted; no "failed" line per target
    import signal

    from mpforge.core.errors import BuildFailed
    from mpforge.firmware import matrix
    from mpforge.firmware.matrix import TargetResult

    project = project_for(fixture_project)
    targets = [project.target("unix"), project.target("bare-arm")]

    def interrupted_make(target, jobs, make_env, pass_fds):
        if target.name == "unix":
            raise BuildFailed("build of unix failed", returncode=-signal.SIGINT)
        raise BuildFailed("build of bare-arm failed", returncode=2)

    heard: list[tuple[str, Status]] = []
    results = {t.name: TargetResult(t.name) for t in targets}
    matrix.run(targets, results, interrupted_make, jobs=2,
               on_change=lambda r: heard.append((r.target, r.status)))
    assert ("bare-arm", Status.FAILED) in heard  # a real failure is heard
    assert ("unix", Status.FAILED) not in heard
    assert results["unix"].status == Status.FAILED  # (and still recorded)
