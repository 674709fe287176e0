"""The docs site: the generated reference pages equal the code, the site builds strictly,
and the README's short tour names every task and links only to pages that exist."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, Context, Exit
from pydantic import Field
from pydantic.dataclasses import dataclass

from conftest import REPO
from mpforge.cli.framework import task
from mpforge.cli.render import reference
from mpforge.cli.tasks import ns
from mpforge.cli.tasks.docs import reference_task
from mpforge.core import environment
from mpforge.core.errors import ConfigError
from mpforge.core.model.base import TABLE, Count, Str
from mpforge.core.model.schemas import SchemaFile

PAGES = REPO / reference.FOLDER


def test_the_checked_in_reference_pages_are_the_codes():
    assert reference.stale(PAGES, ns) == [], f"run: {reference.REWRITE}"


@task(locks=False, help={"colour": "the colour to paint it", "k": "only the parts matching this"})
def paint(c: Context, colour: str = "red", k: str = "") -> None:
    """Paint the thing, in one colour."""


def a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ports").mkdir()
    (tmp_path / "toolchains").mkdir()
    monkeypatch.setenv("MPFORGE_ROOT", str(tmp_path))
    return tmp_path


def test_the_docs_task_writes_the_pages_and_check_names_a_stale_one(tmp_path, monkeypatch, capsys):
    root = a_checkout(tmp_path, monkeypatch)
    before = Collection(paint)
    docs = reference_task(before)
    before.add_task(docs)
    docs(Context())
    assert "tasks.md, data.md, environment.md, modules.md rewritten" in capsys.readouterr().out
    docs(Context(), check=True)
    assert capsys.readouterr().out.strip() == "docs/reference: up to date"

    (root / reference.FOLDER / "environment.md").write_text("edited by hand\n")
    grown = Collection(paint, ns["fetch"])  # a task added since the pages were written
    later = reference_task(grown)
    grown.add_task(later)
    with pytest.raises(Exit) as stopped:
        later(Context(), check=True)
    assert stopped.value.code == 1
    said = capsys.readouterr().err
    assert "tasks.md, environment.md differ from the code" in said and "invoke docs" in said
    assert (root / reference.FOLDER / "environment.md").read_text() == "edited by hand\n"  # --check writes nothing


def test_a_tasks_page_is_its_help():
    page = reference.task_reference(Collection(paint))
    assert "## paint\n\n```\ninvoke paint [options]\n```\n\nPaint the thing, in one colour." in page
    assert "| `--colour=STRING` | the colour to paint it |" in page
    assert "| `-k STRING` | only the parts matching this |" in page  # the short flag -h shows
    assert "| `--debug` | show a traceback on errors |" in page  # a shared option, injected
    assert "`-j` (`--jobs`)" in page and "`-k` (the test filter)" in page


def test_every_task_of_the_namespace_is_on_its_page():
    page = (PAGES / "tasks.md").read_text()
    assert sorted(re.findall(r"^## (\S+)$", page, re.M)) == sorted(ns.task_names)
    assert "docs" in ns.task_names


@dataclass(frozen=True, config=TABLE)
class Step:
    """``[[steps]]``: one step."""

    run: list[Str]
    """the command"""


@dataclass(frozen=True, config=TABLE)
class Sample:
    """A sample file."""

    name: Str
    """its name"""
    limit: Count = 3
    """how many"""
    targets: list[Str] = Field(default_factory=lambda: ["all"])
    """make targets"""
    steps: list[Step] = Field(default_factory=list)
    """the steps"""


def test_a_data_page_is_the_models_keys_types_defaults_and_docs():
    page = reference.data_reference([SchemaFile("sample", Sample, ("samples/*.toml",), "samples/<name>.toml")])
    assert '<a id="sample"></a>\n\n## samples/&lt;name&gt;.toml' in page
    assert "| `name` | string | required | its name |" in page
    assert "| `limit` | integer (>= 0) | `3` | how many |" in page
    assert '| `targets` | list of string | `["all"]` | make targets |' in page  # a default_factory's value
    assert "| `steps` | list of [table](#sample-step) | `[]` | the steps |" in page
    assert '<a id="sample-step"></a>\n\n### `steps[]`\n\n`[[steps]]`: one step.' in page
    assert "| `run` | list of string | required | the command |" in page


def test_the_data_page_has_every_top_level_key_of_a_port_file():
    from mpforge.core.model.ports import PortFile
    page = (PAGES / "data.md").read_text()
    for field in PortFile.__pydantic_fields__:
        assert f"| `{field}` |" in page, field


def test_the_environment_page_has_every_variable_the_code_reads():
    page = (PAGES / "environment.md").read_text()
    for name in environment.VARIABLES.values():
        assert f"| `{name}` |" in page, name
    for point in environment.FAULT_POINTS:
        assert f"| `{point}` |" in page, point


def test_the_environment_table_must_name_exactly_the_variables_read():
    doc = environment.__doc__ or ""
    assert [name for name, _, _ in reference.environment_rows(doc)] == list(environment.VARIABLES.values())
    without = "\n".join(line for line in doc.splitlines() if not line.startswith("``MPFORGE_SYSFS``"))
    with pytest.raises(ConfigError, match="read but not in the table: MPFORGE_SYSFS"):
        reference.environment_rows(without)
    extra = doc.replace("``CI``    ", "``MPFORGE_X``", 1)
    with pytest.raises(ConfigError, match="read but not in the table: CI; in the table but not read: MPFORGE_X"):
        reference.environment_rows(extra)
    with pytest.raises(ConfigError, match="no variable table"):
        reference.environment_rows("no table here")


def test_a_continued_row_is_one_row():
    rows = reference.environment_rows(environment.__doc__)
    root = dict((name, (meaning, default)) for name, meaning, default in rows)["MPFORGE_ROOT"]
    assert root == ("the mpforge checkout to work on",
                    "the nearest folder at or above the current one with ``ports/`` and ``toolchains/``")


def test_every_pipe_of_a_cell_is_escaped():
    assert reference.cell("a | b with ``x|y``") == "a \\| b with `x\\|y`"


def test_the_modules_page_has_every_module_of_the_library():
    page = (PAGES / "modules.md").read_text()
    base = REPO / "src" / "mpforge"
    for path in base.rglob("*.py"):
        relative = path.relative_to(base)
        if any(p in reference.NOT_LIBRARY for p in relative.parts) or len(relative.parts) == 1:
            continue
        if len(relative.parts) == 2 and path.name == "__init__.py":
            layer = relative.parts[0]
            assert f"## `{layer}`" in page, layer
        else:
            name = f"{relative.parent}/" if path.name == "__init__.py" else str(relative)
            assert f"| `{name}` |" in page, name
    assert "| `core/environment.py` | Every environment variable mpforge reads, read in one place" in page


def test_a_package_the_top_docstring_does_not_list_is_refused(tmp_path):
    (tmp_path / "__init__.py").write_text('"""Layers:\n\n``core``   the bottom\n"""\n')
    for name in ("core", "extra"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f'"""The {name} layer."""\n')
    with pytest.raises(ConfigError, match="lists the layers core, the package has core, extra"):
        reference.modules_reference(tmp_path)
    (tmp_path / "__init__.py").write_text('"""Layers:\n\n``core``   the bottom\n``extra``  the top\n"""\n')
    (tmp_path / "extra" / "thing.py").write_text('"""A thing.\n\nMore about it."""\n')
    page = reference.modules_reference(tmp_path)
    assert "## `extra`\n\nThe extra layer." in page and "| `extra/thing.py` | A thing. |" in page


# --- the README -------------------------------------------------------------------------

README = (REPO / "README.md").read_text()


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_the_readmes_tour_names_every_task():
    tour = README.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    named = {name for first in re.findall(r"^\| ([^|]+) \|", tour, re.M) for name in re.findall(r"`([a-z-]+)`", first)}
    assert named == set(ns.task_names)


def test_the_readmes_links_lead_to_pages_that_exist():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links to the docs"
    assert [t for t in local if not (REPO / t).is_file()] == []


def test_the_getting_started_page_has_the_readmes_two_commands():
    def blocks(text: str) -> list[str]:
        return re.findall(r"```sh\n(.*?)```", text, re.S)[:2]
    assert blocks((REPO / "docs" / "getting-started.md").read_text()) == blocks(README)  # checked there


# --- the site ---------------------------------------------------------------------------

needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                  reason="mkdocs is not installed (pip install -e '.[docs]')")


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=300)


@needs_mkdocs
def test_the_site_builds_strictly_and_a_broken_link_fails_it(tmp_path):
    built = mkdocs_build(REPO, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "site" / "reference" / "tasks" / "index.html").is_file()
    # a pipe in code in a table: escaped for GitHub in the page, shown bare on the site
    assert "| `invoke ci [--ports P,Q] [--boards B\\|all] " in (REPO / "docs" / "continuous-integration.md").read_text()
    page = (tmp_path / "site" / "continuous-integration" / "index.html").read_text()
    assert "<code>invoke ci [--ports P,Q] [--boards B|all] " in page and "B\\|all" not in page
    assert not (tmp_path / "site" / "hooks").exists()

    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(REPO / "mkdocs.yml", copy)
    shutil.copytree(REPO / "docs", copy / "docs")
    with (copy / "docs" / "safety.md").open("a") as page:
        page.write("\nSee [the matrix](building.md#no-such-section).\n")
    broken = mkdocs_build(copy, tmp_path / "site2")
    assert broken.returncode != 0
    assert "building.md#no-such-section" in broken.stderr
