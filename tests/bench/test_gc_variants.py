"""bench-gc's firmwares: one meaning of "unpatched" for both halves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, project_for
from mpforge.bench.gc import variants
from mpforge.core.errors import MpforgeError


def test_the_unpatched_series_leaves_out_only_the_feature(fixture_project: Path) -> None:
    project = project_for(fixture_project)
    names = [p.name for p in variants.series_without(project, "gc-threshold.patch")]
    assert names == ["0001-gc-threshold-decl.patch"]
    with pytest.raises(MpforgeError, match="exactly one patch"):
        variants.series_without(project, "gc-threshold")  # both patch names contain it
    with pytest.raises(MpforgeError, match="matches: none"):
        variants.series_without(project, "nope")


def test_patches_after_the_feature_stay_in_the_unpatched_tree(fixture_project: Path) -> None:
    """The series cut off before the feature would also drop what follows it (the tools'
    patches, the UART fix...) and credit the feature with their effect."""
    project = project_for(fixture_project)
    later = project.patches_dir / "0003-after-the-feature.patch"
    shutil.copyfile(project.patches_dir / "0001-gc-threshold-decl.patch", later)
    with (project.patches_dir / "series").open("a") as series:
        series.write(f"{later.name}\n")
    names = [p.name for p in variants.series_without(project, "0002-gc-threshold")]
    assert names == ["0001-gc-threshold-decl.patch", "0003-after-the-feature.patch"]


def test_both_halves_build_unpatched_through_the_one_definition() -> None:
    """The host and QEMU halves name no series of their own: both call build_variant."""
    from mpforge.bench.gc import emulated, host

    for module in (host, emulated):
        source = Path(module.__file__).read_text()
        assert "build_variant(" in source and "read_series" not in source, module.__name__
        assert "variant_project" not in source, module.__name__


def test_fixture_series_is_what_the_tests_above_assume() -> None:
    assert (FIXTURES / "patches" / "0001-gc-threshold-decl.patch").is_file()


def test_patches_built_on_the_feature_leave_with_it(fixture_project: Path) -> None:
    """0019 (auto mode) patches 0010's code: a series without 0010 but with it would
    not apply, so "unpatched" for the threshold leaves both out."""
    project = project_for(fixture_project)
    auto = project.patches_dir / "0003-gc-threshold-auto.patch"
    shutil.copyfile(project.patches_dir / "0001-gc-threshold-decl.patch", auto)
    (project.patches_dir / "0002-gc-alloc-threshold.patch").write_text(
        (project.patches_dir / "0001-gc-threshold-decl.patch").read_text())
    with (project.patches_dir / "series").open("a") as series:
        series.write(f"0002-gc-alloc-threshold.patch\n{auto.name}\n")
    names = [p.name for p in variants.series_without(project, "gc-alloc-threshold")]
    assert "0003-gc-threshold-auto.patch" not in names and "0002-gc-alloc-threshold.patch" not in names
    assert "0003-gc-threshold-auto.patch" in [p.name for p in variants.series_without(project,
                                                                                       "0002-gc-threshold")]
