"""Submodule and mirror logic against real repositories made in tmp dirs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import Mirror, git, project_for, run_cli
from mpforge.core.errors import CommandFailed, DirtyTree, GitError, OfflineError, UserWork
from mpforge.core.executor import Executor
from mpforge.tree.fetch import fetch
from mpforge.tree.git import Git, config_env, mirrored, normalise_mirror


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


def test_git_commands_carry_the_insteadof_mapping_in_their_environment():
    env = config_env("/m", {})
    assert env == {"GIT_CONFIG_COUNT": "2",
                   "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always",
                   "GIT_CONFIG_KEY_1": "url./m/.insteadOf", "GIT_CONFIG_VALUE_1": "https://github.com/"}
    # the user's own GIT_CONFIG_* entries are kept: ours come after them
    env = config_env("/m", {"GIT_CONFIG_COUNT": "1"})
    assert env["GIT_CONFIG_COUNT"] == "3" and env["GIT_CONFIG_KEY_2"] == "url./m/.insteadOf"
    assert "GIT_CONFIG_KEY_0" not in env
    assert Git(Executor(), None).config_env() == {}


def test_a_mirror_folder_whose_path_holds_an_equals_sign_works(fixture_project, fixture_mirror, tmp_path):
    """(#31) ``-c url.<m>/.insteadOf=...`` is split by git at the first ``=``: a mirror at
    ``.../a=b`` mapped nothing and the fetch failed."""
    odd = tmp_path / "mir=ror"
    shutil.copytree(fixture_mirror.base, odd, symlinks=True)
    project = project_for(fixture_project)
    report = fetch(project, [project.catalog.port("unix")], str(odd))
    assert report.cloned and git(fixture_project / "micropython", "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert sorted(report.submodules_initialised) == ["lib/axtls", "lib/berkeley-db-1.xx", "lib/libffi"]


def test_fetch_clones_tree_and_only_the_submodules_a_port_needs(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    report = fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    assert report.cloned and report.pin == fixture_mirror.tree_sha
    assert git(tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert sorted(report.submodules_initialised) == ["lib/axtls", "lib/berkeley-db-1.xx",
                                                     "lib/libffi"]
    assert (tree / "lib" / "axtls" / "Makefile").exists()
    # second run: nothing to do
    again = fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    assert not again.cloned and not again.checked_out and again.submodules_initialised == []


def test_commits_on_top_of_the_pin_are_kept(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, [], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    (tree / "NEWFILE").write_text("x")
    git(tree, "add", "NEWFILE")
    git(tree, "commit", "-q", "-m", "local commit")
    mine = git(tree, "rev-parse", "HEAD")
    report = fetch(project, [], str(fixture_mirror.base))
    assert report.ahead == 1 and not report.checked_out
    assert git(tree, "rev-parse", "HEAD") == mine  # not moved


def test_an_older_pin_is_moved_to_the_pin(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, [], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    git(tree, "checkout", "-q", "--detach", "HEAD~1")  # what a pin bump of the project looks like
    report = fetch(project, [], str(fixture_mirror.base))
    assert report.checked_out
    assert git(tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha


def work_in_the_tree(fixture_project, fixture_mirror, *checkout: str):
    """A fetched project whose tree holds a commit of the user's on top of ``checkout``."""
    project = project_for(fixture_project)
    fetch(project, [], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    git(tree, "checkout", "-q", *checkout, "HEAD~1")
    git(tree, "commit", "-q", "--allow-empty", "-m", "my work")
    return project, tree, git(tree, "rev-parse", "HEAD")


def test_a_branch_in_the_tree_is_refused_and_kept(fixture_project, fixture_mirror):
    project, tree, mine = work_in_the_tree(fixture_project, fixture_mirror, "-b", "work")
    with pytest.raises(UserWork, match="your branch 'work'") as info:
        fetch(project, [], str(fixture_mirror.base))
    assert "checkout --detach" in info.value.hint
    assert git(tree, "rev-parse", "HEAD") == mine
    assert git(tree, "symbolic-ref", "--short", "HEAD") == "work"


def test_commits_no_branch_holds_are_refused_until_kept(fixture_project, fixture_mirror):
    project, tree, mine = work_in_the_tree(fixture_project, fixture_mirror, "--detach")
    with pytest.raises(UserWork, match="no branch holds") as info:
        fetch(project, [], str(fixture_mirror.base))
    assert "git -C micropython branch my-work" in info.value.hint
    assert git(tree, "rev-parse", "HEAD") == mine
    git(tree, "branch", "my-work")  # as the hint says: now nothing can be lost
    assert fetch(project, [], str(fixture_mirror.base)).checked_out
    assert git(tree, "rev-parse", "my-work") == mine


def test_fetch_refuses_to_move_a_dirty_tree(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, [], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    git(tree, "checkout", "-q", "--detach", "HEAD~1")
    gc = tree / "py" / "gc.c"
    gc.write_text(gc.read_text() + "/* my edit */\n")
    with pytest.raises(DirtyTree, match=r"local changes \(py/gc.c\)"):
        fetch(project, [], str(fixture_mirror.base))
    assert gc.read_text().endswith("/* my edit */\n")


def test_a_mirror_without_the_pin_leaves_nothing_behind(fixture_project, fixture_mirror, tmp_path):
    wrong = tmp_path / "wrong-mirror"
    (wrong / "micropython").mkdir(parents=True)
    # a repository, but not MicroPython's: it lacks the pinned commit
    (wrong / "micropython" / "micropython.git").symlink_to(fixture_mirror.bare("pfalcon/axtls"))
    project = project_for(fixture_project)
    tree = fixture_project / "micropython"
    with pytest.raises(GitError, match="has no commit .*the pin of micropython/"):
        fetch(project, [], str(wrong))
    assert list(tree.iterdir()) == []  # as before: an empty folder
    assert not (fixture_project / ".git" / "modules" / "micropython").exists()
    # and a good mirror afterwards just works
    assert fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base)).cloned
    assert git(tree, "rev-parse", "HEAD") == fixture_mirror.tree_sha


def test_a_nested_submodule_missing_its_pin_is_not_left_half_cloned(fixture_project, fixture_mirror,
                                                                    tmp_path):
    partial = tmp_path / "partial"
    for owner_name in ("micropython/micropython", "pfalcon/berkeley-db-1.xx", "atgreen/libffi"):
        (partial / owner_name).parent.mkdir(parents=True, exist_ok=True)
        (partial / f"{owner_name}.git").symlink_to(fixture_mirror.bare(owner_name))
    (partial / "pfalcon" / "axtls.git").symlink_to(fixture_mirror.bare("atgreen/libffi"))  # wrong one
    project = project_for(fixture_project)
    with pytest.raises(CommandFailed):
        fetch(project, [project.catalog.port("unix")], str(partial))
    tree = fixture_project / "micropython"
    assert not Git(Executor()).is_checkout(tree / "lib" / "axtls")
    assert fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base)).submodules_initialised
    assert (tree / "lib" / "axtls" / "Makefile").exists()


def test_fetch_at_the_pin_keeps_and_reports_local_changes(fixture_project, fixture_mirror):
    project = project_for(fixture_project)
    fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    gc = fixture_project / "micropython" / "py" / "gc.c"
    gc.write_text(gc.read_text() + "/* my edit */\n")
    report = fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    assert report.local_changes == ["py/gc.c"]
    assert gc.read_text().endswith("/* my edit */\n")


def test_mirror_missing_a_repository_is_named(fixture_project, fixture_mirror, tmp_path):
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    with pytest.raises(OfflineError, match="mirror has no .*micropython/micropython"):
        fetch(project_for(fixture_project), [project_for(fixture_project).catalog.port("unix")], str(empty))


def test_mirror_with_nested_repo_missing_names_it(fixture_project, fixture_mirror, tmp_path):
    partial = tmp_path / "partial"
    (partial / "micropython").mkdir(parents=True)
    (partial / "micropython" / "micropython.git").symlink_to(
        fixture_mirror.bare("micropython/micropython"))
    with pytest.raises(OfflineError, match="mirror has no .*pfalcon/"):
        fetch(project_for(fixture_project), [project_for(fixture_project).catalog.port("unix")], str(partial))


def test_unreachable_remote_without_mirror_fails_fast(fixture_project):
    git(fixture_project, "config", "-f", ".gitmodules", "submodule.micropython.url",
        "https://127.0.0.1:9/micropython/micropython.git")
    with pytest.raises(OfflineError) as info:
        fetch(project_for(fixture_project), [project_for(fixture_project).catalog.port("unix")], None)
    assert "cannot reach https://127.0.0.1:9/micropython/micropython.git" in info.value.message
    assert "--mirror" in info.value.hint


def test_project_without_gitlink_is_explained(tmp_path):
    (tmp_path / "ports").mkdir()
    (tmp_path / "toolchains").mkdir()
    git(tmp_path, "init", "-q")
    project = project_for(tmp_path)
    from mpforge.core.errors import GitError
    with pytest.raises(GitError, match="'micropython' is not a submodule"):
        fetch(project, [], None)


def test_fetch_works_from_a_mirror_given_as_file_url(fixture_project, fixture_mirror: Mirror):
    url = Path(fixture_mirror.base).as_uri()
    report = fetch(project_for(fixture_project), [project_for(fixture_project).catalog.port("unix")], url)
    assert report.cloned


@pytest.mark.skipif(os.geteuid() != 0, reason="making a checkout another user's takes root (chown)")
def test_a_checkout_git_calls_dubious_is_said_in_gits_words_with_the_safe_directory_hint(
        fixture_project, fixture_mirror, tmp_path):
    """(#31) git refusing a checkout owned by another user was reported as "not a submodule"."""
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    os.chown(fixture_project, 12345, 12345)
    try:
        result = run_cli(fixture_project, "fetch", "--mirror", str(fixture_mirror.base),
                         env={"GIT_CONFIG_GLOBAL": str(empty), "GIT_CONFIG_NOSYSTEM": "1"})
    finally:
        os.chown(fixture_project, 0, 0)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "detected dubious ownership in repository at" in lines[0]
    assert f"git config --global --add safe.directory {fixture_project.resolve()}" in lines[0]
    assert "not a submodule" not in lines[0] and "Traceback" not in result.stderr + result.stdout
