"""Submodule and mirror logic against real repositories made in tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Mirror, git, project_for
from mpforge.errors import DirtyTree, OfflineError
from mpforge.fetch import fetch
from mpforge.git import Git, mirrored, normalise_mirror
from mpforge.executor import Executor


def test_mirrored_maps_only_github_urls():
    assert mirrored("https://github.com/pfalcon/axtls", "/m") == "/m/pfalcon/axtls"
    assert mirrored("http://git.savannah.gnu.org/r/lwip.git", "/m") == \
        "http://git.savannah.gnu.org/r/lwip.git"
    assert mirrored("https://github.com/a/b.git", None) == "https://github.com/a/b.git"


def test_normalise_mirror_makes_folders_absolute_and_keeps_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalise_mirror("m/") == str(tmp_path / "m")
    assert normalise_mirror("https://cache.example/gh/") == "https://cache.example/gh"
    assert normalise_mirror("") is None


def test_git_commands_carry_the_insteadof_mapping():
    args = Git(Executor(), "/m").config_args()
    assert args == ["-c", "protocol.file.allow=always", "-c",
                    "url./m/.insteadOf=https://github.com/"]


def test_fetch_clones_tree_and_only_the_submodules_a_port_needs(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    report = fetch(project, ["unix"], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    assert report.cloned and report.pin == fixture_mirror.tree_sha
    assert git(tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert sorted(report.submodules_initialised) == ["lib/axtls", "lib/berkeley-db-1.xx",
                                                     "lib/libffi"]
    assert (tree / "lib" / "axtls" / "Makefile").exists()
    # second run: nothing to do
    again = fetch(project, ["unix"], str(fixture_mirror.base))
    assert not again.cloned and not again.checked_out and again.submodules_initialised == []


def test_fetch_checks_out_the_pin_when_the_tree_moved(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, ["unix"], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    (tree / "NEWFILE").write_text("x")
    git(tree, "add", "NEWFILE")
    git(tree, "commit", "-q", "-m", "local commit")
    report = fetch(project, ["unix"], str(fixture_mirror.base))
    assert report.checked_out
    assert git(tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha


def test_fetch_refuses_to_move_a_dirty_tree(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, ["unix"], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    git(tree, "commit", "-q", "--allow-empty", "-m", "moved")
    gc = tree / "py" / "gc.c"
    gc.write_text(gc.read_text() + "/* my edit */\n")
    with pytest.raises(DirtyTree, match=r"local changes \(py/gc.c\)"):
        fetch(project, ["unix"], str(fixture_mirror.base))
    assert gc.read_text().endswith("/* my edit */\n")


def test_fetch_at_the_pin_keeps_and_reports_local_changes(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, ["unix"], str(fixture_mirror.base))
    gc = fixture_project / "micropython" / "py" / "gc.c"
    gc.write_text(gc.read_text() + "/* my edit */\n")
    report = fetch(project, ["unix"], str(fixture_mirror.base))
    assert report.local_changes == ["py/gc.c"]
    assert gc.read_text().endswith("/* my edit */\n")


def test_mirror_missing_a_repository_is_named(fixture_project, fixture_mirror, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with pytest.raises(OfflineError, match="mirror has no .*micropython/micropython"):
        fetch(project_for(fixture_project), ["unix"], str(empty))


def test_mirror_with_nested_repo_missing_names_it(fixture_project, fixture_mirror, tmp_path):
    partial = tmp_path / "partial"
    (partial / "micropython").mkdir(parents=True)
    (partial / "micropython" / "micropython.git").symlink_to(
        fixture_mirror.bare("micropython/micropython"))
    with pytest.raises(OfflineError, match="mirror has no .*pfalcon/"):
        fetch(project_for(fixture_project), ["unix"], str(partial))


def test_unreachable_remote_without_mirror_fails_fast(fixture_project):
    git(fixture_project, "config", "-f", ".gitmodules", "submodule.micropython.url",
        "https://127.0.0.1:9/micropython/micropython.git")
    with pytest.raises(OfflineError) as info:
        fetch(project_for(fixture_project), ["unix"], None)
    assert "cannot reach https://127.0.0.1:9/micropython/micropython.git" in info.value.message
    assert "--mirror" in info.value.hint


def test_project_without_gitlink_is_explained(tmp_path):
    (tmp_path / "ports").mkdir()
    (tmp_path / "toolchains").mkdir()
    git(tmp_path, "init", "-q")
    project = project_for(tmp_path)
    from mpforge.errors import GitError
    with pytest.raises(GitError, match="'micropython' is not a submodule"):
        fetch(project, [], None)


def test_fetch_works_from_a_mirror_given_as_file_url(fixture_project, fixture_mirror: Mirror):
    url = Path(fixture_mirror.base).as_uri()
    report = fetch(project_for(fixture_project), ["unix"], url)
    assert report.cloned
