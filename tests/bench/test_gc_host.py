"""bench-gc on the host: sizes, the target checks, and the build through the shared options."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import project_for
from mpforge.bench.gc import host
from mpforge.bench.gc.host import MIB, Report, Run, check_targets, parse_size
from mpforge.core.errors import MpforgeError
from mpforge.firmware.pipeline import BuildOptions


def test_parse_size() -> None:
    assert parse_size("8M") == 8 * MIB
    assert parse_size("256k") == 256 * 1024
    assert parse_size("4096") == 4096
    assert parse_size("off") == -1
    with pytest.raises(MpforgeError, match="not a size"):
        parse_size("lots")


def report(rss_with: int, rss_without: int, cpu_big: float, cpu_small: float,
           instr: tuple[int, int] | None) -> Report:
    r = Report(runs=[Run("patched", 512 * MIB, MIB, rss_with, cpu_big),
                     Run("patched", 512 * MIB, -1, rss_without, 0.07),
                     Run("patched", 8 * MIB, MIB, 3000, cpu_small),
                     Run("patched", 8 * MIB, -1, 10000, 0.04)])
    if instr:
        r.instructions = {"patched-off": instr[0], "unpatched": instr[1]}
    return r


def test_targets_are_computed_from_the_grid() -> None:
    met = check_targets(report(3000, 60000, 0.04, 0.04, (1005, 1000)), [8 * MIB, 512 * MIB],
                        [-1, MIB])
    assert [(t.name.split(",")[0], t.measured, t.met) for t in met] == [
        ("peak RSS", 0.05, True), ("CPU", 1.0, True), ("instructions", 1.005, True)]
    missed = check_targets(report(9000, 60000, 0.09, 0.04, (1020, 1000)), [8 * MIB, 512 * MIB],
                           [-1, MIB])
    assert [t.met for t in missed] == [False, False, False]


def test_targets_not_covered_by_the_grid_are_left_out() -> None:
    assert check_targets(report(3000, 60000, 0.04, 0.04, None), [512 * MIB], [-1]) == []


def test_the_binaries_are_built_with_the_commands_mirror_and_options(fixture_project: Path, monkeypatch) -> None:
    """Host bench-gc builds like every other task: the mirror and the shared options reach
    both builds, and the unpatched one is the shared variant (series minus the feature)."""
    project = project_for(fixture_project)
    seen: list[tuple[str, str | None, BuildOptions]] = []

    class Built:
        def __init__(self, where: str) -> None:
            self.dist_dir = Path(where)

    class FakePipeline:
        def __init__(self, project: object, mirror: str | None, *, options: BuildOptions) -> None:
            self.mirror, self.options = mirror, options

        def build_one(self, target: object) -> Built:
            seen.append(("patched", self.mirror, self.options))
            return Built("patched")

    def fake_variant(project: object, feature: str, port: object, board: object, *, mirror: str | None,
                     options: BuildOptions) -> Built:
        seen.append((f"without {feature}", mirror, options))
        return Built("unpatched")

    monkeypatch.setattr(host, "Pipeline", FakePipeline)
    monkeypatch.setattr(host, "build_variant", fake_variant)
    options = BuildOptions(jobs=3, ccache=False)
    paths = host.binaries(project, "gc-threshold.patch", mirror="file:///m", options=options)
    assert paths == {"patched": Path("patched/micropython"), "unpatched": Path("unpatched/micropython")}
    assert seen == [("patched", "file:///m", options), ("without gc-threshold.patch", "file:///m", options)]


def test_host_thresholds_take_auto() -> None:
    from mpforge.bench.gc.host import parse_threshold, threshold_text

    assert [parse_threshold(t) for t in ("off", "1M", "auto/2", " auto/8")] == [-1, MIB, -2, -8]
    assert [threshold_text(t) for t in (-1, MIB, -2)] == ["off", "1024 KiB", "auto/2"]
    for bad in ("auto/1", "auto/0", "auto/x", "auto"):
        with pytest.raises(MpforgeError):
            parse_threshold(bad)
