"""Commands on a labgrid farm (``--device labgrid:...``): test sharded over places, a board that
dies mid-run, the firmware check, run/deploy on a place, release on every way out.

Against a real labgrid coordinator and exporter (mpforge.device.farm) serving fake boards with
a QMP power switch (tests/fakes/qmp_board.py) and the fixture tree's tests; another user is the
real ``labgrid-client`` with ``LG_USERNAME=other``. Skipped, with the reason, only when labgrid
or ser2net is missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_labgrid import farm_unavailable

from conftest import run_task
from mpforge.device import farm
from mpforge.device import labgrid as lg

FAKES = Path(__file__).resolve().parents[1] / "fakes"
TAGS = "labgrid:board=FAKE"
FAKE_BANNER_VERSION = "v1.8.2"  # tests/fakes/board.py's banner names it
SHA = "ab" * 32


def _start(root: Path, count: int, env: dict[str, str] | None = None) -> farm.FarmState:
    """A farm of ``count`` fake boards, tagged board=FAKE; ``env`` reaches the boards."""
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return farm.start(root, f"{sys.executable} {FAKES / 'qmp_board.py'} {{qmp}} {{index}}", count,
                          tags={"board": "FAKE"})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[farm.FarmState]:
    missing = farm_unavailable()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    state = _start(root, 3)
    try:
        yield state
    finally:
        farm.stop(root)


def _env(state: farm.FarmState, **more: str) -> dict[str, str]:
    return {"LG_COORDINATOR": state.coordinator, "LG_USERNAME": "tester", "MPFORGE_SILENCE": "2", **more}


def _holders(state: farm.FarmState) -> dict[str, str | None]:
    with lg.Coordinator(state.coordinator) as session:
        return {name: p.acquired for name, p in session.places().items()}


def _other(state: farm.FarmState, *args: str) -> None:
    client = Path(sys.executable).parent / "labgrid-client"
    env = {**os.environ, "LG_USERNAME": "other", "LG_COORDINATOR": state.coordinator}
    done = subprocess.run([str(client), *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def project(fixture_project: Path, fixture_mirror, lab: farm.FarmState) -> Iterator[Path]:
    """The fixture checkout, fetched, with a manifest for the fake boards' firmware; every
    place free afterwards (what another user took, released for them)."""
    assert run_task(fixture_project, "fetch", "--mirror", str(fixture_mirror.base)).returncode == 0
    _manifest(fixture_project, FAKE_BANNER_VERSION)
    yield fixture_project
    with lg.Coordinator(lab.coordinator) as session:
        for name, place in session.places().items():
            if place.acquired:
                session.release_place(name, fromuser=place.acquired)


def _manifest(root: Path, version: str) -> None:
    folder = root / "dist" / "minimal"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({
        "target": "minimal", "artifacts": [{"name": "firmware.dfu", "sha256": SHA, "size": 1}],
        "tree": {"describe": version, "fingerprint": "cd" * 32}}))


def _verdicts(out: Path) -> dict[str, str]:
    return {r["test"]: r["verdict"] for r in json.loads(out.read_text())["results"]}


def test_a_suite_sharded_over_places_gives_the_verdicts_of_one_board_and_names_each(
        project: Path, lab: farm.FarmState, tmp_path: Path) -> None:
    from junitparser import JUnitXml, Properties, Property

    out, junit = tmp_path / "r.json", tmp_path / "j.xml"
    result = run_task(project, "test", "--port", "minimal", "--device", TAGS, "--jobs", "3",
                     "--json", str(out), "--junit", str(junit), env=_env(lab), timeout=300)
    assert result.returncode == 1, result.stderr  # misc/drift.py fails, as on one board
    one = tmp_path / "one.json"
    run_task(project, "test", "--port", "minimal", "--jobs", "1", "--json", str(one),
            "--device", f"execpty:{sys.executable} {FAKES / 'board.py'}")
    assert _verdicts(out) == _verdicts(one) and len(_verdicts(out)) == 9
    data = json.loads(out.read_text())
    assert sorted(b["place"] for b in data["boards"]) == ["pyb-1", "pyb-2", "pyb-3"]
    assert {r["board"] for r in data["results"]} == {"pyb-1", "pyb-2", "pyb-3"}
    assert data["firmware"]["firmware-sha256"] == SHA and data["firmware"]["firmware-version"] == "v1.8.2"
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    props = {p.name: p.value for p in suite.properties()}
    assert props["firmware-sha256"] == SHA and props["tree-fingerprint"] == "cd" * 32
    assert props["board.pyb-1.exporter"] == farm.EXPORTER_NAME and props["board.pyb-2.host"] == "127.0.0.1"
    assert props["board.pyb-3.banner"].startswith("MicroPython v1.8.2")
    for case in suite:
        properties = case.child(Properties)
        named = {p.name: p.value for p in properties.iterchildren(Property)}
        assert named["place"] in ("pyb-1", "pyb-2", "pyb-3") and named["firmware-sha256"] == SHA
    assert set(_holders(lab).values()) == {None}  # all released


def test_with_a_place_held_by_another_user_the_run_uses_the_others_and_says_so(
        project: Path, lab: farm.FarmState, tmp_path: Path) -> None:
    _other(lab, "-p", "pyb-2", "acquire")
    out = tmp_path / "r.json"
    result = run_task(project, "test", "--port", "minimal", "--device", TAGS, "--jobs", "3", "-k", "basics",
                     "--json", str(out), env=_env(lab), timeout=300)
    said = result.stdout + result.stderr
    assert "3 places asked for" in said and "2 free" in said and "pyb-2 held by" in said, said
    assert {r["board"] for r in json.loads(out.read_text())["results"]} == {"pyb-1", "pyb-3"}
    holders = _holders(lab)
    assert holders["pyb-1"] is None and holders["pyb-3"] is None and str(holders["pyb-2"]).endswith("/other")


def test_a_board_with_another_firmware_is_refused_in_one_line_before_any_test(
        project: Path, lab: farm.FarmState) -> None:
    _manifest(project, "v1.9.4-1-gabcdef")
    result = run_task(project, "test", "--port", "minimal", "--device", "labgrid:pyb-1", env=_env(lab))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "pyb-1 runs 'MicroPython v1.8.2 on fake; fake board', not v1.9.4" in errors[0]
    assert "Traceback" not in result.stderr and "pass " not in result.stdout
    assert _holders(lab)["pyb-1"] is None


def test_run_on_a_place_and_a_busy_place_named_by_its_holder(project: Path, lab: farm.FarmState,
                                                              tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("print('from', 6 * 7)\n")
    done = run_task(project, "run", str(script), "--device", "labgrid:pyb-1", env=_env(lab))
    assert done.returncode == 0 and done.stdout == "from 42\n", done.stderr
    assert _holders(lab)["pyb-1"] is None
    _other(lab, "-p", "pyb-1", "acquire")
    busy = run_task(project, "run", str(script), "--device", "labgrid:pyb-1", "--wait", "1", env=_env(lab))
    assert busy.returncode == 1 and "Traceback" not in busy.stderr
    assert "no free place after waiting 1 s" in busy.stderr and "/other" in busy.stderr


def test_deploy_refuses_a_place_without_a_flashing_resource(project: Path, lab: farm.FarmState) -> None:
    result = run_task(project, "deploy", "--port", "stmhal", "--board", "PYBV10", "--device", "labgrid:pyb-3",
                     "--yes", env=_env(lab))
    assert result.returncode == 1
    assert "place pyb-3 has no flashing resource" in result.stderr and "NetworkSerialPort" in result.stderr
    assert _holders(lab)["pyb-3"] is None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_places_are_released_when_the_run_is_interrupted(project: Path, lab: farm.FarmState,
                                                         signum: int) -> None:
    env = {**os.environ, "CI": "1", **_env(lab)}
    env.pop("MPFORGE_ROOT", None)
    runner = subprocess.Popen([sys.executable, "-m", "mpforge", "test", "--port", "minimal", "--device", TAGS,
                               "--jobs", "3"], cwd=project, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert runner.stdout is not None
        for line in runner.stdout:  # the places acquired, their banners checked: the run begins
            if "test minimal:" in line:
                break
        assert sum(h is not None for h in _holders(lab).values()) == 3
        runner.send_signal(signum)
        rest = runner.communicate(timeout=30)[0]
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == (130 if signum == signal.SIGINT else 143), rest
    assert "interrupted" in rest and "no unexpected failure" not in rest  # stopped mid-run
    assert set(_holders(lab).values()) == {None}


# --- boards that stop answering: a farm of their own each -----------------------------------


@pytest.fixture
def failing_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[farm.FarmState]:
    missing = farm_unavailable()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("failing")
    state = _start(root, 2, request.param)
    try:
        yield state
    finally:
        farm.stop(root)


def _run_minimal(project: Path, mirror, lab: farm.FarmState,
                 tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    """``invoke test --port minimal`` sharded over two of ``lab``'s places; (the command, its JSON)."""
    assert run_task(project, "fetch", "--mirror", str(mirror.base)).returncode == 0
    out = tmp_path / "r.json"
    result = run_task(project, "test", "--port", "minimal", "--device", TAGS, "--jobs", "2",
                     "--json", str(out), env=_env(lab), timeout=300)
    return result, json.loads(out.read_text())


@pytest.mark.parametrize("failing_lab", [{"FAKE_HANG": "1:2"}], indirect=True)
def test_a_board_that_hangs_is_power_cycled_its_test_a_crash_and_the_shard_goes_on(
        fixture_project: Path, fixture_mirror, failing_lab: farm.FarmState, tmp_path: Path) -> None:
    result, data = _run_minimal(fixture_project, fixture_mirror, failing_lab, tmp_path)
    tests = [r["test"] for r in data["results"]]
    assert len(tests) == len(set(tests)) == 9  # every test once
    (crash,) = [r for r in data["results"] if r.get("reason", "").startswith("crash")]
    assert crash["board"] == "pyb-1" and "pyb-1 stopped answering" in crash["reason"]
    assert any("pyb-1: power-cycled through labgrid" in n for n in data["notes"]), data["notes"]
    assert sum(r["board"] == "pyb-1" for r in data["results"]) > 2  # it went on after the cycle
    assert not data["aborted"] and result.returncode == 1  # the crash and misc/drift.py fail
    assert set(_holders(failing_lab).values()) == {None}


@pytest.mark.parametrize("failing_lab", [{"FAKE_DEAD": "1:1"}], indirect=True)
def test_a_board_that_does_not_come_back_is_dropped_and_its_tests_move(
        fixture_project: Path, fixture_mirror, failing_lab: farm.FarmState, tmp_path: Path) -> None:
    result, data = _run_minimal(fixture_project, fixture_mirror, failing_lab, tmp_path)
    tests = [r["test"] for r in data["results"]]
    assert len(tests) == len(set(tests)) == 9, tests
    crashes = [r for r in data["results"] if r.get("reason", "").startswith("crash")]
    assert [c["board"] for c in crashes] == ["pyb-1"]
    assert any("pyb-1 dropped" in n for n in data["notes"]) and any("moved to pyb-2" in n for n in data["notes"])
    assert not data["aborted"] and result.returncode == 1
    assert set(_holders(failing_lab).values()) == {None}


def test_the_farms_ser2net_sends_without_nagle(lab: farm.FarmState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_USERNAME", "tester")
    with lg.leased("labgrid:pyb-2", coordinator=lab.coordinator):
        commands = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                argv = cmdline.read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"ser2net") and any(b"accepter" in a for a in argv):
                commands.append(b" ".join(argv).decode())
    assert commands and all("tcp(nodelay)," in c for c in commands), commands
