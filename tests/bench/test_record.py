"""Result files say which run produced them, and name no path of this machine."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import project_for
from mpforge.bench import record


def test_provenance_names_commit_host_date_and_command(fixture_project: Path) -> None:
    project = project_for(fixture_project)
    run = record.provenance(project, "invoke bench-build --port unix")
    assert run["command"] == "invoke bench-build --port unix"
    assert isinstance(run["project_commit"], str) and len(run["project_commit"]) == 40
    assert run["tree_commit"] is None  # micropython/ not fetched: not the checkout's own HEAD
    assert str(run["date"]).endswith("+00:00")
    host = run["host"]
    assert isinstance(host, dict) and host["cores"] and host["cpu"]
    code = run["mpforge"]
    assert isinstance(code, dict) and "commit" in code
    assert record.record_path(project, "bench-build") == fixture_project / "bench-results" / "bench-build.json"


def test_the_series_digest_follows_the_patches(fixture_project: Path) -> None:
    project = project_for(fixture_project)
    before = record.series_digest(project)
    assert before and len(before) == 16
    (project.patches_dir / "series").write_text("# emptied\n")
    assert record.series_digest(project) != before


def test_the_command_line_leaves_out_the_mirror_and_absolute_paths(monkeypatch) -> None:
    from mpforge.cli.framework import command_line as _command_line

    monkeypatch.setattr(sys, "argv", ["/x/bin/invoke", "bench-build", "--mirror", "/srv/mirror", "--port",
                                      "unix", "--json", "/tmp/a b/out.json", "--mirror=/srv/m"])
    assert _command_line() == ("invoke bench-build --mirror '<mirror>' --port unix --json '<path>/out.json' "
                               "'--mirror=<mirror>'")
