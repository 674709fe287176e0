"""Reading ``patches/series``: order, comments, strip levels, and the lines it refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES
from mpforge.core.errors import ConfigError
from mpforge.tree.series import read_series


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    folder = tmp_path / "patches"
    shutil.copytree(FIXTURES / "patches", folder)
    return folder


def test_series_parsing_skips_comments_and_reads_strip_levels(patches):
    series = read_series(patches)
    assert [(p.name, p.strip) for p in series] == [
        ("0001-gc-threshold-decl.patch", 1), ("0002-gc-threshold.patch", 1)]


def test_a_strip_level_option_is_read(patches):
    (patches / "series").write_text("# ours\n0001-gc-threshold-decl.patch -p0  # a comment\n")
    (series,) = read_series(patches)
    assert (series.name, series.strip, series.path) == ("0001-gc-threshold-decl.patch", 0,
                                                        patches / "0001-gc-threshold-decl.patch")


def test_no_series_file_is_no_patches(tmp_path):
    assert read_series(tmp_path) == []


def test_series_naming_a_missing_file_is_a_config_error(patches):
    (patches / "series").write_text("nosuch.patch\n")
    with pytest.raises(ConfigError, match="line 1: no such patch 'nosuch.patch'"):
        read_series(patches)


def test_series_with_an_unknown_option_is_refused(patches):
    (patches / "series").write_text("0001-gc-threshold-decl.patch -R\n")
    with pytest.raises(ConfigError, match="unknown option '-R'"):
        read_series(patches)
