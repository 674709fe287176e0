"""Places of a labgrid farm as devices (mpforge.device.labgrid).

The URL rules are plain unit tests (the ``labgrid:`` grammar is tests/device/test_spec.py's). The rest runs against a
real labgrid coordinator and exporter (a farm of three fake boards with a QMP power
switch, tests/fakes/qmp_board.py, started once for the module by mpforge.device.farm);
another user is the real ``labgrid-client`` with ``LG_USERNAME=other``. Skipped, with
the reason, only when labgrid or ser2net is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from mpforge.core.errors import FarmError, PlaceBusy, TargetSilent
from mpforge.core.state import deferred_signals
from mpforge.device import farm
from mpforge.device import labgrid as lg
from mpforge.device.transport import RawRepl

FAKES = Path(__file__).resolve().parents[1] / "fakes"
TAGS = "labgrid:board=FAKE"


# --- the URL of a place's serial port (no labgrid needed; the grammar: tests/device/test_spec.py)


def test_a_network_serial_port_is_an_rfc2217_url_with_ign_set_control() -> None:
    assert lg.serial_url("h", 5) == "rfc2217://h:5?ign_set_control"
    assert lg.serial_url("h", 5, "raw") == "socket://h:5"


def test_the_coordinator_is_the_argument_then_lg_coordinator_then_the_local_farm(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LG_COORDINATOR", "lab:1234")
    assert lg.coordinator_address("mine:1") == "mine:1"
    assert lg.coordinator_address(None, tmp_path) == "lab:1234"
    monkeypatch.delenv("LG_COORDINATOR")
    assert lg.coordinator_address(None, tmp_path) == lg.DEFAULT_COORDINATOR  # no farm there


def test_signals_wait_until_the_block_is_done() -> None:
    order: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            order.append("released")  # still reached: the Ctrl-C waits
    assert order == ["released"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- against a real coordinator and exporter ------------------------------------------------


def farm_unavailable() -> str | None:
    """Why the farm tests cannot run here (labgrid or ser2net missing), or None."""
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return "labgrid is not installed (pip install -e '.[farm]')"
    try:
        farm.ser2net_path()
    except Exception:
        return "ser2net is not installed (apt-get install ser2net)"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[farm.FarmState]:
    """Three fake boards with power switches, places pyb-1..3 tagged board=FAKE."""
    missing = farm_unavailable()
    if missing:
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    state = farm.start(root, f"{sys.executable} {FAKES / 'qmp_board.py'} {{qmp}}", 3, tags={"board": "FAKE"})
    try:
        yield state
    finally:
        farm.stop(root)


@pytest.fixture
def places(lab: farm.FarmState, monkeypatch: pytest.MonkeyPatch) -> Iterator[lg.Coordinator]:
    """A session with the lab, this test's identity its own; every place free afterwards."""
    monkeypatch.setenv("LG_USERNAME", "tester")
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    with lg.Coordinator(lab.coordinator) as session:
        yield session
        for name, place in session.places().items():  # what another user still holds
            if place.acquired:
                session.release_place(name, fromuser=place.acquired)


def _other(lab: farm.FarmState, *args: str, check: bool = True) -> None:
    """``labgrid-client`` as another user."""
    client = Path(sys.executable).parent / "labgrid-client"
    env = {**os.environ, "LG_USERNAME": "other", "LG_COORDINATOR": lab.coordinator}
    done = subprocess.run([str(client), *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 or not check, done.stdout + done.stderr


def _holders(session: lg.Coordinator) -> dict[str, str | None]:
    return {name: p.acquired for name, p in session.places().items()}


def _ask(url: str, code: bytes = b"print(6*7)", within: float = 5.0) -> bytes:
    port = serial.serial_for_url(url, 115200, timeout=0)
    try:
        repl = RawRepl(port, silence=2.0)
        repl.wait_for_prompt(within)
        repl.enter()
        out, err = repl.exec(code, 5)
        repl.leave()
        assert not err
        return out
    finally:
        port.close()


def test_a_named_place_is_acquired_served_and_released(lab: farm.FarmState, places: lg.Coordinator) -> None:
    with lg.leased("labgrid:pyb-1", coordinator=lab.coordinator) as lease:
        assert (lease.place, lease.exporter, lease.host) == ("pyb-1", farm.EXPORTER_NAME, "127.0.0.1")
        assert lease.url.startswith("rfc2217://127.0.0.1:") and lease.url.endswith("?ign_set_control")
        assert lease.has_power
        assert _holders(places)["pyb-1"] == places.identity
        assert _ask(lease.url) == b"42\r\n"  # the board, through ser2net
    assert _holders(places)["pyb-1"] is None


def test_tags_give_any_free_matching_place(lab: farm.FarmState, places: lg.Coordinator) -> None:
    _other(lab, "-p", "pyb-1", "acquire")
    with lg.leased(TAGS, coordinator=lab.coordinator) as lease:
        assert lease.place in ("pyb-2", "pyb-3") and lease.tags == {"board": "FAKE"}
    with pytest.raises(FarmError, match="no place at .* is tagged board=PYBV10") as caught:
        places.acquire("labgrid:board=PYBV10")
    assert "board=FAKE" in caught.value.hint  # the tags there are
    holders = _holders(places)
    assert holders["pyb-1"].endswith("/other") and holders["pyb-2"] is None and holders["pyb-3"] is None
    assert places.call(places.session.stub.GetReservations(lg.protocol().GetReservationsRequest())).reservations \
        == []  # the reservation that found the place is gone


def test_a_place_held_by_another_user_is_refused_naming_the_holder(lab: farm.FarmState,
                                                                   places: lg.Coordinator) -> None:
    _other(lab, "-p", "pyb-2", "acquire")
    with pytest.raises(PlaceBusy) as caught:
        with lg.leased("labgrid:pyb-2", coordinator=lab.coordinator):
            pytest.fail("acquired a place someone else holds")
    assert "/other" in caught.value.message and caught.value.holders["pyb-2"].endswith("/other")
    notes: list[str] = []
    started = time.monotonic()
    with pytest.raises(PlaceBusy, match="after waiting 1 s"):
        Coordinator = lg.Coordinator  # a fresh session: its notes are this test's
        with Coordinator(lab.coordinator, notes.append) as session:
            session.acquire("labgrid:pyb-2", wait=1)
    assert 1 <= time.monotonic() - started < 5
    assert any("held by" in n and "waiting up to 1 s" in n for n in notes), notes
    assert _holders(places)["pyb-2"].endswith("/other")  # refusing took nothing from them
    assert places.call(places.session.stub.GetReservations(lg.protocol().GetReservationsRequest())).reservations \
        == []  # the reservation it waited with was cancelled


def test_a_waiting_client_gets_the_place_when_its_holder_releases_it(lab: farm.FarmState,
                                                                     places: lg.Coordinator) -> None:
    _other(lab, "-p", "pyb-3", "acquire")
    client = Path(sys.executable).parent / "labgrid-client"
    env = {**os.environ, "LG_USERNAME": "other", "LG_COORDINATOR": lab.coordinator}
    releaser = subprocess.Popen(["sh", "-c", f"sleep 1; '{client}' -p pyb-3 release"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    notes: list[str] = []
    try:
        with lg.leased("labgrid:pyb-3", coordinator=lab.coordinator, wait=20, note=notes.append) as lease:
            assert lease.place == "pyb-3"
            assert _ask(lease.url, b"print('mine')") == b"mine\r\n"
    finally:
        releaser.wait(30)
    assert any("held by" in n and "/other" in n and "waiting up to 20 s" in n for n in notes), notes
    assert _holders(places)["pyb-3"] is None


def test_the_place_is_released_after_an_exception_and_a_ctrl_c(lab: farm.FarmState, places: lg.Coordinator) -> None:
    for interruption in (RuntimeError("a test crashed"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with lg.leased("labgrid:pyb-1", coordinator=lab.coordinator):
                assert _holders(places)["pyb-1"] == places.identity
                raise interruption
        assert _holders(places)["pyb-1"] is None


def test_many_places_fewer_free_uses_those_there_are_and_says_so(lab: farm.FarmState,
                                                                 places: lg.Coordinator) -> None:
    _other(lab, "-p", "pyb-3", "acquire")
    notes: list[str] = []
    with lg.leased_many(TAGS, 3, coordinator=lab.coordinator, note=notes.append) as leases:
        assert sorted(lease.place for lease in leases) == ["pyb-1", "pyb-2"]
        assert len({lease.url for lease in leases}) == 2
        assert [_ask(lease.url) for lease in leases] == [b"42\r\n"] * 2
    assert any("3 places asked for" in n and "2 free" in n and "pyb-3 held by" in n for n in notes), notes
    holders = _holders(places)
    assert holders["pyb-1"] is None and holders["pyb-2"] is None and holders["pyb-3"].endswith("/other")
    with pytest.raises(PlaceBusy, match="no free place"):  # none free at all: refused, nothing held
        _other(lab, "-p", "pyb-1", "acquire")
        _other(lab, "-p", "pyb-2", "acquire")
        places.acquire_many(TAGS, 2)
    assert places.call(places.session.stub.GetReservations(lg.protocol().GetReservationsRequest())).reservations \
        == []


def test_power_goes_through_the_places_power_port_and_follows_acquisition(lab: farm.FarmState,
                                                                         places: lg.Coordinator) -> None:
    board = next(b for b in lab.boards if b.place == "pyb-2")
    assert board.qmp is not None

    def powered(expected: bool) -> bool:  # the power service follows within ~0.1 s
        deadline = time.monotonic() + 3
        while farm.qmp_running(board.qmp) is not expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return farm.qmp_running(board.qmp) is expected

    assert powered(False)  # a free board is off
    with lg.leased("labgrid:pyb-2", coordinator=lab.coordinator) as lease:
        assert powered(True)
        assert lg.power(lease, "get") is True
        lg.power(lease, "off")
        assert farm.qmp_running(board.qmp) is False
        with pytest.raises(TargetSilent):
            _ask(lease.url, within=1.0)
        lg.power(lease, "cycle", delay=0.1)
        assert farm.qmp_running(board.qmp) is True
        assert _ask(lease.url) == b"42\r\n"
    assert powered(False)  # released: powered off again
    with pytest.raises(FarmError, match="not acquired by you"):
        places.power("pyb-2", "on")


def test_an_unreachable_coordinator_is_one_line(lab: farm.FarmState) -> None:
    with pytest.raises(FarmError) as caught:
        with lg.leased("labgrid:pyb-1", coordinator=f"127.0.0.1:{farm.free_port()}"):
            pass
    assert "cannot reach the labgrid coordinator" in caught.value.message
    assert "LG_COORDINATOR" in caught.value.hint
