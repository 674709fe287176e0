"""Firmware for a product (``--app``, ``--board-dir``, C modules): unit tests of
:mod:`mpforge.firmware.app`, and the example app (``tests/fixtures/thermostat``) built through the CLI
on the fixture tree with the host's real compilers.

The fixture tree honours the same make variables as the real ports do with our
patches (``FROZEN_MPY_DIR``, ``MPY_CROSS``, ``BOARD_DIR``, ``EXTRA_MOD_SRC``,
``EXTRA_MOD_NAMES``); its "interpreter" answers ``import NAME`` (a frozen module or a
builtin C module) and ``call MODULE.FUNCTION ARG...``, which runs the example's own C
code. The example running on the real unix port and the emulated pyboard is in
``test_realtree_app.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, Mirror, run_task
from mpforge.core import appfile
from mpforge.core.config import PortDef
from mpforge.core.errors import BuildFailed, ConfigError, UnknownTarget
from mpforge.core.project import Project
from mpforge.firmware import app as app_mod
from mpforge.firmware import selection

EXAMPLE = FIXTURES / "thermostat"
FAKES = Path(__file__).resolve().parents[1] / "fakes"
ARM = shutil.which("arm-none-eabi-gcc") is not None
needs_arm = pytest.mark.skipif(not ARM, reason="needs arm-none-eabi-gcc (apt-get install gcc-arm-none-eabi)")
FROZEN = ["thermostat/__init__.py", "thermostat/control.py", "thermostat/frame.py"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example app, copied to a folder outside the checkout (as a user's own would be)."""
    dest = tmp_path / "work" / "thermostat"
    shutil.copytree(EXAMPLE, dest)
    return dest


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


# --- the app folder ------------------------------------------------------------------

def test_the_example_names_what_it_freezes_its_c_module_and_board(example: Path):
    app = appfile.load_app(example)
    assert app.name == "thermostat"
    assert [f.name for f in app.frozen] == FROZEN  # modules = ["thermostat"]: not selftest.py
    (crc16,) = app.c_modules
    assert crc16.name == "crc16" and crc16.symbol == "mp_module_crc16"
    assert [p.name for p in crc16.sources] == ["crc16.c"]
    assert app.board_dir == example / "boards" / "THERMO_V1"
    assert app.config == example / "mpforge.toml"


def test_without_mpforge_toml_every_py_file_and_package_is_frozen_as_it_is(tmp_path: Path):
    folder = write(tmp_path / "app", {
        "main.py": "", "util.py": "", "pkg/__init__.py": "", "pkg/sub/__init__.py": "",
        "pkg/sub/deep.py": "", "notes/readme.py": "",  # notes/ is no package: left out
        "pkg/__pycache__/x.py": "", ".hidden.py": "", "data.txt": "",
    })
    app = appfile.load_app(folder)
    assert app.name == "app" and app.config is None and app.c_modules == ()
    assert [f.name for f in app.frozen] == ["main.py", "pkg/__init__.py", "pkg/sub/__init__.py",
                                            "pkg/sub/deep.py", "util.py"]


@pytest.mark.parametrize("toml, message, hint", [
    ('c_module = ["x"]\n', "mpforge.toml: unknown key 'c_module'",
     "did you mean 'c_modules'?"),
    ('[make_vars]\nX = 1\n', "mpforge.toml: make_vars.X: expected a string, got 1", "more make variables"),
    ('modules = "main.py"\n', 'mpforge.toml: modules: expected a list of strings, got "main.py"', "what to freeze"),
    ('modules = ["nosuch.py"]\n', "modules: 'nosuch.py' is neither a .py file nor a package folder",
     "relative to the app folder"),
    ('modules = ["lib"]\n', "modules: 'lib' is not a package (no __init__.py)", "__init__.py"),
    ('c_modules = ["cmod/empty"]\n', "C module 'empty' has no C source in",
     "defining mp_module_empty"),
    ('c_modules = ["cmod/nothere"]\n', "C module 'nothere': no folder", "folders of C sources"),
    ('modules = ["main.py", "lib/main.py"]\n', "two files would be frozen as main.py", "only one"),
    ('name = 3\n', "mpforge.toml: name: expected a string of printable characters, got 3", "the app's name"),
    ('name = "a\\nb"\n', 'mpforge.toml: name: expected a string of printable characters, got "a\\nb"',
     "on one line"),
    ('name = "a\\u2028b"\n', 'mpforge.toml: name: expected a string of printable characters', "on one line"),
    ('name = "a\\u0085b"\n', 'mpforge.toml: name: expected a string of printable characters', "on one line"),
    ('name = "a\\rb"\n', 'mpforge.toml: name: expected a string of printable characters', "on one line"),
    ('modules = ["/etc/hostname"]\n', "modules: '/etc/hostname' is outside the app folder", "copy it"),
    ('c_modules = ["../../x"]\n', "c_modules: '../../x' is outside the app folder", "copy it"),
    ('board_dir = "/etc"\n', "board_dir: '/etc' is outside the app folder", "copy it"),
])
def test_mistakes_in_the_app_are_refused_by_name(tmp_path: Path, toml: str, message: str, hint: str):
    folder = write(tmp_path / "app", {"main.py": "", "lib/main.py": "", "mpforge.toml": toml})
    (folder / "cmod" / "empty").mkdir(parents=True)
    with pytest.raises(ConfigError) as err:
        appfile.load_app(folder)
    assert message in err.value.message
    assert hint in err.value.hint


def test_a_file_import_could_not_reach_is_named(tmp_path: Path):
    folder = write(tmp_path / "app", {"set-up.py": ""})
    with pytest.raises(ConfigError, match=r"set-up.py cannot be frozen: 'set-up' is not a Python "
                       "module name"):
        appfile.load_app(folder)


def test_paths_make_cannot_take_are_refused(tmp_path: Path):
    folder = write(tmp_path / "my app", {"main.py": ""})
    with pytest.raises(ConfigError, match="contains a space"):
        appfile.load_app(folder)


# --- the port data -------------------------------------------------------------------

def test_an_unknown_key_in_a_ports_app_table_is_refused(tmp_path: Path):
    port = tmp_path / "unix.toml"
    port.write_text((REPO / "ports" / "unix.toml").read_text().replace(
        'freeze = "mpy"', 'freez = "mpy"'))
    with pytest.raises(ConfigError) as err:
        PortDef.from_file(port)
    assert err.value.message == f"{port}: unknown key 'app.freez'"
    assert err.value.hint == "did you mean 'freeze'?"


def test_a_freeze_kind_the_code_does_not_know_is_refused():
    project = Project(REPO)
    port = replace(project.catalog.port("unix"), app={"freeze": "mpz", "freeze_var": "X"})
    with pytest.raises(ConfigError, match="freeze = 'mpz' is not a way to freeze") as err:
        app_mod.FreezeMethod.of(port)
    assert err.value.hint == "did you mean 'mpy'?"


def test_make_variables_come_from_the_port_data_not_from_port_names(example: Path, tmp_path: Path):
    project = Project(REPO)
    app = appfile.load_app(example)
    unix = replace(project.target("unix"), app=app)
    variables = app_mod.make_vars(unix)
    assert variables["FROZEN_MPY_DIR"] == str(unix.build_dir / "app" / "frozen")
    assert variables["MPY_CROSS"] == str(project.dist_root / "mpy-cross" / "mpy-cross")
    assert variables["EXTRA_MOD_SRC"] == str(example / "cmodules" / "crc16" / "crc16.c")
    assert variables["EXTRA_MOD_NAMES"] == "crc16"
    assert variables["STRIPFLAGS_EXTRA"] == "-K mp_module_crc16"  # unix strips its program
    assert app_mod.needs(unix) == ["mpy-cross"]
    # another port's data, another way: source text, the port's own files frozen too
    teensy = replace(project.target("teensy"), app=app)
    variables = app_mod.make_vars(teensy)
    assert variables["FROZEN_DIR"] == str(teensy.build_dir / "app" / "frozen")
    assert "MPY_CROSS" not in variables and "STRIPFLAGS_EXTRA" not in variables
    assert app_mod.needs(teensy) == []
    # mpy-cross options are the port's, whatever it is called
    flagged = replace(unix, port=replace(unix.port, name="other", app={
        **unix.port.app, "mpy_cross_flags": ["-mcache-lookup-bc", "-mno-unicode"]}))
    assert app_mod.make_vars(flagged)["MPY_CROSS"].endswith("/mpy-cross -mcache-lookup-bc -mno-unicode")
    # the app's own make variables have the last word
    (example / "mpforge.toml").write_text((example / "mpforge.toml").read_text()
                                          + '\n[make_vars]\nEXTRA_MOD_NAMES = "other"\n')
    mine = replace(unix, app=appfile.load_app(example))
    assert app_mod.make_vars(mine)["EXTRA_MOD_NAMES"] == "other"
    assert app_mod.make_vars(project.target("unix")) == {}  # a plain target: nothing added


def test_a_port_that_does_not_say_how_to_freeze_refuses_python_files(example: Path):
    project = Project(REPO)
    with pytest.raises(ConfigError, match="port 'minimal' does not say how to freeze Python modules"):
        selection.resolve_target(project, project.catalog.port("minimal"), app_dir=example)


def test_staging_writes_only_what_changed_and_drops_what_went(example: Path, tmp_path: Path):
    project = Project(REPO, build_root=tmp_path / "build")
    target = replace(project.target("unix"), app=appfile.load_app(example))
    app_mod.stage(target)
    staged = app_mod.staging_dir(target)
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*.py")) == FROZEN
    control = staged / "thermostat" / "control.py"
    os.utime(control, (1, 1))
    frame = staged / "thermostat" / "frame.py"
    (example / "thermostat" / "frame.py").write_text("# changed\n")
    (example / "thermostat" / "control.py").unlink()
    app_mod.stage(replace(target, app=appfile.load_app(example)))
    assert not control.exists()
    assert frame.read_text() == "# changed\n"
    os.utime(frame, (1, 1))
    app_mod.stage(replace(target, app=appfile.load_app(example)))
    assert frame.stat().st_mtime == 1  # unchanged content: left alone, make rebuilds nothing


def test_inputs_separate_what_needs_a_fresh_build_from_what_make_sees(example: Path):
    project = Project(REPO)
    target = replace(project.target("unix"), app=appfile.load_app(example))
    first = app_mod.inputs(target)
    assert first["app"]["frozen"] == FROZEN
    assert first["app_files"]["frozen:thermostat/frame.py"] == sha256(example / "thermostat" / "frame.py")
    (example / "thermostat" / "frame.py").write_text("# changed\n")
    second = app_mod.inputs(replace(target, app=appfile.load_app(example)))
    assert second["app"] == first["app"] and second["app_files"] != first["app_files"]
    (example / "cmodules" / "crc16" / "crc16.h").write_text("/* a header */\n")
    third = app_mod.inputs(replace(target, app=appfile.load_app(example)))
    assert third["app"] != second["app"]  # a header reaches make only through a fresh build
    assert app_mod.inputs(project.target("unix")) == {}


def test_board_folders_are_checked(tmp_path: Path, example: Path):
    project = Project(REPO, tree=tmp_path / "tree")
    (tmp_path / "tree" / "stmhal" / "boards" / "PYBV10").mkdir(parents=True)
    board = example / "boards" / "THERMO_V1"
    target = selection.resolve_target(project, project.catalog.port("stmhal"), board_dir=board)
    assert (target.name, target.board, target.board_dir) == ("stmhal-THERMO_V1", "THERMO_V1", board)
    assert target.board_folder == board
    assert app_mod.make_vars(target) == {"BOARD_DIR": str(board)}
    with pytest.raises(UnknownTarget, match="port 'unix' cannot build a board from a folder outside "
                       "the tree") as err:
        selection.resolve_target(project, project.catalog.port("unix"), board_dir=board)
    assert err.value.hint == "ports that can: stmhal"
    with pytest.raises(ConfigError, match="give one of them"):
        selection.resolve_target(project, project.catalog.port("stmhal"), board="PYBV10", board_dir=board)
    with pytest.raises(ConfigError, match="has no mpconfigboard.h"):
        selection.resolve_target(project, project.catalog.port("stmhal"), board_dir=example / "cmodules")
    same_name = tmp_path / "mine" / "PYBV10"
    shutil.copytree(board, same_name)
    with pytest.raises(ConfigError, match=r"has the name of a board of the tree \(PYBV10\)"):
        selection.resolve_target(project, project.catalog.port("stmhal"), board_dir=same_name)
    # the app's board: for ports that build board folders, unless --board says otherwise
    assert selection.resolve_target(project, project.catalog.port("stmhal"), app_dir=example).board == "THERMO_V1"
    stmhal = project.catalog.port("stmhal")
    assert selection.resolve_target(project, stmhal, "PYBV10", app_dir=example).board_dir is None
    assert selection.resolve_target(project, project.catalog.port("unix"), app_dir=example).board_dir is None


# --- built with the fixture tree ----------------------------------------------------

def build(project: Path, mirror: Mirror, *args: str, env: dict[str, str] | None = None):
    return run_task(project, "build", "--mirror", str(mirror.base), *args, env=env)


def run_fixture(binary: Path, script: str) -> list[str]:
    return subprocess.run([binary], input=script, text=True, capture_output=True,
                          check=True).stdout.splitlines()


def test_the_example_app_on_unix_frozen_modules_and_c_module(fixture_project, fixture_mirror, example):
    result = build(fixture_project, fixture_mirror, "--app", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "needed first: mpy-cross" in result.stdout  # the port's data: freezing takes mpy-cross
    assert "app thermostat: 3 file(s) frozen (mpy), C modules crc16" in result.stdout
    binary = fixture_project / "dist" / "unix" / "micropython"
    out = run_fixture(binary, "import thermostat\nimport crc16\ncall crc16.ccitt '123456789'\n"
                              "import selftest\nsum 2 3\n")
    assert out == [
        "thermostat: frozen thermostat/__init__.py "
        "(fixture-mpy source=thermostat/__init__.py flags=none)",
        "crc16: builtin module: ccitt",
        str(0x29B1),  # the example's C code, run: CRC-16/CCITT of "123456789"
        "ImportError: no module named 'selftest'",  # modules = ["thermostat"] only
        "5",
    ]
    manifest = json.loads((binary.parent / "manifest.json").read_text())
    app = manifest["app"]
    assert (app["name"], app["path"], app["freeze"]) == ("thermostat", str(example), "mpy")
    assert [(f["name"], f["sha256"]) for f in app["frozen"]] == [
        (name, sha256(example / name)) for name in FROZEN]
    assert app["c_modules"] == [{"name": "crc16", "symbol": "mp_module_crc16", "sources": [
        {"name": "crc16.c", "sha256": sha256(example / "cmodules" / "crc16" / "crc16.c")}]}]
    assert manifest["make"][0]["EXTRA_MOD_NAMES"] == "crc16"
    assert (fixture_project / "dist" / "mpy-cross" / "mpy-cross").is_file()
    # built again unchanged: a no-op
    again = build(fixture_project, fixture_mirror, "--app", str(example))
    assert again.returncode == 0 and "unix up to date" in again.stdout


def test_changing_an_app_file_rebuilds_and_a_new_one_starts_afresh(fixture_project, fixture_mirror,
                                                                    example):
    assert build(fixture_project, fixture_mirror, "--app", str(example)).returncode == 0
    binary = fixture_project / "dist" / "unix" / "micropython"
    before = json.loads((binary.parent / "manifest.json").read_text())
    (example / "thermostat" / "control.py").write_text("VERSION = 2\n")
    changed = build(fixture_project, fixture_mirror, "--app", str(example))
    assert changed.returncode == 0, changed.stderr
    assert "unix built" in changed.stdout and "starting a fresh build directory" not in changed.stdout
    after = json.loads((binary.parent / "manifest.json").read_text())
    assert after["artifacts"] != before["artifacts"]
    frozen = {f["name"]: f["sha256"] for f in after["app"]["frozen"]}
    assert frozen["thermostat/control.py"] == sha256(example / "thermostat" / "control.py")
    # a file more: the tree's makefiles would not see it go again, so the build starts afresh
    (example / "thermostat" / "units.py").write_text("C = 1\n")
    added = build(fixture_project, fixture_mirror, "--app", str(example))
    assert "unix: inputs changed: starting a fresh build directory" in added.stdout
    names = [f["name"] for f in json.loads((binary.parent / "manifest.json").read_text())["app"]["frozen"]]
    assert "thermostat/units.py" in names


def test_the_ports_mpy_cross_options_reach_mpy_cross(fixture_project, fixture_mirror, example):
    port = fixture_project / "ports" / "unix.toml"
    port.write_text(port.read_text().replace("mpy_cross_flags = []",
                                             'mpy_cross_flags = ["-mcache-lookup-bc"]'))
    assert build(fixture_project, fixture_mirror, "--app", str(example)).returncode == 0
    out = run_fixture(fixture_project / "dist" / "unix" / "micropython", "import thermostat\n")
    assert out == ["thermostat: frozen thermostat/__init__.py "
                   "(fixture-mpy source=thermostat/__init__.py flags=-mcache-lookup-bc)"]


def test_a_c_module_without_its_source_fails_the_build_in_one_line(fixture_project, fixture_mirror,
                                                                   example):
    (example / "cmodules" / "crc16" / "crc16.c").unlink()
    result = build(fixture_project, fixture_mirror, "--app", str(example))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "C module 'crc16' has no C source in" in line and "mp_module_crc16" in line
    assert not (fixture_project / "dist" / "unix").exists()


def test_a_frozen_file_that_does_not_compile_is_named_with_its_line_before_make(fixture_project,
                                                                               fixture_mirror, example):
    broken = example / "thermostat" / "broken.py"
    broken.write_text("x = 1\ndef settle(\n    pass\n")
    result = build(fixture_project, fixture_mirror, "--app", str(example))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    # the user's file (as mpy-cross was told to name it) and line, not the staged copy nor make's words
    assert f" {broken}:2: SyntaxError: invalid syntax (" in line, line
    assert "make" not in line.split("(")[0] and "app/frozen" not in line
    assert not (fixture_project / "dist" / "unix").exists()
    assert not (fixture_project / "build" / "unix" / "app" / "frozen").exists()  # checked before staging
    broken.write_text("x = 1\ndef settle():\n    pass\n")
    assert build(fixture_project, fixture_mirror, "--app", str(example)).returncode == 0


def test_a_port_freezing_source_text_has_its_files_checked_by_cpython(example: Path):
    project = Project(REPO)
    teensy = project.catalog.port("teensy")
    (example / "thermostat" / "broken.py").write_text("while True\n    pass\n")
    target = replace(project.target("teensy"), app=appfile.load_app(example))
    with pytest.raises(BuildFailed, match=r"broken\.py:1: SyntaxError: "):
        app_mod.check_sources(target)
    assert app_mod.FreezeMethod.of(teensy).kind == "str"


def test_unknown_keys_of_the_app_fail_the_build_by_name(fixture_project, fixture_mirror, example):
    (example / "mpforge.toml").write_text('c_module = ["cmodules/crc16"]\n')
    result = build(fixture_project, fixture_mirror, "--app", str(example))
    assert result.returncode == 1
    assert "mpforge.toml: unknown key 'c_module' (did you mean 'c_modules'?)" \
        in result.stderr
    several = build(fixture_project, fixture_mirror, "--app", str(example), "--port", "unix,stmhal")
    assert several.returncode == 1 and "--app and --board-dir build one target" in several.stderr


def test_an_app_name_with_a_newline_fails_the_build_in_one_line(fixture_project, fixture_mirror, example):
    (example / "mpforge.toml").write_text('name = "thermo\\nstat"\n')
    result = build(fixture_project, fixture_mirror, "--app", str(example))
    assert result.returncode == 1, result.stdout + result.stderr
    said = [line for line in result.stderr.splitlines() if "mpforge.toml" in line]
    assert len(said) == 1 and 'name: expected a string of printable characters, got "thermo\\nstat"' in said[0], \
        result.stderr
    assert "Traceback" not in result.stderr


@needs_arm
def test_a_c_module_a_port_leaves_out_fails_the_build_naming_it(fixture_project, fixture_mirror,
                                                                example):
    """The trap: bare-arm's make ignores the C-module hook, so its firmware links without
    the module. The symbol check (nm) catches it before anything is published."""
    (example / "mpforge.toml").write_text('modules = []\nc_modules = ["cmodules/crc16"]\n')
    result = build(fixture_project, fixture_mirror, "--port", "bare-arm", "--app", str(example))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert ("error C module 'crc16' (cmodules/crc16) is not in the linked firmware.elf: "
            "no mp_module_crc16 in its symbol table") in line
    assert not (fixture_project / "dist" / "bare-arm").exists()


@needs_arm
def test_the_example_board_outside_the_checkout_builds_lists_and_deploys(fixture_project,
                                                                          fixture_mirror, example,
                                                                          tmp_path):
    result = build(fixture_project, fixture_mirror, "--port", "stmhal", "--app", str(example))
    assert result.returncode == 0, result.stdout + result.stderr
    dist = fixture_project / "dist" / "stmhal-THERMO_V1"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert {a["name"] for a in manifest["artifacts"]} == {"firmware.dfu", "firmware.hex", "firmware.elf"}
    assert manifest["board"] == "THERMO_V1"
    board = example / "boards" / "THERMO_V1"
    assert manifest["board_dir"]["path"] == str(board)
    assert {f["name"]: f["sha256"] for f in manifest["board_dir"]["files"]} == {
        p.name: sha256(p) for p in board.iterdir()}
    assert manifest["make"][0]["BOARD_DIR"] == str(board)
    symbols = subprocess.run(["arm-none-eabi-nm", str(dist / "firmware.elf")], text=True,
                             capture_output=True, check=True).stdout
    assert " mp_module_crc16" in symbols and " mp_frozen_mpy_names" in symbols

    listed = build(fixture_project, fixture_mirror, "--port", "stmhal", "--board", "list",
                   "--app", str(example))
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()
            if line.split() and line.split()[0] in ("PYBV10", "PYBV11", "BROKEN", "THERMO_V1")}
    assert set(rows) == {"PYBV10", "PYBV11", "BROKEN", "THERMO_V1"}
    assert "default" in rows["PYBV10"] and "outside the tree" in rows["THERMO_V1"]

    # deploy takes the same options; its dry run checks the DfuSe file against the board
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dfu-util").symlink_to(FAKES / "dfu-util")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DFU_STATE": str(tmp_path)}
    plan = run_task(fixture_project, "deploy", "--dry-run", "--port", "stmhal", "--app", str(example),
                   env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"$ dfu-util -a 0 -d 0483:df11 -s :leave -D {dist / 'firmware.dfu'}" in plan.stdout
    assert "first: build stmhal-THERMO_V1 again if its inputs changed" in plan.stdout
    by_dir = run_task(fixture_project, "deploy", "--dry-run", "--port", "stmhal", "--board-dir",
                     str(board), env=env)
    assert by_dir.returncode == 0, by_dir.stderr
    assert str(dist / "firmware.dfu") in by_dir.stdout
    # a firmware that would write outside the board's flash is refused before any flashing
    (board / "mpconfigboard.mk").write_text("LD_FILE = boards/small.ld\n")
    small = fixture_project / "micropython" / "stmhal" / "boards" / "small.ld"
    small.write_text("MEMORY\n{\n    FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 16\n}\n")
    refused = run_task(fixture_project, "deploy", "--dry-run", "--port", "stmhal", "--board-dir",
                      str(board), env=env)
    assert refused.returncode == 1
    assert "firmware.dfu writes 0x08000000.." in refused.stderr
    assert "outside this board's flash" in refused.stderr
