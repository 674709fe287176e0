""":mod:`mpforge.testing.expcache`: CPython's expected outputs computed once.

The integration tests run a stand-in of the tree's runner (it asks
``subprocess.check_output([MICROPY_CPYTHON3, '-B', FILE])`` for each file's expected
output, as ``tests/run-tests`` does) through mpforge's real launcher, with a
``MICROPY_CPYTHON3`` that records every start of CPython: what the cache must save.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpforge.testing import expcache

RUNNER = """\
import os, subprocess, sys
CPYTHON3 = os.getenv("MICROPY_CPYTHON3")
for test in sys.argv[1:]:
    try:
        out = subprocess.check_output([CPYTHON3, "-B", test])
    except subprocess.CalledProcessError:
        out = b"CPYTHON3 CRASH\\n"
    sys.stdout.write(test + ": " + out.decode())
"""

RECORDING_CPYTHON = """\
#!{python}
import os, sys
with open({log!r}, "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
os.execv({python!r}, [{python!r}, *sys.argv[1:]])
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    tests = tmp_path / "tests"
    (tests / "basics").mkdir(parents=True)
    (tests / "run-tests").write_text(RUNNER)
    (tests / "basics" / "add.py").write_text("print(1 + 1)\n")
    (tests / "basics" / "text.py").write_text("print('a' * 3)\n")
    (tests / "basics" / "crash.py").write_text("raise SystemExit(3)\n")
    return tests


def run(suite: Path, tmp_path: Path, *files: str, cache: bool = True, version: str = "3.11.7 test") -> \
        tuple[list[str], list[str]]:
    """Run the stand-in runner through the launcher; (its lines, CPython's recorded starts)."""
    log = tmp_path / "cpython-starts.log"
    log.unlink(missing_ok=True)
    cpython = tmp_path / "recording-python"
    cpython.write_text(RECORDING_CPYTHON.format(python=sys.executable, log=str(log)))
    cpython.chmod(0o755)
    env = {**os.environ, "MICROPY_CPYTHON3": str(cpython)}
    if cache:
        env.update({expcache.CACHE_VARIABLE: str(tmp_path / "cache"), expcache.VERSION_VARIABLE: version})
    out = subprocess.run([sys.executable, "-m", "mpforge.testing.runner_launch", "run-tests", *files],
                         cwd=suite, env=env, capture_output=True, text=True, check=True)
    starts = log.read_text().splitlines() if log.exists() else []
    return out.stdout.splitlines(), starts


def test_the_second_run_starts_cpython_for_nothing_and_gets_the_same_outputs(suite, tmp_path):
    files = ("basics/add.py", "basics/text.py")
    first, started = run(suite, tmp_path, *files)
    assert first == ["basics/add.py: 2", "basics/text.py: aaa"]
    assert started == ["-B basics/add.py", "-B basics/text.py"]
    second, started = run(suite, tmp_path, *files)
    assert second == first and started == []


def test_a_changed_file_a_changed_neighbour_and_a_new_cpython_recompute(suite, tmp_path):
    run(suite, tmp_path, "basics/add.py", "basics/text.py")
    (suite / "basics" / "add.py").write_text("print(2 + 2)\n")
    lines, started = run(suite, tmp_path, "basics/add.py")
    assert lines == ["basics/add.py: 4"] and started == ["-B basics/add.py"]
    # a test may import the modules beside it: a new one there is a new key
    (suite / "basics" / "helper.py").write_text("X = 1\n")
    assert run(suite, tmp_path, "basics/add.py")[1] == ["-B basics/add.py"]
    assert run(suite, tmp_path, "basics/add.py", version="3.12.1 other")[1] == ["-B basics/add.py"]
    assert run(suite, tmp_path, "basics/add.py")[1] == []


def test_a_cpython_crash_is_never_stored(suite, tmp_path):
    for _ in range(2):
        lines, started = run(suite, tmp_path, "basics/crash.py")
        assert lines == ["basics/crash.py: CPYTHON3 CRASH"] and started == ["-B basics/crash.py"]


def test_without_the_cache_every_output_is_computed_and_nothing_is_written(suite, tmp_path):
    for _ in range(2):
        assert run(suite, tmp_path, "basics/add.py", cache=False)[1] == ["-B basics/add.py"]
    assert not (tmp_path / "cache").exists()
    assert not any(p.name.endswith(".exp") for p in suite.rglob("*"))  # the tree is never written


def test_other_calls_pass_through_untouched(tmp_path):
    calls = []

    def real(args, *rest, **kwargs):
        calls.append((args, rest, kwargs))
        return b"real"

    hook = expcache.cached_check_output(expcache.ExpectedOutputs(tmp_path), "py3", "v", real)
    assert hook(["micropython", "x.py"]) == b"real"  # not CPython
    assert hook(["py3", "-c", "print(1)"]) == b"real"  # not a file
    assert hook(["py3", "x.py"], stdin=None) == b"real"  # arguments the cache does not model
    assert len(calls) == 3 and not any(tmp_path.iterdir())


CASES = {
    "plain.py": "print('a', 1 + 1)\nprint('\\u3041')\n",
    "argv.py": "import sys\nprint(sys.argv, __name__, __file__)\n",
    "exits.py": "import sys\nprint('before')\nsys.exit(3)\n",
    "message.py": "import sys\nsys.exit('no such thing')\n",
    "raises.py": "print('half')\nraise ValueError('x')\n",
    "neighbour.py": "import types\nprint(types.VALUE)\n",  # the folder's types.py, as for python3
    "types.py": "VALUE = 'the folder types'\n",
    "stdlib_first.py": "import json\nprint(json.dumps([1]))\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_forked_run_prints_what_python3_dash_b_prints(tmp_path, name):
    folder = tmp_path / "basics"
    folder.mkdir()
    for case, text in CASES.items():
        (folder / case).write_text(text)

    def outcome(run):
        try:
            return 0, run()
        except subprocess.CalledProcessError as exc:
            return exc.returncode, exc.output

    args = [sys.executable, "-B", f"basics/{name}"]
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        real = outcome(lambda: subprocess.check_output(args, stderr=subprocess.DEVNULL))
        forked = outcome(lambda: expcache.run_forked(args))
    finally:
        os.chdir(here)
    assert forked == real
