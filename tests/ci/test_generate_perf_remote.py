"""``invoke ci-generate --perf`` (the performance gate's job, #28) and the shared compile cache's
CI variable in every generated job (#29).

The files are validated with the providers' published schemas (check-jsonschema), as the other
generated jobs are (tests/ci/test_generate.py), and read back for what the jobs must do. The
shell that turns ``MPFORGE_CCACHE_REMOTE`` into the job's setting is taken out of the generated
file and run, as the runner would run it, for a push to the default branch, a pull/merge
request and a job without the variable.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_generate import SCHEMAS, fetched, generate, job_text, jobs_of, validate

from mpforge.ci import generate as cigen

#: the jobs that build (every one but the perf job runs `invoke ci`)
BUILDING = ("unix", "bare_arm", "stmhal", "stmhal_qemu")


@pytest.mark.parametrize("runner", ["container", "shell"])
@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_perf_job_runs_the_gate_on_pull_requests_into_the_summary(fixture_project, fixture_mirror,
                                                                  tmp_path: Path, provider: str,
                                                                  runner: str) -> None:
    fetched(fixture_project, fixture_mirror)
    out = tmp_path / f"{provider}.yml"
    _, data, result = generate(fixture_project, out, "--provider", provider, "--runner", runner, "--perf")
    checked = validate(SCHEMAS[provider], out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = jobs_of(provider, data)
    job = jobs["perf"]
    commands = job_text(provider, job)
    gate = "invoke perf --base {} --check --markdown ci-out/perf.md --json ci-out/perf.json"
    assert commands.index("invoke doctor --port unix") < commands.index("invoke perf --base")
    if provider == "github":
        assert job["if"] == "github.event_name == 'pull_request'"
        checkout = next(s for s in job["steps"] if s.get("uses") == "actions/checkout@v4")
        assert checkout["with"]["fetch-depth"] == 0  # the base branch's history
        assert job["env"]["BASE_REF"] == "${{ github.base_ref }}"
        assert gate.format('"origin/$BASE_REF"') in commands
        summary = next(s for s in job["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
        assert summary["if"] == "always()"  # a regression fails the gate: the table still shows
        assert 'cat ci-out/perf.md >> "$GITHUB_STEP_SUMMARY"' in summary["run"]
        packages = next((s["run"] for s in job["steps"] if "apt-get" in s.get("run", "")), "")
    else:
        assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
        assert job["variables"]["GIT_DEPTH"] == 0 and job["stage"] == "perf" in data["stages"]
        target = '"origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"'
        assert gate.format(target) in commands
        assert commands.index("git fetch origin") < commands.index("invoke perf")
        artifacts = job["artifacts"]
        assert artifacts["expose_as"] == "perf table" and artifacts["when"] == "always"
        assert artifacts["paths"] == ["ci-out/perf.md", "ci-out/perf.json"]
        assert "cat ci-out/perf.md" in job["after_script"][0]
        packages = next((c for c in job["before_script"] if "apt-get" in c), "")
    if runner == "container":  # the unix job's machine, plus valgrind from the data
        unix = job_text(provider, jobs["unix"])
        unix_packages = next(line for line in unix.splitlines() if "apt-get install" in line).split()
        assert "valgrind" in packages.split() and "valgrind" not in unix_packages
        assert set(unix_packages) <= set(packages.split())
    else:
        assert packages == "" and "apt-get" not in commands
    assert "jobs" in result.stderr

    without = tmp_path / "without.yml"
    _, plain, _ = generate(fixture_project, without, "--provider", provider, "--runner", runner)
    assert "perf" not in jobs_of(provider, plain) and "invoke perf" not in without.read_text()


def _gitlab_line(data: dict, job: str) -> str:
    lines = [c for c in data[job]["before_script"] if "MPFORGE_CCACHE_REMOTE" in c]
    assert len(lines) == 1, data[job]["before_script"]
    return lines[0]


def _run_gitlab(line: str, **env: str) -> tuple[str, str]:
    """The job's setting (or ``<unset>``) and what the line said, run as GitLab's shell would."""
    script = f'{line}\nprintf "\\n@@%s" "${{MPFORGE_CCACHE_REMOTE-<unset>}}"'
    done = subprocess.run(["sh", "-c", script], env={"PATH": os.environ["PATH"], **env},
                          capture_output=True, text=True, timeout=30, check=True)
    said, _, value = done.stdout.rpartition("\n@@")
    return value, said.strip()


def _run_github(step: dict, tmp: Path, **env: str) -> tuple[str, str]:
    """What the step adds to ``$GITHUB_ENV`` for later steps, and what it said."""
    github_env = tmp / "github_env"
    github_env.write_text("")
    done = subprocess.run(["bash", "-e", "-c", step["run"]], capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "GITHUB_ENV": str(github_env), **env}, check=True)
    return github_env.read_text(), done.stdout.strip()


TWO = "redis://cache.lan:6379|connect-timeout=500 http://cache.lan:8080/ccache/"
TWO_READ_ONLY = "redis://cache.lan:6379|connect-timeout=500|read-only http://cache.lan:8080/ccache/|read-only"


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_every_build_job_takes_the_shared_cache_read_only_except_on_default_branch_pushes(
        fixture_project, fixture_mirror, tmp_path: Path, provider: str) -> None:
    fetched(fixture_project, fixture_mirror)
    out = tmp_path / f"{provider}.yml"
    _, data, _ = generate(fixture_project, out, "--provider", provider, "--perf",
                          "--farm", "labgrid:board=PYBV10_QEMU")
    checked = validate(SCHEMAS[provider], out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = jobs_of(provider, data)
    building = [*BUILDING, "perf", "stmhal_farm"]
    if provider == "gitlab":
        declared = data["variables"]["MPFORGE_CCACHE_REMOTE"]
        assert declared["value"] == "" and "read-only" in declared["description"]  # documented
        line = _gitlab_line(data, "unix")
        for name in building:  # before anything is built or installed with pip
            assert _gitlab_line(data, name) == line
            script = data[name]["before_script"]
            assert script.index(line) < next(i for i, c in enumerate(script) if "pip install" in c)
        branch = {"CI_DEFAULT_BRANCH": "main", "CI_COMMIT_BRANCH": "main"}
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE=TWO, CI_PIPELINE_SOURCE="push", **branch) == (
            TWO, "shared compile cache: read-write (a push to main)")
        mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": "main"}
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE=TWO, **mr) == (TWO_READ_ONLY, "shared compile cache: read-only")
        other = {"CI_PIPELINE_SOURCE": "push", "CI_DEFAULT_BRANCH": "main", "CI_COMMIT_BRANCH": "topic"}
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE="redis://c:1", **other)[0].strip() == "redis://c:1|read-only"
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE="*", **mr)[0].strip() == "*|read-only"  # not globbed
        scheduled = {"CI_PIPELINE_SOURCE": "schedule", **branch}  # on main, but not a push
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE="redis://c:1", **scheduled)[0] == "redis://c:1|read-only"
        assert _run_gitlab(line, MPFORGE_CCACHE_REMOTE="", **mr) == (
            "", "no MPFORGE_CCACHE_REMOTE: this job's own ccache only")
        assert _run_gitlab(line, **mr)[0] == "<unset>"
        assert all(".ccache" in str(data[name]["cache"]) for name in BUILDING)  # the job's own cache stays
        return
    for name in building:
        steps = jobs[name]["steps"]
        names = [s.get("name", s.get("uses", "")) for s in steps]
        index = next(i for i, n in enumerate(names) if n.startswith("Shared compile cache"))
        assert index < next(i for i, n in enumerate(names) if n == "Install mpforge" or n.startswith("Install mpforge"))
        step = steps[index]
        assert step["env"]["REMOTE"] == "${{ secrets.MPFORGE_CCACHE_REMOTE || vars.MPFORGE_CCACHE_REMOTE }}"
        assert step["env"]["WRITE"] == ("${{ github.event_name == 'push' && github.ref == "
                                        "format('refs/heads/{0}', github.event.repository.default_branch) }}")
    step = next(s for s in jobs["unix"]["steps"] if s.get("name", "").startswith("Shared compile cache"))
    assert _run_github(step, tmp_path, REMOTE=TWO, WRITE="true") == (
        f"MPFORGE_CCACHE_REMOTE={TWO}\n", "shared compile cache: read-write (a push to the default branch)")
    written, said = _run_github(step, tmp_path, REMOTE=TWO, WRITE="false")
    assert written == f"MPFORGE_CCACHE_REMOTE={TWO_READ_ONLY}\n" and said.endswith("read-only")
    assert _run_github(step, tmp_path, REMOTE="", WRITE="true") == (
        "", "no MPFORGE_CCACHE_REMOTE: this job's own ccache only")
    assert all(any(s.get("uses") == "actions/cache@v4" for s in jobs[name]["steps"]) for name in BUILDING)


def test_perf_needs_the_unix_job(fixture_project, fixture_mirror) -> None:
    from conftest import project_for

    project = project_for(fetched(fixture_project, fixture_mirror))
    pipeline = cigen.plan(project, cigen.Settings("github", perf=True))
    assert pipeline.perf is not None and pipeline.perf.base.port == "unix"
    pipeline.jobs = [j for j in pipeline.jobs if j.port != "unix"]
    with pytest.raises(cigen.ConfigError) as info:
        cigen._perf_job(project, pipeline.settings, pipeline.jobs)
    assert "--perf: the pipeline has no unix job" in info.value.one_line()
