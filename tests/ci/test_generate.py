"""``invoke ci-generate`` and ccache on the fixture tree.

The generated pipelines are parsed as YAML, validated with the providers'
published schemas (check-jsonschema's built-in ``vendor.github-workflows`` and
``vendor.gitlab-ci``), and checked for what makes them run as generated: no job
for a toolchain that cannot be installed, Debian packages from the catalog, no
container or apt-get on shell runners, cache keys on toolchain, board, tree pin
and patches. The ccache tests build a fixture cross target twice from clean.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Mirror, project_for, run_cli
from mpforge.ci import generate as cigen
from mpforge.cli.tasks import ns
from mpforge.core.errors import ConfigError
from mpforge.firmware import ccache as ccache_mod

PROVIDERS = ["github", "gitlab"]
RUNNERS = ["container", "shell"]


def fetched(project: Path, mirror: Mirror) -> Path:
    """The fixture project with its tree fetched (board lists are read from the tree)."""
    result = run_cli(project, "fetch", "--mirror", str(mirror.base))
    assert result.returncode == 0, result.stderr
    return project


def generate(project: Path, out: Path, *args: str) -> tuple[str, dict, subprocess.CompletedProcess]:
    result = run_cli(project, "ci-generate", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    return text, yaml.safe_load(text), result


def jobs_of(provider: str, data: dict) -> dict[str, dict]:
    if provider == "github":
        return data["jobs"]
    return {k: v for k, v in data.items() if isinstance(v, dict) and "script" in v}


def job_text(provider: str, job: dict) -> str:
    """Every command a job runs, one string (GitHub steps' ``run``, GitLab's scripts)."""
    if provider == "github":
        return "\n".join(step.get("run", "") for step in job["steps"])
    return "\n".join(job.get("before_script", []) + job["script"])


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_generated_pipelines_parse_and_name_only_existing_tasks(fixture_project, fixture_mirror,
                                                                provider, runner, tmp_path):
    # moved here from test_ci.py, and extended to both runner kinds
    fetched(fixture_project, fixture_mirror)
    text, data, result = generate(fixture_project, tmp_path / f"{provider}.yml",
                                  "--provider", provider, "--runner", runner)
    jobs = jobs_of(provider, data)
    ports = {p.stem for p in (fixture_project / "ports").glob("*.toml")}
    # one job per port, but none for pic16bit: XC16 cannot be installed, so it could only fail
    # ... and one more for stmhal's emulated boards (minimal has no board matrix: one job tests it)
    assert {j.replace("_", "-") for j in jobs} == ports - {"pic16bit"} | {"stmhal-qemu"}
    emulated = jobs["stmhal_qemu"]
    steps = emulated["steps"] if provider == "github" else emulated["script"]
    commands = [s.get("run", "") if isinstance(s, dict) else s for s in steps]
    assert any("invoke ci --ports stmhal --boards PYBV10_QEMU --out ci-out" in c for c in commands)
    # unix has a coverage variant: its job measures and publishes it
    unix_steps = jobs["unix"]["steps"] if provider == "github" else jobs["unix"]["script"]
    assert any("invoke ci --ports unix --coverage --out ci-out" in (s.get("run", "") if isinstance(s, dict) else s)
               for s in unix_steps)
    if provider == "gitlab":
        assert jobs["unix"]["artifacts"]["reports"]["coverage_report"] == {
            "coverage_format": "cobertura", "path": "ci-out/coverage/unix/coverage.xml"}
        assert "coverage_report" not in jobs["bare_arm"]["artifacts"]["reports"]
    else:
        assert emulated["name"] == "stmhal on emulated PYBV10_QEMU (qemu)"
    board_steps = jobs["stmhal"]["steps"] if provider == "github" else jobs["stmhal"]["script"]
    assert any("--tests none" in (s.get("run", "") if isinstance(s, dict) else s) for s in board_steps)
    if runner == "container":  # QEMU comes from the port's emulator data, for the jobs that test
        assert "qemu-system-arm" in text.split("stmhal_qemu")[1].split("\n\n")[0] or "qemu-system-arm" in text
        assert all("qemu-system-arm" not in str(jobs[j]) for j in ("unix", "bare_arm"))
    assert re.search(r"^#\s+pic16bit: toolchain xc16 has no Debian package: pass --with-xc16 PATH",
                     text, re.MULTILINE)
    assert "pic16bit left out" in result.stderr
    # the header sends a user to the templates: a folder of this checkout that holds them
    edit = re.search(r"^# edit the template \(([^)]+)/\)", text, re.MULTILINE)
    assert edit and (REPO / edit.group(1) / f"{provider}.yml.j2").is_file(), text[:400]
    stmhal = jobs["stmhal"]
    boards = (stmhal["strategy"]["matrix"]["board"] if provider == "github"
              else stmhal["parallel"]["matrix"][0]["BOARD"])
    assert boards == ["BROKEN", "PYBV10", "PYBV11"]  # read from the tree
    flat = json.dumps(stmhal)
    if runner == "container":
        assert "gcc-arm-none-eabi" in flat and "libnewlib-arm-none-eabi" in flat
    assert ".git/modules" in flat and ".ccache" in flat
    assert "dist/" in flat and "ci-out/" in flat
    for name, job in jobs.items():
        commands = job_text(provider, job)
        port = {"stmhal_qemu": "stmhal"}.get(name, name.replace("_", "-"))
        # the machine is checked first, then the same `invoke ci` a laptop runs
        assert commands.index(f"invoke doctor --port {port}") < commands.index(f"invoke ci --ports {port}")
        if runner == "shell":  # self-hosted shell runners: toolchains preinstalled
            assert "apt-get" not in commands
            assert "image" not in job and "container" not in job
        else:
            assert "apt-get install" in commands
            assert (job["container"] if provider == "github" else job["image"]) == cigen.IMAGE
    tasks = set(ns.task_names)
    named = set(re.findall(r"invoke ([a-z][a-z-]*)", text)) - {"ci-generate"}
    assert named and named <= tasks, named - tasks


BOARD_PATCH = """Add a board, as patches/0008 adds PYBV10_QEMU to the real tree.

diff --git a/stmhal/boards/EXTRA/mpconfigboard.h b/stmhal/boards/EXTRA/mpconfigboard.h
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/stmhal/boards/EXTRA/mpconfigboard.h
@@ -0,0 +1 @@
+#define MICROPY_HW_BOARD_NAME "EXTRA"
"""


def test_boards_added_by_the_series_are_listed_whether_or_not_it_is_applied(
        fixture_project, fixture_mirror, tmp_path):
    (fixture_project / "patches" / "0003-extra-board.patch").write_text(BOARD_PATCH)
    with (fixture_project / "patches" / "series").open("a") as series:
        series.write("0003-extra-board.patch\n")
    fetched(fixture_project, fixture_mirror)
    pristine, data, _ = generate(fixture_project, tmp_path / "a.yml", "--provider", "gitlab")
    assert data["stmhal"]["parallel"]["matrix"][0]["BOARD"] == ["BROKEN", "EXTRA", "PYBV10", "PYBV11"]
    assert run_cli(fixture_project, "patch").returncode == 0
    assert (fixture_project / "micropython" / "stmhal" / "boards" / "EXTRA").is_dir()
    patched, _, _ = generate(fixture_project, tmp_path / "b.yml", "--provider", "gitlab")
    assert patched == pristine  # the same file from a pristine and a patched tree


def test_packages_are_the_catalogs_plus_ccache(fixture_project, fixture_mirror):
    project = project_for(fetched(fixture_project, fixture_mirror))
    plan = cigen.plan(project, cigen.Settings("gitlab"))
    jobs = {job.port: job for job in plan.jobs}
    catalog = project.catalog
    for port, job in jobs.items():
        assert job.packages == list(dict.fromkeys(
            [*cigen.IMAGE_PACKAGES, *catalog.debian_packages([port], emulators=True),
             *ccache_mod.debian_packages(project)]))
    assert "libltdl-dev" in jobs["unix"].packages  # libtool alone lacks LT_SYS_SYMBOL_USCORE
    assert "ccache" in jobs["bare-arm"].packages
    assert "gcc" in jobs["esp8266"].packages  # esp8266 needs mpy-cross, a host program
    assert jobs["esp8266"].pip_target == ".[esp8266]" and jobs["unix"].pip_target == ".[coverage]"
    assert jobs["bare-arm"].pip_target == "."
    shell = cigen.plan(project, cigen.Settings("gitlab", "shell"))
    assert all(job.packages == [] for job in shell.jobs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_with_xc16_the_pic16bit_job_sets_xc16_dir_and_installs_nothing_for_it(
        fixture_project, fixture_mirror, provider, tmp_path):
    fetched(fixture_project, fixture_mirror)
    folder = "/opt/microchip/xc16/v1.70"
    text, data, result = generate(fixture_project, tmp_path / "p.yml", "--provider", provider,
                                  "--with-xc16", folder)
    job = jobs_of(provider, data)["pic16bit"]
    env = job["env"] if provider == "github" else job["variables"]
    assert env["XC16_DIR"] == folder
    commands = job_text(provider, job)
    assert "xc16" not in commands.split("apt-get install", 1)[1].splitlines()[0]
    assert "pic16bit left out" not in result.stderr and "Left out" not in text
    if provider == "github":  # the key's compiler probe finds xc16-gcc in $XC16_DIR/bin
        assert 'PATH="$XC16_DIR/bin:$PATH" xc16-gcc --version' in commands


def test_gitlab_cache_keys_name_toolchain_board_pin_and_patches(fixture_project, fixture_mirror,
                                                                tmp_path):
    fetched(fixture_project, fixture_mirror)
    _, data, _ = generate(fixture_project, tmp_path / "a.yml", "--provider", "gitlab")
    stmhal = data["stmhal"]
    main, rolling = stmhal["cache"]
    pin = fixture_mirror.tree_sha[:12]
    assert re.fullmatch(rf"mpforge-stmhal-arm-none-eabi-[0-9a-f]{{12}}-\$BOARD-{pin}-[0-9a-f]{{12}}",
                        main["key"])  # one key per board: $BOARD of the matrix
    assert main["when"] == "always"
    # the fallback is a key every job pushes its ccache objects to
    assert main["fallback_keys"] == [rolling["key"]]
    assert rolling["key"].endswith("-$BOARD-latest") and rolling["policy"] == "push"
    assert data["variables"]["CCACHE_DIR"] == "$CI_PROJECT_DIR/.ccache"
    keys = {name: job["cache"][0]["key"] for name, job in jobs_of("gitlab", data).items()}
    assert len(set(keys.values())) == len(keys)  # one key per job

    # a changed patch gives new keys; the per-board fallback stays
    patch = fixture_project / "patches" / "0002-gc-threshold.patch"
    patch.write_text(patch.read_text() + "\n")
    _, again, _ = generate(fixture_project, tmp_path / "b.yml", "--provider", "gitlab")
    assert again["stmhal"]["cache"][0]["key"] != main["key"]
    assert again["stmhal"]["cache"][0]["key"].startswith(main["key"].rsplit("-", 1)[0])
    assert again["stmhal"]["cache"][1]["key"] == rolling["key"]


def test_github_cache_keys_are_computed_in_the_job_with_restore_keys(fixture_project, fixture_mirror,
                                                                     tmp_path):
    fetched(fixture_project, fixture_mirror)
    text, data, _ = generate(fixture_project, tmp_path / "g.yml", "--provider", "github")
    assert "github.workspace" not in text  # the host's path, wrong inside a container
    stmhal = data["jobs"]["stmhal"]
    steps = {step.get("name", step.get("uses")): step for step in stmhal["steps"]}
    setup = steps["Job environment (ccache in the workspace, the venv on PATH)"]["run"]
    assert 'echo "CCACHE_DIR=$GITHUB_WORKSPACE/.ccache" >> "$GITHUB_ENV"' in setup
    inputs = steps["Cache key inputs (tree pin, compiler)"]
    assert "git rev-parse HEAD:micropython" in inputs["run"]
    assert "arm-none-eabi-gcc -dumpfullversion" in inputs["run"]
    cache = steps["Cache submodules, sources and ccache"]["with"]
    key = cache["key"]
    for part in ("${{ steps.inputs.outputs.compiler }}", "${{ matrix.board }}",
                 "${{ steps.inputs.outputs.pin }}", "${{ hashFiles('patches/**') }}"):
        assert part in key
    restore = cache["restore-keys"].splitlines()
    # most specific first, each a prefix of the key: same pin, same board, same toolchain
    assert [key.startswith(r) for r in restore] == [True, True, True]
    assert [len(r) for r in restore] == sorted((len(r) for r in restore), reverse=True)
    assert restore[-1].endswith("${{ steps.inputs.outputs.compiler }}-")  # any board of the port
    # the checkout's step runs before the one that reads its gitlink
    names = [s.get("name", s.get("uses")) for s in stmhal["steps"]]
    assert names.index("actions/checkout@v4") < names.index("Cache key inputs (tree pin, compiler)")


def _check_jsonschema() -> list[str]:
    if importlib.util.find_spec("check_jsonschema") is not None:
        return [sys.executable, "-m", "check_jsonschema"]
    found = shutil.which("check-jsonschema")
    if found is None:
        pytest.skip("needs check-jsonschema (pip install -e '.[test]')")
    return [found]


def validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_check_jsonschema(), "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_generated_files_pass_the_providers_schemas(fixture_project, fixture_mirror, provider,
                                                    tmp_path):
    fetched(fixture_project, fixture_mirror)
    variants = {"container": [], "shell": ["--runner", "shell"],
                "xc16": ["--runner", "shell", "--with-xc16", "/opt/xc16"]}
    for name, args in variants.items():
        out = tmp_path / f"{provider}-{name}.yml"
        generate(fixture_project, out, "--provider", provider, *args)
        checked = validate(SCHEMAS[provider], out)
        assert checked.returncode == 0, f"{name}:\n{checked.stdout}{checked.stderr}"
        assert "ok -- validation done" in checked.stdout

    # the validator does look: a job with a wrong type fails it
    data = yaml.safe_load((tmp_path / f"{provider}-container.yml").read_text())
    if provider == "github":
        data["jobs"]["bare_arm"]["strategy"] = {"fail-fast": "sometimes"}
    else:
        data["bare_arm"]["cache"][0]["when"] = "sometimes"
    broken = tmp_path / f"{provider}-broken.yml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    assert validate(SCHEMAS[provider], broken).returncode != 0


def test_unknown_provider_runner_or_toolchain_is_refused(fixture_project, fixture_mirror):
    project = project_for(fetched(fixture_project, fixture_mirror))
    for settings, words in ((cigen.Settings("jenkins"), "github, gitlab"),
                            (cigen.Settings("github", "kubernetes"), "container, shell"),
                            (cigen.Settings("github", "shell", {"xc8": "/opt"}), "xc16")):
        with pytest.raises(ConfigError) as info:
            cigen.plan(project, settings)
        assert words in info.value.one_line()


# -- ccache ------------------------------------------------------------------------------


def test_ccache_stats_are_the_difference_of_two_readings():
    before = {"direct_cache_hit": 10, "preprocessed_cache_hit": 2, "cache_miss": 5}
    after = {"direct_cache_hit": 17, "preprocessed_cache_hit": 3, "cache_miss": 7,
             "called_for_link": 1}
    stats = ccache_mod.CcacheStats.between(before, after)
    assert (stats.hits, stats.misses, stats.uncacheable) == (8, 2, 1)
    assert stats.describe() == "ccache: 8 hits, 2 misses (hit rate 80%)"
    assert stats.as_dict() == {"hits": 8, "misses": 2, "uncacheable": 1, "hit_rate": 0.8,
                               "local_hits": 8, "remote_hits": 0, "remote_errors": 0, "remote_hit_rate": 0.0}
    assert ccache_mod.CcacheStats(0, 0).as_dict()["hit_rate"] is None


@pytest.mark.parametrize("value, expected", [(None, True), ("1", True), ("0", False),
                                             ("off", False), ("No", False), ("false", False)])
def test_the_project_setting_decides_unless_the_caller_does(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(ccache_mod.SETTING, raising=False)
    else:
        monkeypatch.setenv(ccache_mod.SETTING, value)
    assert ccache_mod.wanted() is expected
    assert ccache_mod.wanted(False) is False and ccache_mod.wanted(True) is True


needs_ccache = pytest.mark.skipif(shutil.which("ccache") is None, reason="needs ccache (apt-get install ccache)")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi "
                                      "libnewlib-arm-none-eabi)")


def ccache_counters(cache_dir: Path) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], env={**os.environ, "CCACHE_DIR": str(cache_dir)},
                         capture_output=True, text=True, check=True).stdout
    return {n: int(v) for n, _, v in (row.partition("\t") for row in out.splitlines()) if v.isdigit()}


@needs_ccache
@needs_arm
def test_a_second_clean_build_of_a_cross_target_hits_ccache(fixture_project, fixture_mirror, tmp_path):
    # a cache of its own, and on whatever the caller's environment says
    env = {"CCACHE_DIR": str(tmp_path / "ccache"), ccache_mod.SETTING: "1"}
    build = ("build", "--port", "bare-arm", "--clean", "--mirror", str(fixture_mirror.base))
    first = run_cli(fixture_project, *build, env=env)
    assert first.returncode == 0, first.stderr
    assert re.search(r"ccache: \d+ hits, [1-9]\d* misses", first.stdout)
    log = (fixture_project / "build" / "bare-arm" / "build.log").read_text()
    assert "ccache arm-none-eabi-gcc" in log
    misses = ccache_counters(tmp_path / "ccache")["cache_miss"]

    second = run_cli(fixture_project, *build, env=env)
    assert second.returncode == 0, second.stderr
    hits = re.search(r"ccache: (\d+) hits, 0 misses \(hit rate 100%\)", second.stdout)
    assert hits and int(hits.group(1)) >= misses  # every object the first build compiled
    counters = ccache_counters(tmp_path / "ccache")
    assert counters["direct_cache_hit"] + counters["preprocessed_cache_hit"] >= misses

    # the matrix path (several ports) goes through the same decision
    matrix = run_cli(fixture_project, "build", "--port", "bare-arm,stmhal", "--board", "PYBV10",
                     "--clean", "--mirror", str(fixture_mirror.base), env=env)
    assert matrix.returncode == 0, matrix.stderr
    assert re.search(r"ccache: [1-9]\d* hits", matrix.stdout)


@needs_ccache
@needs_arm
def test_no_ccache_and_the_project_setting_turn_it_off(fixture_project, fixture_mirror, tmp_path):
    env = {"CCACHE_DIR": str(tmp_path / "ccache")}
    build = ("build", "--port", "bare-arm", "--clean", "--mirror", str(fixture_mirror.base))
    log = fixture_project / "build" / "bare-arm" / "build.log"
    for args, extra_env in ((("--no-ccache",), {}), ((), {ccache_mod.SETTING: "0"})):
        result = run_cli(fixture_project, *build, *args, env={**env, **extra_env})
        assert result.returncode == 0, result.stderr
        assert "ccache:" not in result.stdout
        assert "'CC=arm-none-eabi-gcc " in log.read_text()  # no ccache in front
    assert not (tmp_path / "ccache").exists() or ccache_counters(tmp_path / "ccache")["cache_miss"] == 0
