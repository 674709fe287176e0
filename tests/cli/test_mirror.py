"""``invoke mirror``: make a mirror from the fixture mirror, check it, bundle it, fetch from the bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import DEPS, Mirror, git, project_for, run_cli, run_task
from mpforge.core.errors import ConfigError
from mpforge.tree.bundle import INDEX, is_bundle, unpack_bundle
from mpforge.tree.mirror import PIN_BRANCH, check_mirror, github_name

REPOS = ["micropython/micropython.git", *[f"{name}.git" for name in DEPS.values()]]


def pinned(fixture_mirror: Mirror) -> dict[str, str]:
    """Each repository of the mirror with the commit the fixture pins in it."""
    tree = fixture_mirror.work
    pins = {"micropython/micropython.git": fixture_mirror.tree_sha}
    for path, name in DEPS.items():
        pins[f"{name}.git"] = git(tree, "ls-tree", "HEAD", "--", path).split()[2]
    return pins


@pytest.fixture
def made(fixture_project: Path, fixture_mirror: Mirror, tmp_path: Path) -> Path:
    new = tmp_path / "new-mirror"
    result = run_task(fixture_project, "mirror", str(new), "--from", str(fixture_mirror.base), "--port", "unix")
    assert result.returncode == 0, result.stdout + result.stderr
    return new


def test_mirror_from_another_holds_exactly_the_pinned_commits(made, fixture_mirror, fixture_project):
    assert sorted(str(p.relative_to(made)) for p in made.glob("*/*.git")) == sorted(REPOS)
    for rel, sha in pinned(fixture_mirror).items():
        repo = made / rel
        assert git(repo, "rev-parse", "--is-bare-repository") == "true"
        assert git(repo, "cat-file", "-t", sha) == "commit"
        assert git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/") == f"refs/heads/{PIN_BRANCH}{sha}"
        assert git(repo, "rev-parse", "HEAD") == sha  # a clone has a HEAD to check out
    assert not list(made.glob("*/.*.tmp-*"))  # no half-made repository left
    # again: nothing to fetch, everything up to date, sizes reported
    again = run_task(fixture_project, "mirror", str(made), "--from", str(fixture_mirror.base), "--port", "unix")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("up to date") == 4 and " kB" in again.stdout
    # a fresh checkout fetches the tree and the unix submodules through it
    fetched = run_task(fixture_project, "fetch", "--port", "unix", "--mirror", str(made))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert git(fixture_project / "micropython", "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert (fixture_project / "micropython" / "lib" / "axtls" / ".git").exists()


def test_check_passes_then_names_a_removed_repository_and_a_missing_commit(made, fixture_project, fixture_mirror):
    ok = run_task(fixture_project, "mirror", "--check", str(made), "--port", "unix")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shutil.rmtree(made / "pfalcon" / "berkeley-db-1.xx.git")
    axtls = made / "pfalcon" / "axtls.git"
    git(axtls, "update-ref", "-d", f"refs/heads/{PIN_BRANCH}{pinned(fixture_mirror)['pfalcon/axtls.git']}")
    git(axtls, "reflog", "expire", "--expire=now", "--all")
    git(axtls, "gc", "-q", "--prune=now")
    bad = run_task(fixture_project, "mirror", "--check", str(made), "--port", "unix")
    assert bad.returncode == 1
    out = bad.stdout + bad.stderr
    assert "pfalcon/berkeley-db-1.xx.git: missing (needed by micropython/lib/berkeley-db-1.xx)" in out
    assert "pfalcon/axtls.git: no commit" in out
    assert "Traceback" not in out


def test_check_names_a_damaged_repository_through_fsck(made, fixture_project):
    libffi = made / "atgreen" / "libffi.git"
    bogus = libffi / "objects" / "ab" / ("c" * 38)  # a damaged loose object: the pin is still there
    bogus.parent.mkdir(exist_ok=True)
    bogus.write_bytes(b"not a zlib stream")
    project = project_for(fixture_project)
    report = check_mirror(project, [project.catalog.port("unix")], made)
    assert [p for p in report.problems if p.startswith("atgreen/libffi.git:")] == \
        [p for p in report.problems if p.startswith("atgreen/libffi.git: git fsck:")] != []


def test_a_bundle_moved_to_another_folder_serves_fetch_as_a_mirror(made, fixture_project, fixture_mirror, tmp_path):
    bundle = tmp_path / "mirror.tar"
    result = run_task(fixture_project, "mirror", str(made), "--port", "unix", "--bundle", str(bundle))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bundle" in result.stdout and is_bundle(bundle)
    elsewhere = tmp_path / "usb-stick"
    elsewhere.mkdir()
    moved = elsewhere / "mirror.tar"
    shutil.move(bundle, moved)
    shutil.rmtree(made)  # the folder it came from is gone
    fetched = run_task(fixture_project, "fetch", "--port", "unix", "--mirror", str(moved))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert git(fixture_project / "micropython", "rev-parse", "HEAD") == fixture_mirror.tree_sha
    assert (fixture_project / "micropython" / "lib" / "libffi" / ".git").exists()
    unpacked = [p for p in (fixture_project / ".mpforge" / "mirrors").iterdir() if not p.name.startswith(".")]
    assert len(unpacked) == 1 and (unpacked[0] / INDEX).is_file()
    # --check takes the bundle too
    checked = run_task(fixture_project, "mirror", "--check", str(moved), "--port", "unix")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_file_that_is_not_a_bundle_is_refused_in_one_line(fixture_project, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_text("not a tar")
    with pytest.raises(ConfigError, match="not a mirror bundle"):
        unpack_bundle(junk, tmp_path / "cache")
    result = run_task(fixture_project, "fetch", "--port", "unix", "--mirror", str(junk))
    assert result.returncode == 1 and "not a mirror bundle" in result.stderr and "Traceback" not in result.stderr


def test_a_source_without_the_pinned_commit_is_named_and_nothing_half_made_is_left(fixture_project, tmp_path):
    empty = tmp_path / "empty-base"
    (empty / "micropython" / "micropython.git").mkdir(parents=True)
    git(empty / "micropython" / "micropython.git", "init", "-q", "--bare")
    new = tmp_path / "new"
    result = run_task(fixture_project, "mirror", str(new), "--from", str(empty), "--port", "unix")
    assert result.returncode == 1
    assert "micropython/micropython.git:" in result.stdout + result.stderr
    assert not (new / "micropython" / "micropython.git").exists()
    assert not list(new.glob("*/.*.tmp-*"))


def test_github_name():
    assert github_name("https://github.com/pfalcon/axtls") == "pfalcon/axtls"
    assert github_name("https://github.com/micropython/micropython.git") == "micropython/micropython"
    with pytest.raises(ConfigError):
        github_name("https://gitlab.com/a/b")


def test_tags_on_the_pinned_history_come_along_and_no_others(fixture_project, fixture_mirror, tmp_path):
    base = tmp_path / "tagged"
    shutil.copytree(fixture_mirror.base, base, symlinks=True)
    upstream = base / "micropython" / "micropython.git"
    pin = fixture_mirror.tree_sha
    git(upstream, "tag", "-a", "v1.8.2", "-m", "release", pin)
    later = git(upstream, "commit-tree", "-p", pin, "-m", "later", f"{pin}^{{tree}}")
    git(upstream, "tag", "v9.9", later)
    new = tmp_path / "new"
    result = run_task(fixture_project, "mirror", str(new), "--from", str(base), "--port", "unix")
    assert result.returncode == 0, result.stdout + result.stderr
    repo = new / "micropython" / "micropython.git"
    assert git(repo, "tag", "-l") == "v1.8.2"
    assert git(repo, "describe", "--tags", pin) == "v1.8.2"


def test_a_run_killed_before_a_repository_is_complete_leaves_none_in_place(fixture_project, fixture_mirror, tmp_path):
    new = tmp_path / "new"
    killed = run_cli(fixture_project, "mirror", str(new), "--from", str(fixture_mirror.base), "--port", "unix",
                     env={"MPFORGE_FAULT": "mirror.fetched"})
    assert killed.returncode == -9
    assert not (new / "micropython" / "micropython.git").exists()  # only its temporary folder
    check = run_task(fixture_project, "mirror", "--check", str(new), "--port", "unix")
    assert check.returncode == 1 and "micropython/micropython.git: missing" in check.stdout + check.stderr
    again = run_task(fixture_project, "mirror", str(new), "--from", str(fixture_mirror.base), "--port", "unix")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not list(new.glob("*/.*.tmp-*"))  # the stopped run's leftovers are gone
