"""The JSON Schemas of ``schemas/``: equal to the model, valid, and checking every shipped data
file through the real ``check-jsonschema`` (and, when installed, ``taplo``, as an editor does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from pydantic.dataclasses import dataclass

from conftest import REPO, run_task
from mpforge.cli.tasks.schemas import main
from mpforge.core.errors import DataFileError
from mpforge.core.model import schemas
from mpforge.core.model.base import TABLE, Str
from mpforge.core.model.loader import validate
from mpforge.core.model.ports import PortFile
from mpforge.core.model.schemas import SCHEMAS, SchemaFile, stale
from mpforge.core.model.settings import read_section

SCHEMA_DIR = REPO / schemas.FOLDER
BY_NAME = {entry.name: entry for entry in SCHEMAS}
#: folders of the checkout that hold no data file of ours
NOT_OURS = {".git", ".venv", "micropython", "build", "dist", "node_modules"}


def shipped(entry: SchemaFile) -> list[Path]:
    """The checkout's files ``entry`` describes (its patterns, less its exclusions)."""
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if d not in NOT_OURS and not d.startswith("."))
        for name in sorted(files):
            relative = (Path(folder) / name).relative_to(REPO).as_posix()
            matches = any(fnmatch(relative, p) or (p.startswith("**/") and fnmatch(relative, p[3:]))
                          for p in entry.files)
            if matches and not any(fnmatch(relative, p) for p in entry.exclude):
                found.append(REPO / relative)
    return found


def check_jsonschema(schema: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """The real ``check-jsonschema`` command (it reads TOML and YAML itself)."""
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--color", "never", "--schemafile",
                           str(schema), *map(str, files)], text=True, capture_output=True, timeout=120)


# --- the schemas are the model's ------------------------------------------------------

def test_the_checked_in_schemas_are_the_models():
    assert stale(SCHEMA_DIR) == [], "run: invoke schemas"
    assert sorted(p.name for p in SCHEMA_DIR.iterdir()) == sorted(e.file_name for e in SCHEMAS)
    assert main(["--check", "--dir", str(SCHEMA_DIR)]) == 0


@dataclass(frozen=True, config=TABLE)
class GrownPortFile(PortFile):
    """A port file with one key more, as the model would be after someone adds a field."""

    colour: Str = ""
    """the port's colour"""


def test_a_key_added_to_the_model_without_regenerating_fails_the_check(monkeypatch, tmp_path, capsys):
    grown = SchemaFile("port", GrownPortFile, BY_NAME["port"].files, BY_NAME["port"].title)
    monkeypatch.setattr(schemas, "SCHEMAS", tuple(grown if e.name == "port" else e for e in SCHEMAS))
    assert stale(SCHEMA_DIR) == ["port.schema.json"]
    assert main(["--check", "--dir", str(SCHEMA_DIR)]) == 1
    said = capsys.readouterr().err
    assert "port.schema.json differ from the model" in said and "invoke schemas" in said
    # regenerating writes the new key, with its doc, and then the check passes
    shutil.copytree(SCHEMA_DIR, tmp_path / "schemas")
    assert main(["--write", "--dir", str(tmp_path / "schemas")]) == 0
    written = json.loads((tmp_path / "schemas" / "port.schema.json").read_text())
    assert written["properties"]["colour"] == {"default": "", "description": "the port's colour", "type": "string"}
    assert stale(tmp_path / "schemas") == []


def tables(node: object, where: str = "$"):
    """Every ``(place, schema)`` of a table (a node with ``properties``) inside ``node``."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from tables(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from tables(value, f"{where}[{index}]")


@pytest.mark.parametrize("entry", SCHEMAS, ids=lambda e: e.name)
def test_every_key_has_its_doc_and_every_table_refuses_unknown_keys(entry):
    schema = json.loads((SCHEMA_DIR / entry.file_name).read_text())
    assert schema["$schema"] == schemas.DIALECT
    found = list(tables(schema))
    assert found
    for where, table in found:
        if entry.name == "invoke" and where == "$":
            assert table["additionalProperties"] is True  # invoke's own keys (tasks, run...) live there too
        else:
            assert table["additionalProperties"] is False, where
        for key, sub in table["properties"].items():
            assert sub.get("description"), f"{entry.file_name}: {where}.{key} has no description"
            assert "title" not in sub
    text = json.dumps(schema)
    if entry.toml:
        assert '"null"' not in text  # TOML has no null: an optional table is just absent


def test_a_key_s_doc_is_its_docstring_in_the_model():
    port = json.loads((SCHEMA_DIR / "port.schema.json").read_text())
    runner = port["$defs"]["FlashDef"]["properties"]["runner"]
    assert runner["description"].startswith("the runner: dfu-util, pydfu")
    assert runner["type"] == "string"
    make_dir = port["properties"]["make_dir"]
    assert make_dir["description"] == "the port's folder in the tree, where make runs (``stmhal``)"
    assert port["required"] == ["make_dir", "toolchain", "artifacts"]


def test_the_schemas_are_valid_json_schemas():
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--check-metaschema",
                             *map(str, sorted(SCHEMA_DIR.glob("*.json")))], text=True, capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# --- check-jsonschema validates the shipped files -------------------------------------

@pytest.mark.parametrize("entry", SCHEMAS, ids=lambda e: e.name)
def test_check_jsonschema_validates_every_shipped_file(entry):
    files = shipped(entry)
    least = {"port": 10, "toolchain": 4, "host-tools": 1, "app": 1, "invoke": 1}[entry.name]
    assert len(files) >= least, [str(f) for f in files]
    if entry.name == "app":
        assert REPO / "tests/fixtures/thermostat/mpforge.toml" in files
    if entry.name == "toolchain":
        assert REPO / "toolchains/host-tools.toml" not in files
    result = check_jsonschema(SCHEMA_DIR / entry.file_name, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


PORT_BASE = 'make_dir = "stmhal"\ntoolchain = "arm-none-eabi"\n[[artifacts]]\npath = "a"\n'
#: (schema, file name, text, where check-jsonschema says the problem is, the loader's line)
WRONG = [
    ("port", "ports/stmhal.toml", PORT_BASE + '[make]\npost = ["objcopy", "-O"]\n', "$.make.post[0]",
     'make.post[0]: expected a non-empty list of strings, got "objcopy"'),
    ("port", "ports/stmhal.toml", PORT_BASE + '[make]\npost = "rm"\n', "$.make.post",
     'make.post: expected a list of non-empty lists of strings, got "rm"'),
    ("port", "ports/stmhal.toml", PORT_BASE + "[flash]\nrunner = 12\n", "$.flash.runner",
     "flash.runner: expected a string, got 12"),
    ("port", "ports/stmhal.toml", PORT_BASE + '[size_regions.iram]\nsections = [".text"]\nlimit = "big"\n',
     "$.size_regions.iram.limit", 'size_regions.iram.limit: expected an integer >= 0, got "big"'),
    ("port", "ports/stmhal.toml", 'toolchian = "x"\n' + PORT_BASE, "Additional properties are not allowed",
     "unknown key 'toolchian'"),
    ("toolchain", "toolchains/arm-none-eabi.toml", "cross_compile = 1\n", "$.cross_compile",
     "cross_compile: expected a string, got 1"),
    ("host-tools", "toolchains/host-tools.toml", '[tools.git]\nprobe = "git"\n', "$.tools.git.probe",
     'tools.git.probe: expected a list of strings, got "git"'),
    ("app", "mpforge.toml", 'modules = "main.py"\n', "$.modules",
     'modules: expected a list of strings, got "main.py"'),
    ("invoke", "invoke.yaml", "mpforge:\n  jobs: many\n", "$.mpforge.jobs",
     'mpforge.jobs: expected an integer from 0 to 4096, got "many"'),
]


@pytest.mark.parametrize("name, shown, text, where, line", WRONG, ids=[w[3] for w in WRONG])
def test_a_wrong_type_fails_check_jsonschema_and_the_loader_alike(tmp_path, name, shown, text, where, line):
    entry = BY_NAME[name]
    path = tmp_path / shown
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    result = check_jsonschema(SCHEMA_DIR / entry.file_name, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors were encountered" in result.stdout
    assert where in result.stdout, result.stdout
    # the loader refuses the very same file, in one line naming file, key, expected and got
    with pytest.raises(DataFileError) as caught:
        if name == "invoke":
            read_section(yaml.safe_load(text)["mpforge"], shown)
        else:
            validate(entry.model, tomllib.loads(text), shown)
    assert caught.value.message.startswith(f"{shown}: ") and line in caught.value.message
    assert "\n" not in caught.value.one_line()


def test_a_wrong_type_in_a_port_is_one_line_and_exit_1_from_the_command(tmp_path):
    shutil.copytree(REPO / "ports", tmp_path / "ports")
    shutil.copytree(REPO / "toolchains", tmp_path / "toolchains")
    with (tmp_path / "ports" / "stmhal.toml").open("a") as fh:
        fh.write("\n[size_regions.iram]\nlimit = \"big\"\n")
    result = run_task(tmp_path, "build", "--port", "unix", "--dry-run")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert 'ports/stmhal.toml: size_regions.iram.limit: expected an integer >= 0, got "big"' in lines[0]


# --- the editor's view: .taplo.toml -----------------------------------------------------

def test_taplo_toml_associates_each_kind_of_file_with_its_schema():
    rules = tomllib.loads((REPO / ".taplo.toml").read_text())["rule"]
    associated = {(tuple(r["include"]), tuple(r.get("exclude", ())), r["schema"]["path"]) for r in rules}
    expected = {(e.files, e.exclude, f"./{schemas.FOLDER}/{e.file_name}") for e in SCHEMAS if e.toml}
    assert associated == expected


TAPLO = shutil.which("taplo", path=str(Path(sys.executable).parent)) or shutil.which("taplo")


@pytest.mark.skipif(TAPLO is None, reason="taplo is not installed (pip install taplo)")
def test_taplo_with_the_checkouts_config_checks_each_file_against_its_schema(tmp_path):
    for name in ("schemas", "ports", "toolchains"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / ".taplo.toml", tmp_path / ".taplo.toml")
    (tmp_path / "app").mkdir()
    shutil.copy(REPO / "tests/fixtures/thermostat/mpforge.toml", tmp_path / "app" / "mpforge.toml")
    files = [str(p.relative_to(tmp_path)) for p in sorted(tmp_path.glob("*/*.toml"))]
    good = subprocess.run([TAPLO, "lint", *files], cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert good.returncode == 0, good.stderr
    # each rule is in force: a wrong type in one file of each kind is found
    (tmp_path / "ports" / "unix.toml").write_text(PORT_BASE + "[flash]\nrunner = 12\n")
    (tmp_path / "toolchains" / "xc16.toml").write_text("cross_compile = 1\n")
    (tmp_path / "toolchains" / "host-tools.toml").write_text('[tools.git]\nprobe = "git"\n')
    (tmp_path / "app" / "mpforge.toml").write_text('modules = "main.py"\n')
    bad = subprocess.run([TAPLO, "lint", *files], cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert bad.returncode == 1
    for found in ('12 is not of type "string"', '1 is not of type "string"',
                  '"git" is not of type "array"', '"main.py" is not of type "array"'):
        assert found in bad.stderr, bad.stderr
    for name in ("ports/unix.toml", "toolchains/xc16.toml", "toolchains/host-tools.toml", "app/mpforge.toml"):
        assert str(tmp_path / name) in bad.stderr, name


def test_the_schemas_task_checks_the_checkouts_schemas(monkeypatch, capsys):
    from invoke import Context

    from mpforge.cli.tasks.schemas import schemas as schemas_task
    monkeypatch.setenv("MPFORGE_ROOT", str(REPO))
    schemas_task(Context(), check=True)
    assert capsys.readouterr().out.strip().endswith("schemas: up to date")
