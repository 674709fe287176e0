"""``invoke bench-build --remote-cache URL``: what a shared compile cache saves a second checkout.

Three builds of the same targets, each from clean build folders through mpforge's own
pipeline (the parallel phase is timed: after the tree, toolchains and deplibs are ready):

1. **cold**: this checkout, an empty local ccache folder, the remote read-write: every
   object is compiled, and written to the remote (a remote that already held them is
   said: that run was not cold);
2. **second checkout**: a worktree of this checkout's commit at another, longer path, its
   own empty local ccache folder, the same remote: the objects should all come from it;
3. **warm local**: this checkout again, the local folder of run 1, no remote.

ccache's own counters of each run's folder are the figures. Goals (issue #29): the second
checkout gets >= 95% of its objects from the remote, its wall time is <= 1.2x the warm
local one and <= 0.4x the cold one, and its artifacts are byte-identical to the first's.

The local folders are handed to ccache as ``CCACHE_DIR`` for the duration of each run
(the benchmark owns its process; nothing else compiles in it meanwhile).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from mpforge.bench.targets import BenchTarget
from mpforge.core.errors import BenchError, MissingTool
from mpforge.core.project import Project, Target
from mpforge.firmware.ccache import CcacheStats
from mpforge.firmware.ccache_remote import shown
from mpforge.firmware.matrix import MatrixReport
from mpforge.firmware.pipeline import BuildOptions, Pipeline


@dataclass
class Run:
    """One of the three builds: its parallel phase's wall time and ccache's figures."""

    wall: float
    ccache: dict[str, int | float | None]
    failed: list[str] = field(default_factory=list)


@dataclass
class RemoteBench:
    targets: list[str]
    jobs: int
    remote: str  # shown with any secret masked
    cold: Run
    second_checkout: Run
    warm_local: Run
    #: targets whose artifacts differ between the two checkouts (sha256 of each artifact)
    differing: list[str]
    #: run 1 found objects in the remote already: its figure is not a cold build
    remote_was_warm: bool = False

    REMOTE_HIT_GOAL: ClassVar[float] = 0.95
    VS_WARM_LIMIT: ClassVar[float] = 1.2
    VS_COLD_LIMIT: ClassVar[float] = 0.4

    @property
    def limits(self) -> list[BenchTarget]:
        rate = self.second_checkout.ccache.get("remote_hit_rate") or 0.0
        assert isinstance(rate, float | int)
        targets = [BenchTarget("second checkout: remote hits / compiles", round(float(rate), 3),
                               self.REMOTE_HIT_GOAL, rate >= self.REMOTE_HIT_GOAL)]
        if self.warm_local.wall:
            ratio = self.second_checkout.wall / self.warm_local.wall
            targets.append(BenchTarget("second checkout wall / warm local wall", round(ratio, 3),
                                       self.VS_WARM_LIMIT, ratio <= self.VS_WARM_LIMIT))
        if self.cold.wall:
            ratio = self.second_checkout.wall / self.cold.wall
            targets.append(BenchTarget("second checkout wall / cold wall", round(ratio, 3), self.VS_COLD_LIMIT,
                                       ratio <= self.VS_COLD_LIMIT and not self.remote_was_warm,
                                       "the remote was not empty: run 1 was not cold"
                                       if self.remote_was_warm else ""))
        targets.append(BenchTarget("targets whose artifacts differ", len(self.differing), 0, not self.differing))
        return targets

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "targets_checked": [t.as_dict() for t in self.limits]}


@contextlib.contextmanager
def ccache_dir(folder: Path) -> Iterator[None]:
    """ccache's local folder for what runs inside (``CCACHE_DIR``), restored after."""
    before = os.environ.get("CCACHE_DIR")
    os.environ["CCACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CCACHE_DIR", None)
        else:
            os.environ["CCACHE_DIR"] = before


def _run(pipeline: Pipeline, targets: list[Target], options: BuildOptions) -> tuple[Run, MatrixReport]:
    report = pipeline.build(targets, options)
    stats = report.ccache or CcacheStats(0, 0)
    return Run(round(report.parallel_seconds, 2), stats.as_dict(),
               [f"{r.target} ({r.reason})" for r in report.failed + report.skipped]), report


def _artifacts(report: MatrixReport) -> dict[str, list[tuple[str, str]]]:
    return {r.target: [(a["name"], a["sha256"]) for a in r.built.manifest.get("artifacts", [])]
            for r in report.results if r.built is not None}


def bench_remote(pipeline: Pipeline, targets: list[Target], jobs: int, remote: str) -> RemoteBench:
    """The three builds of the module docstring; ``remote`` is checked already."""
    if not targets:
        raise BenchError("bench-build: the selection holds no target", "pick ports with --port")
    if shutil.which("ccache") is None:  # without it every figure would be 0, and read as a miss
        raise MissingTool("ccache", "bench-build --remote-cache: ccache is not installed",
                          "apt-get install ccache")
    project, console = pipeline.project, pipeline.project.console
    executor = project.executor
    work = Path(tempfile.mkdtemp(prefix="mpforge-bench-remote-"))
    other_root = work / "a-second-checkout-at-another-longer-path" / project.root.name
    try:
        options = BuildOptions(jobs=jobs, clean=True, ccache=True, ccache_remote=remote, clean_deplibs=False)
        console.step(f"1/3 cold: {len(targets)} target(s), an empty local cache, remote {shown(remote)}")
        with ccache_dir(work / "ccache-first"):
            cold, first = _run(pipeline, targets, options)
        if not first.built:
            raise BenchError("bench-build: no target was built, nothing to measure: "
                             + ("; ".join(cold.failed) or "nothing was made"),
                             "install what `invoke doctor --port P` names, or pick other ports")
        names = [r.target for r in first.built]
        chosen = [t for t in targets if t.name in names]

        console.step(f"2/3 a second checkout at another path ({other_root.parent.name}/), "
                     "an empty local cache, the same remote")
        executor.run(["git", "-C", str(project.root), "worktree", "add", "--detach", str(other_root), "HEAD"],
                     what="a second checkout for the benchmark")
        other = Project(other_root, project.console, executor)
        second_pipeline = Pipeline(other, pipeline.mirror, keep_going=True, options=options)
        with ccache_dir(work / "ccache-second"):
            second, second_report = _run(second_pipeline, [dataclasses.replace(t, project=other) for t in chosen],
                                         options)

        console.step("3/3 warm local: this checkout, the local cache of run 1, no remote")
        with ccache_dir(work / "ccache-first"):
            warm, _ = _run(pipeline, chosen,
                           BuildOptions(jobs=jobs, clean=True, ccache=True, clean_deplibs=False))
        mine, theirs = _artifacts(first), _artifacts(second_report)
        differing = sorted(n for n in names if mine.get(n) != theirs.get(n))
        return RemoteBench(names, jobs, shown(remote), cold, second, warm, differing,
                           remote_was_warm=bool(cold.ccache.get("remote_hits")))
    finally:
        if other_root.exists():
            executor.run(["git", "-C", str(project.root), "worktree", "remove", "--force", str(other_root)],
                         what="removing the benchmark's second checkout", check=False)
        shutil.rmtree(work, ignore_errors=True)
