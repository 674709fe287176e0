"""Deplib built-in steps and pinned sources, on real files and the host toolchain."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import git, make_repo, project_for
from mpforge.core.config import SourceDef
from mpforge.core.errors import ConfigError
from mpforge.firmware.deplibs import _builtin
from mpforge.tree.fetch import fetch_source
from mpforge.tree.git import Git


@pytest.fixture
def unix_target(fixture_project):
    return project_for(fixture_project).target("unix")


def test_copy_skips_git_metadata(unix_target, tmp_path):
    src = tmp_path / "src"
    (src / ".git").mkdir(parents=True)
    (src / "include").mkdir()
    (src / "include" / "a.h").write_text("x")
    log = tmp_path / "log"
    _builtin(unix_target, ["@copy", str(src), "out"], tmp_path, log)
    assert (tmp_path / "out" / "include" / "a.h").read_text() == "x"
    assert not (tmp_path / "out" / ".git").exists()
    assert "@copy" in log.read_text()


def test_ar_merge_adds_every_member(unix_target, tmp_path):
    for name in ("one", "two", "three"):
        (tmp_path / f"{name}.c").write_text(f"int {name}(void) {{ return 1; }}\n")
        subprocess.run(["gcc", "-c", f"{name}.c"], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rcs", "libdest.a", "one.o"], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rcs", "libsrc.a", "two.o", "three.o"], cwd=tmp_path, check=True)
    _builtin(unix_target, ["@ar-merge", "libdest.a", "libsrc.a"], tmp_path, tmp_path / "log")
    members = subprocess.run(["ar", "t", "libdest.a"], cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE).stdout.split()
    assert sorted(members) == ["one.o", "three.o", "two.o"]


def test_render_fills_placeholders_and_step_values(unix_target, tmp_path):
    _builtin(unix_target, ["@render", "esp8266/sdk_shim.c.j2", "shim.c",
                           "enable_qmode_address=0x400044c0"], tmp_path, tmp_path / "log")
    text = (tmp_path / "shim.c").read_text()
    assert ".set Enable_QMode, 0x400044c0" in text
    assert "user_rf_cal_sector_set" in text
    with pytest.raises(Exception, match="enable_qmode_address"):  # a missing variable is an error
        _builtin(unix_target, ["@render", "esp8266/sdk_shim.c.j2", "x.c"], tmp_path, tmp_path / "log")


def test_patch_applies_inside_a_folder_of_another_repository(unix_target, fixture_project):
    # the export lives inside the project's own checkout: git must not take it for the target
    work = fixture_project / "build" / "deplibs" / "x" / "src"
    work.mkdir(parents=True)
    (work / "c_types.h").write_text("typedef unsigned int size_t;\n")
    patch = fixture_project / "fix.patch"
    patch.write_text("--- a/c_types.h\n+++ b/c_types.h\n@@ -1 +1 @@\n-typedef unsigned int size_t;\n"
                     "+#include <stddef.h>\n")
    _builtin(unix_target, ["@patch", str(patch)], work, work.parent / "log")
    assert (work / "c_types.h").read_text() == "#include <stddef.h>\n"


def test_unknown_builtin_is_a_config_error(unix_target, tmp_path):
    with pytest.raises(ConfigError, match="unknown built-in deplib step"):
        _builtin(unix_target, ["@frobnicate", "x"], tmp_path, tmp_path / "log")


def test_pinned_source_is_fetched_through_the_mirror_at_its_commit(fixture_project, fixture_mirror,
                                                                   tmp_path):
    sdk = tmp_path / "sdk"
    first = make_repo(Path(__file__).resolve().parents[1] / "fixtures" / "deps" / "berkeley-db-1.xx", sdk)
    (sdk / "NEWER").write_text("later work")
    git(sdk, "add", "NEWER")
    git(sdk, "commit", "-q", "-m", "later")
    (fixture_mirror.base / "vendor").mkdir(exist_ok=True)
    git(tmp_path, "clone", "-q", "--bare", str(sdk), str(fixture_mirror.base / "vendor" / "sdk.git"))
    project = project_for(fixture_project)
    source = SourceDef("sdk", "https://github.com/vendor/sdk.git", first)
    git_ = Git(project.executor, str(fixture_mirror.base))
    assert fetch_source(project, git_, source) is True
    dest = fixture_project / "build" / "sources" / "sdk"
    assert git(dest, "rev-parse", "HEAD") == first  # the pin, not the newest commit
    assert not (dest / "NEWER").exists()
    assert fetch_source(project, git_, source) is False  # already there
