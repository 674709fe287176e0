"""``invoke ci-generate --farm 'labgrid:TAG=VALUE'``: a device-test job on a labgrid farm.

The files are validated with the providers' published schemas (check-jsonschema), as the
other generated jobs are (tests/ci/test_generate.py), and read back for what the job must do:
run on the farm's runner, take the coordinator from a variable, build the board the spec's tag
names and test on the farm's places with its JUnit as the report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_generate import SCHEMAS, fetched, generate, job_text, jobs_of, validate

from conftest import run_cli

SPEC = "labgrid:board=PYBV10_QEMU"


@pytest.mark.parametrize("runner", ["container", "shell"])
@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_a_farm_job_runs_the_device_tests_on_the_farm(fixture_project, fixture_mirror, tmp_path: Path,
                                                      provider: str, runner: str) -> None:
    fetched(fixture_project, fixture_mirror)
    out = tmp_path / f"{provider}.yml"
    text, data, _ = generate(fixture_project, out, "--provider", provider, "--runner", runner, "--farm", SPEC)
    checked = validate(SCHEMAS[provider], out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    jobs = jobs_of(provider, data)
    job = jobs["stmhal_farm"]
    commands = job_text(provider, job)
    assert "invoke build --port stmhal --board PYBV10_QEMU" in commands
    assert f"invoke test --port stmhal --device '{SPEC}' --jobs 3" in commands
    assert "--junit ci-out/device-junit.xml" in commands and "pip install -e '.[farm]'" in commands
    assert ("apt-get" in commands) == (runner == "container")
    if provider == "github":
        assert job["runs-on"] == ["self-hosted", "labgrid"]
        assert job["env"]["LG_COORDINATOR"] == "${{ vars.LG_COORDINATOR }}"
        assert "github.run_id" in job["env"]["LG_USERNAME"]
    else:
        assert job["tags"] == ["labgrid"] and job["stage"] == "device" and "device" in data["stages"]
        assert data["variables"]["LG_COORDINATOR"]["value"] == ""
        assert job["variables"]["LG_USERNAME"] == "ci-$CI_JOB_ID"
        assert job["artifacts"]["reports"]["junit"] == "ci-out/device-junit.xml"
    without = tmp_path / "without.yml"
    generate(fixture_project, without, "--provider", provider, "--runner", runner)
    assert "stmhal_farm" not in jobs_of(provider, generate(fixture_project, without, "--provider", provider)[1])
    assert "LG_COORDINATOR" not in without.read_text()


def test_a_farm_spec_without_a_known_board_is_one_line(fixture_project, fixture_mirror, tmp_path: Path) -> None:
    fetched(fixture_project, fixture_mirror)
    for spec, says in (("labgrid:pyb-1", "the spec has no board tag"),
                       ("labgrid:board=NOPE", "no port with device tests has a board NOPE"),
                       ("labgrid:board=", "not TAG=VALUE")):
        result = run_cli(fixture_project, "ci-generate", "--farm", spec)
        assert result.returncode == 1 and says in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
