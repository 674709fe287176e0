"""--port/--board specs into targets, the same for every task."""

from __future__ import annotations

import pytest

from conftest import project_for
from mpforge.core.errors import ConfigError, UnknownTarget
from mpforge.firmware.selection import select, split_names


def test_port_specs_name_one_several_or_all_ports(fixture_project):
    project = project_for(fixture_project)
    assert [p.name for p in select(project, "unix").ports] == ["unix"]
    assert [p.name for p in select(project, " unix, bare-arm ").ports] == ["unix", "bare-arm"]
    everything = select(project, "all")
    assert [p.name for p in everything.ports] == sorted(project.catalog.ports)
    assert everything.board is None and select(project, all=True).board == "all"


def test_an_unknown_port_fails_before_anything_is_done(fixture_project):
    project = project_for(fixture_project)
    with pytest.raises(UnknownTarget, match="unknown port 'nope'"):
        select(project, "unix,nope")
    assert not (fixture_project / "micropython" / "py").exists()
    with pytest.raises(ConfigError, match="no port given"):
        select(project, " , ")


def test_a_matrix_is_several_ports_or_several_boards(fixture_project):
    project = project_for(fixture_project)
    assert not select(project, "stmhal", "PYBV10").many
    assert select(project, "stmhal", "PYBV10,PYBV11").many
    assert select(project, "stmhal", "all").many
    assert select(project, "unix,bare-arm").many


def test_app_and_board_dir_make_one_target(fixture_project, tmp_path):
    project = project_for(fixture_project)
    with pytest.raises(ConfigError, match="--app and --board-dir build one target"):
        select(project, "unix,stmhal", app=tmp_path)
    with pytest.raises(ConfigError, match="--app and --board-dir build one target"):
        select(project, "stmhal", "all", board_dir=tmp_path)


def test_targets_of_ports_without_boards_ignore_a_board_in_a_matrix(fixture_project):
    project = project_for(fixture_project)
    # the tree is not fetched: board names are the data's (checked once it is)
    targets = select(project, "unix,bare-arm").targets()
    assert [t.name for t in targets] == ["unix", "bare-arm"]
    with pytest.raises(UnknownTarget, match="has no boards"):
        select(project, "unix", "PYBV10").targets()
    with pytest.raises(ConfigError, match="takes one target, not 2"):
        select(project, "unix,bare-arm").target()


def test_split_names_drops_blanks():
    assert split_names(" A, ,B,") == ["A", "B"]


def test_a_variant_is_its_own_target_with_its_own_make_variables(fixture_project):
    from mpforge.firmware.target import make_argvs

    project = project_for(fixture_project)
    (plain,) = select(project, "unix").targets()
    (coverage,) = select(project, "unix", variant="coverage").targets()
    assert (plain.name, coverage.name) == ("unix", "unix-coverage")
    assert coverage.build_dir.name == "unix-coverage" and coverage.dist_dir.name == "unix-coverage"
    deplib = {"CFLAGS_EXTRA": "-I/deplibs/include"}
    (argv,) = make_argvs(coverage, deplib, None)
    variables = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    assert variables["COPT"] == "-O0"  # replaced
    # appended after the deplibs' flags, which stay
    assert variables["CFLAGS_EXTRA"].startswith("-I/deplibs/include ") and "-fprofile-arcs" in variables["CFLAGS_EXTRA"]
    (plain_argv,) = make_argvs(plain, deplib, None)
    assert not any("COPT=" in a or "profile-arcs" in a for a in plain_argv)


def test_an_unknown_variant_is_refused_naming_the_ports_variants(fixture_project):
    project = project_for(fixture_project)
    with pytest.raises(UnknownTarget, match="port 'unix' has no variant 'coverag'") as caught:
        select(project, "unix", variant="coverag")
    assert "coverage" in caught.value.hint
    with pytest.raises(UnknownTarget, match="port 'minimal' has no variant 'coverage'"):
        select(project, "unix,minimal", variant="coverage")
