"""The shared task options: flag > MPFORGE_* environment > invoke.yaml > built-in default."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, Config, Context, task

from conftest import REPO, run_task
from mpforge.cli.main import make_program
from mpforge.cli.options import SharedOptions, shared_options
from mpforge.core import settings
from mpforge.core.errors import ConfigError

EVERY_OPTION_IN_YAML = """\
mpforge:
  mirror: https://yaml.example/gh
  jobs: 3
  ccache: false
  verbose: true
  debug: true
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An mpforge checkout (as find_root sees one) in a tmp folder, with no MPFORGE_* set
    and no user or system invoke configuration in reach."""
    root = tmp_path / "checkout"
    (root / "ports").mkdir(parents=True)
    (root / "toolchains").mkdir()
    for name in [n for n in os.environ if n.startswith("MPFORGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.invoke.yaml of the user's
    monkeypatch.chdir(root)
    return root


def context_for(root: Path, invoke_yaml: str | None) -> Context:
    """A real invoke Context whose project configuration is ``root/invoke.yaml``."""
    if invoke_yaml is not None:
        (root / "invoke.yaml").write_text(invoke_yaml)
    config = Config(project_location=str(root), system_prefix=str(root / "no-system") + os.sep,
                    user_prefix=str(root / "no-user") + os.sep)
    config.load_project()
    return Context(config=config)


def values(opts: SharedOptions) -> dict[str, object]:
    return {"mirror": opts.mirror, "jobs": opts.jobs, "ccache": opts.ccache, "verbose": opts.verbose,
            "debug": opts.debug}


def test_without_flag_environment_or_configuration_the_built_in_defaults_apply(checkout):
    opts = shared_options(context_for(checkout, None))
    assert values(opts) == {"mirror": None, "jobs": os.cpu_count() or 1, "ccache": True, "verbose": False,
                            "debug": False}
    assert {name: opts.origin(name) for name in ("jobs", "ccache", "verbose", "debug")} == dict.fromkeys(
        ("jobs", "ccache", "verbose", "debug"), "default")
    assert opts.origin("mirror") == "none"


def test_the_checkouts_invoke_yaml_at_its_built_in_defaults_changes_nothing(checkout):
    shipped = (REPO / "invoke.yaml").read_text()
    with_file = shared_options(context_for(checkout, shipped))
    assert values(with_file) == values(shared_options(context_for(checkout, "")))
    assert with_file.origin("jobs") == "default" and with_file.origin("mirror") == "none"


def test_invoke_yaml_beats_the_defaults(checkout):
    opts = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML))
    assert values(opts) == {"mirror": "https://yaml.example/gh", "jobs": 3, "ccache": False, "verbose": True,
                            "debug": True}
    for name in ("mirror", "jobs", "ccache", "verbose", "debug"):
        assert opts.origin(name) == f"invoke config mpforge.{name}"


def test_the_environment_beats_invoke_yaml(checkout, monkeypatch):
    for name, value in {"MPFORGE_MIRROR": "https://env.example/gh", "MPFORGE_JOBS": "5", "MPFORGE_CCACHE": "on",
                        "MPFORGE_VERBOSE": "0", "MPFORGE_DEBUG": "no"}.items():
        monkeypatch.setenv(name, value)
    opts = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML))
    assert values(opts) == {"mirror": "https://env.example/gh", "jobs": 5, "ccache": True, "verbose": False,
                            "debug": False}
    for name in ("mirror", "jobs", "ccache", "verbose", "debug"):
        assert opts.origin(name) == f"MPFORGE_{name.upper()}"


def test_a_flag_given_beats_the_environment(checkout, monkeypatch):
    for name, value in {"MPFORGE_MIRROR": "https://env.example/gh", "MPFORGE_JOBS": "5", "MPFORGE_CCACHE": "on",
                        "MPFORGE_VERBOSE": "0", "MPFORGE_DEBUG": "0"}.items():
        monkeypatch.setenv(name, value)
    opts = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML), mirror="https://flag.example/gh/",
                          jobs=7, ccache=False, verbose=True, debug=True, dry_run=True)
    assert values(opts) == {"mirror": "https://flag.example/gh", "jobs": 7, "ccache": False, "verbose": True,
                            "debug": True}
    assert [opts.origin(n) for n in ("mirror", "jobs", "ccache", "verbose", "debug", "dry_run")] == [
        "--mirror", "--jobs", "--no-ccache", "--verbose", "--debug", "--dry-run"]


def test_flags_at_their_defaults_mean_not_given(checkout, monkeypatch):
    monkeypatch.setenv("MPFORGE_VERBOSE", "1")
    monkeypatch.setenv("MPFORGE_CCACHE", "0")
    # verbose=False cannot turn verbose off, ccache=True cannot turn ccache on, jobs=0 and
    # mirror=None leave the choice to the configuration
    opts = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML), verbose=False, ccache=True, jobs=0,
                          mirror=None)
    assert (opts.verbose, opts.ccache, opts.jobs, opts.mirror) == (True, False, 3, "https://yaml.example/gh")


def test_the_remembered_mirror_comes_after_invoke_yaml(checkout):
    settings.save(checkout, mirror="https://remembered.example/gh")
    opts = shared_options(context_for(checkout, "mpforge:\n  mirror: ~\n"))
    assert (opts.mirror, opts.origin("mirror")) == ("https://remembered.example/gh",
                                                    "remembered in .mpforge/settings.json")
    opts = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML))
    assert (opts.mirror, opts.origin("mirror")) == ("https://yaml.example/gh", "invoke config mpforge.mirror")
    assert settings.load(checkout)["mirror"] == "https://remembered.example/gh"  # not replaced


def test_mirror_none_in_invoke_yaml_means_no_mirror_without_forgetting(checkout):
    settings.save(checkout, mirror="https://remembered.example/gh")
    opts = shared_options(context_for(checkout, "mpforge:\n  mirror: none\n"))
    assert (opts.mirror, opts.origin("mirror")) == (None, "invoke config mpforge.mirror")
    assert settings.load(checkout)["mirror"] == "https://remembered.example/gh"


def test_an_explicit_mirror_is_remembered_and_mirror_none_forgets_it(checkout):
    context = context_for(checkout, None)
    shared_options(context, mirror="https://flag.example/gh")
    assert settings.load(checkout)["mirror"] == "https://flag.example/gh"
    assert shared_options(context).origin("mirror") == "remembered in .mpforge/settings.json"
    opts = shared_options(context, mirror="none")
    assert (opts.mirror, opts.origin("mirror")) == (None, "--mirror none")
    assert "mirror" not in settings.load(checkout)


def test_a_dry_run_remembers_nothing(checkout):
    opts = shared_options(context_for(checkout, None), mirror="https://flag.example/gh", dry_run=True)
    assert opts.mirror == "https://flag.example/gh" and opts.dry_run
    assert settings.load(checkout) == {}


def test_an_unknown_key_under_mpforge_is_refused_with_the_nearest(checkout):
    with pytest.raises(ConfigError) as caught:
        shared_options(context_for(checkout, "mpforge:\n  job: 4\n"))
    assert caught.value.message == "invoke.yaml: unknown key 'mpforge.job'"
    assert caught.value.hint == "did you mean 'jobs'?"


@pytest.mark.parametrize("text, line", [
    ("jobs: many", 'mpforge.jobs: expected an integer from 0 to 4096, got "many"'),
    ("jobs: -1", "mpforge.jobs: expected an integer from 0 to 4096, got -1"),
    ("jobs: 99999", "mpforge.jobs: expected an integer from 0 to 4096, got 99999"),
    ("jobs: true", "mpforge.jobs: expected an integer from 0 to 4096, got true"),
    ("ccache: 'off'", 'mpforge.ccache: expected true or false, got "off"'),
    ("verbose: 1", "mpforge.verbose: expected true or false, got 1"),
    ("mirror: 42", "mpforge.mirror: expected a string, got 42"),
    ("ccache_remote: [a]", 'mpforge.ccache_remote: expected a string, got ["a"]'),
])
def test_a_value_of_the_wrong_kind_is_refused_in_one_line_naming_file_key_expected_and_got(checkout, text, line):
    with pytest.raises(ConfigError) as caught:
        shared_options(context_for(checkout, f"mpforge:\n  {text}\n"))
    assert caught.value.message == f"invoke.yaml: {line}"
    assert "\n" not in caught.value.one_line()


def test_a_section_that_is_no_table_is_refused_in_one_line(checkout):
    with pytest.raises(ConfigError) as caught:
        shared_options(context_for(checkout, "mpforge: 5\n"))
    assert caught.value.message == "invoke.yaml: mpforge: expected a table, got 5"


def test_a_malformed_environment_value_is_refused_by_name(checkout, monkeypatch):
    monkeypatch.setenv("MPFORGE_JOBS", "lots")
    with pytest.raises(ConfigError, match="MPFORGE_JOBS='lots'"):
        shared_options(context_for(checkout, None))


def test_unknown_environment_variables_come_back_as_warnings(checkout, monkeypatch):
    monkeypatch.setenv("MPFORGE_JOB", "4")
    opts = shared_options(context_for(checkout, None))
    assert opts.warnings == ("MPFORGE_JOB is not a setting mpforge reads (did you mean MPFORGE_JOBS?)",)


def test_describe_says_each_value_and_where_it_came_from(checkout, monkeypatch):
    monkeypatch.setenv("MPFORGE_JOBS", "5")
    lines = shared_options(context_for(checkout, EVERY_OPTION_IN_YAML), debug=True).describe()
    assert "jobs: 5 (MPFORGE_JOBS)" in lines
    assert "ccache: off (invoke config mpforge.ccache)" in lines
    assert "debug: on (--debug)" in lines
    assert "mirror: https://yaml.example/gh (invoke config mpforge.mirror)" in lines


def seen_by_a_task(argv_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Run a one-task namespace through the ``mpforge`` console script's program from
    ``argv_cwd``; what the task's Context holds under ``mpforge`` and what it merges."""
    seen: dict[str, object] = {}

    @task
    def show(c):
        seen["config"] = dict(c.config.get("mpforge") or {})
        seen["options"] = shared_options(c)

    monkeypatch.chdir(argv_cwd)
    make_program(Collection(show)).run(["mpforge", "show"], exit=False)
    return seen


def test_the_mpforge_command_loads_the_checkouts_invoke_yaml(checkout, monkeypatch):
    (checkout / "invoke.yaml").write_text(EVERY_OPTION_IN_YAML)
    (checkout / "sub" / "folder").mkdir(parents=True)
    seen = seen_by_a_task(checkout / "sub" / "folder", monkeypatch)  # found by walking up
    assert seen["config"] == {"mirror": "https://yaml.example/gh", "jobs": 3, "ccache": False, "verbose": True,
                              "debug": True}
    opts = seen["options"]
    assert isinstance(opts, SharedOptions) and opts.jobs == 3 and opts.origin("jobs") == "invoke config mpforge.jobs"


def test_the_mpforge_command_outside_a_checkout_loads_no_project_configuration(checkout, tmp_path, monkeypatch):
    (checkout / "invoke.yaml").write_text(EVERY_OPTION_IN_YAML)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "invoke.yaml").write_text(EVERY_OPTION_IN_YAML)  # not a checkout: ignored
    seen = seen_by_a_task(elsewhere, monkeypatch)
    assert seen["config"] == {}
    opts = seen["options"]
    assert isinstance(opts, SharedOptions) and opts.jobs == (os.cpu_count() or 1)


def test_a_task_takes_its_mirror_from_the_checkouts_invoke_yaml(fixture_project, fixture_mirror):
    # no --mirror, no MPFORGE_MIRROR, nothing remembered: only invoke.yaml names the mirror
    (fixture_project / "invoke.yaml").write_text(f"mpforge:\n  mirror: {fixture_mirror.base}\n")
    clean = {k: v for k, v in os.environ.items() if k != "MPFORGE_MIRROR"}
    result = subprocess.run([sys.executable, "-m", "mpforge", "fetch"], cwd=fixture_project,
                            env={**clean, "CI": "1"}, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "micropython/ cloned" in result.stdout
    doctor = subprocess.run([sys.executable, "-m", "mpforge", "doctor"], cwd=fixture_project,
                            env={**clean, "CI": "1"}, text=True, capture_output=True, timeout=300)
    assert f"mirror: {fixture_mirror.base} (invoke config mpforge.mirror)" in doctor.stdout


def test_an_unknown_key_in_invoke_yaml_fails_any_task_in_one_line(fixture_project):
    (fixture_project / "invoke.yaml").write_text("mpforge:\n  job: 4\n")
    result = run_task(fixture_project, "size")
    assert result.returncode == 1
    assert "invoke.yaml: unknown key 'mpforge.job' (did you mean 'jobs'?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_shipped_invoke_yaml_leaves_the_users_own_file_in_force(fixture_project, tmp_path):
    # invoke ranks the project's file above ~/.invoke.yaml: ours must set nothing
    shutil.copy(REPO / "invoke.yaml", fixture_project / "invoke.yaml")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".invoke.yaml").write_text("mpforge:\n  jobs: 3\n  ccache: false\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MPFORGE_")}
    doctor = subprocess.run([sys.executable, "-m", "mpforge", "doctor"], cwd=fixture_project,
                            env={**clean, "CI": "1", "HOME": str(home)}, text=True, capture_output=True,
                            timeout=300)
    assert "jobs: 3 (invoke config mpforge.jobs)" in doctor.stdout, doctor.stdout
    assert "ccache: off (invoke config mpforge.ccache)" in doctor.stdout


def test_a_relative_mirror_in_invoke_yaml_is_relative_to_the_checkout(checkout, tmp_path):
    (checkout / "sub").mkdir()
    os.chdir(checkout / "sub")  # (the fixture restores the folder)
    opts = shared_options(context_for(checkout, "mpforge:\n  mirror: ../mirror\n"))
    assert opts.mirror == str((checkout / ".." / "mirror").resolve())


def test_jobs_from_the_environment_reach_the_build_a_test_run_makes(fixture_project, fixture_mirror):
    result = run_task(fixture_project, "test", "-v", "-k", "basics/int", "--mirror", str(fixture_mirror.base),
                     env={"MPFORGE_JOBS": "3"})
    makes = [line for line in result.stdout.splitlines() if "make -C" in line and "micropython/unix " in line]
    assert makes and all(" -j3 " in line for line in makes), result.stdout[-2000:]


def test_a_damaged_settings_file_is_one_warning_naming_it_and_the_next_save_mends_it(checkout):
    path = settings.settings_path(checkout)
    path.parent.mkdir(parents=True)
    path.write_text('{"mirror": "https://remembered.example/gh"')  # cut off mid-write by hand
    opts = shared_options(context_for(checkout, None))
    assert opts.mirror is None
    assert len(opts.warnings) == 1 and str(path) in opts.warnings[0] and "damaged" in opts.warnings[0]
    settings.save(checkout, mirror="https://again.example/gh")
    assert settings.load(checkout) == {"mirror": "https://again.example/gh"}


def test_a_damaged_settings_file_reaches_the_user_as_one_line(fixture_project):
    path = settings.settings_path(fixture_project)
    path.parent.mkdir(parents=True)
    path.write_text("not json")
    result = run_task(fixture_project, "doctor", env={"MPFORGE_MIRROR": None})  # else that mirror wins
    warned = [line for line in result.stderr.splitlines() + result.stdout.splitlines() if "settings.json" in line]
    assert len(warned) == 1 and "damaged" in warned[0], result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_typed_setting_reaches_the_user_as_one_line_naming_file_and_key(fixture_project):
    path = settings.settings_path(fixture_project)
    path.parent.mkdir(parents=True)
    path.write_text('{"mirror": 5}')
    result = run_task(fixture_project, "doctor", env={"MPFORGE_MIRROR": None})
    warned = [line for line in result.stderr.splitlines() + result.stdout.splitlines() if "settings.json" in line]
    assert len(warned) == 1 and "'mirror'" in warned[0] and "got the number 5" in warned[0], \
        result.stdout + result.stderr
    assert "Traceback" not in result.stderr
