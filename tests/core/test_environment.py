"""Every environment variable mpforge reads: parsed in one place, at call time, refused by name."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from mpforge.core import environment as environment_mod
from mpforge.core.environment import Environment, FaultInjection, environment
from mpforge.core.errors import ConfigError


def test_an_empty_environment_gives_every_default():
    env = environment({})
    assert env == Environment()
    assert (env.silence, env.test_timeout, env.dfu_wait, env.port_wait) == (10.0, 30.0, 15.0, 20.0)
    assert env.sysfs == Path("/sys")
    assert (env.root, env.tree, env.mirror, env.jobs, env.fault) == (None, None, None, None, None)
    assert (env.ccache, env.verbose, env.debug, env.ci) == (None, None, None, False)
    assert env.warnings == ()


@pytest.mark.parametrize("name, field, value, expected", [
    ("MPFORGE_SILENCE", "silence", "3", 3.0),
    ("MPFORGE_TEST_TIMEOUT", "test_timeout", "2.5", 2.5),
    ("MPFORGE_DFU_WAIT", "dfu_wait", " 4 ", 4.0),
    ("MPFORGE_PORT_WAIT", "port_wait", "0.5", 0.5),
    ("MPFORGE_JOBS", "jobs", "6", 6),
    ("MPFORGE_ROOT", "root", "some/checkout", Path("some/checkout")),
    ("MPFORGE_TREE", "tree", "other-tree", Path("other-tree")),
    ("MPFORGE_SYSFS", "sysfs", "fake-sys", Path("fake-sys")),
    ("MPFORGE_MIRROR", "mirror", "https://cache.example/gh", "https://cache.example/gh"),
    ("MPFORGE_FAULT", "fault", "patch.write", FaultInjection("patch.write", 1, signal.SIGKILL)),
    ("MPFORGE_FAULT", "fault", "patch.write@3:stop", FaultInjection("patch.write", 3, signal.SIGSTOP)),
    ("MPFORGE_FAULT", "fault", "state.write:SIGTERM", FaultInjection("state.write", 1, signal.SIGTERM)),
])
def test_each_variable_is_parsed_into_its_field(name, field, value, expected):
    assert getattr(environment({name: value}), field) == expected


@pytest.mark.parametrize("value, expected", [("1", True), ("on", True), ("Yes", True), ("TRUE", True),
                                             ("0", False), ("off", False), ("No", False), ("false", False),
                                             ("", None)])
@pytest.mark.parametrize("name, field", [("MPFORGE_CCACHE", "ccache"), ("MPFORGE_VERBOSE", "verbose"),
                                         ("MPFORGE_DEBUG", "debug")])
def test_switches_take_on_and_off_words_and_empty_is_unset(name, field, value, expected):
    assert getattr(environment({name: value}), field) is expected


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("gitlab", True),
                                             ("0", False), ("false", False), ("", False)])
def test_ci_is_on_unless_unset_empty_or_an_off_word(value, expected):
    assert environment({"CI": value}).ci is expected


def test_mirror_set_but_empty_differs_from_unset():
    assert environment({}).mirror is None  # unset: ask the next source
    assert environment({"MPFORGE_MIRROR": ""}).mirror == ""  # set but empty: no mirror


def test_an_empty_value_counts_as_unset_for_the_others():
    assert environment({"MPFORGE_DFU_WAIT": "", "MPFORGE_ROOT": "", "MPFORGE_JOBS": " "}) == Environment()


@pytest.mark.parametrize("name, value", [
    ("MPFORGE_DFU_WAIT", "abc"), ("MPFORGE_PORT_WAIT", "-1"), ("MPFORGE_SILENCE", "0"),
    ("MPFORGE_TEST_TIMEOUT", "nan"), ("MPFORGE_JOBS", "0"), ("MPFORGE_JOBS", "two"),
    ("MPFORGE_CCACHE", "maybe"), ("MPFORGE_DEBUG", "2"), ("MPFORGE_FAULT", "x@0"),
    ("MPFORGE_FAULT", "x:NOSUCHSIGNAL"), ("MPFORGE_FAULT", "@2"), ("MPFORGE_FAULT", "nonexistent"),
    ("MPFORGE_FAULT", "patch.writ@2:STOP"),
])
def test_a_malformed_value_is_a_config_error_naming_the_variable(name, value):
    with pytest.raises(ConfigError) as caught:
        environment({name: value})
    assert caught.value.message.startswith(f"{name}={value!r} is not ")
    assert name in caught.value.hint


def test_an_unknown_fault_point_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        environment({"MPFORGE_FAULT": "nonexistent"})
    assert caught.value.message.startswith("MPFORGE_FAULT='nonexistent' is not a known fault point (")
    assert all(name in caught.value.message for name in environment_mod.FAULT_POINTS)
    assert environment({"MPFORGE_FAULT": "nonexistent"}, strict=False).fault is None


def test_not_strict_a_malformed_value_falls_back_to_its_default_and_is_reported():
    env = environment({"MPFORGE_DFU_WAIT": "abc", "MPFORGE_DEBUG": "1", "CI": "1"}, strict=False)
    assert env.dfu_wait == 15.0
    assert (env.debug, env.ci) == (True, True)  # the well-formed ones still count
    assert len(env.warnings) == 1
    assert env.warnings[0].startswith("MPFORGE_DFU_WAIT='abc' is not a positive number of seconds")


def test_an_unknown_mpforge_variable_is_a_warning_naming_the_nearest_one():
    env = environment({"MPFORGE_JOB": "4", "MPFORGE_SILENCE": "2", "HOME": "/home/x"})
    assert env.warnings == ("MPFORGE_JOB is not a setting mpforge reads (did you mean MPFORGE_JOBS?)",)
    assert env.silence == 2.0 and env.jobs is None


def test_an_unknown_variable_far_from_every_name_points_at_the_table():
    (warning,) = environment({"MPFORGE_ZZZZZZZZZZZZZZZZZZZZZ": "1"}).warnings
    assert warning.startswith("MPFORGE_ZZZZZZZZZZZZZZZZZZZZZ is not a setting mpforge reads (")
    assert "did you mean" not in warning and "mpforge.core.environment" in warning


def test_variables_are_read_at_call_time(monkeypatch):
    monkeypatch.setenv("MPFORGE_DFU_WAIT", "4")
    assert environment().dfu_wait == 4.0
    monkeypatch.setenv("MPFORGE_DFU_WAIT", "7")
    assert environment().dfu_wait == 7.0
    monkeypatch.delenv("MPFORGE_DFU_WAIT")
    assert environment().dfu_wait == 15.0


def test_a_malformed_value_set_before_import_does_not_break_importing():
    code = "import mpforge.device.deploy, mpforge.device.repl, mpforge.cli.ui, mpforge.core.project"
    proc = subprocess.run([sys.executable, "-c", code], env={"MPFORGE_DFU_WAIT": "abc", "MPFORGE_SILENCE": "x",
                                                             "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_field_has_a_variable_and_the_docstring_table_names_each():
    fields = {f.name for f in dataclasses.fields(Environment)} - {"warnings"}
    assert set(environment_mod.VARIABLES) == fields
    table = environment_mod.__doc__ or ""
    for name in environment_mod.VARIABLES.values():
        assert f"``{name}``" in table, name


def test_the_library_reads_no_variable_of_the_table_anywhere_else():
    # the pyboard shim (run inside the tree's run-tests) included
    names = "|".join(environment_mod.VARIABLES.values())
    direct_read = re.compile(rf"(environ|getenv)\b.*[\"'](?:{names})[\"']")
    readers = [f"{path.name}: {line.strip()}" for path in (REPO / "src/mpforge").rglob("*.py")
               if path.name != "environment.py"
               for line in path.read_text().splitlines() if direct_read.search(line)]
    assert readers == []


def test_the_pyboard_shim_parses_its_timeouts_like_every_mpforge_process(monkeypatch):
    # an empty value means "unset" everywhere, the shim included (it used to die on it)
    monkeypatch.setenv("MPFORGE_TEST_TIMEOUT", "")
    monkeypatch.setenv("MPFORGE_SILENCE", "4.5")
    shim = REPO / "src/mpforge/testing/pyboard_shim/pyboard.py"
    out = subprocess.run([sys.executable, "-c", "import pyboard; print(pyboard.TEST_TIMEOUT, pyboard.SILENCE)"],
                         cwd=shim.parent, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["30.0", "4.5"]
