"""Atomic state files, damaged ones, disk errors, the checkout lock, deferred signals, fault points."""

from __future__ import annotations

import ast
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mpforge.core.environment import FAULT_POINTS
from mpforge.core.errors import LockBusy, StateError
from mpforge.core.lock import CheckoutLock
from mpforge.core.state import (
    deferred_signals,
    disk_error,
    fault_point,
    move_file,
    read_json,
    temp_name,
    write_json,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_write_then_read_round_trips_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "inputs.json"
    write_json(path, {"state": "done", "n": [1, 2]})
    assert read_json(path) == {"state": "done", "n": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["inputs.json"]


@pytest.mark.parametrize("content, why", [
    (b"", "is empty"),
    (b'{"make_key": "ab', "is damaged"),
    (b"\xff\xfe", "is damaged"),
    (b"[1, 2]", "does not hold a JSON dict"),
])
def test_a_damaged_file_reads_as_missing_after_one_warning(tmp_path, content, why):
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    warnings: list[str] = []
    assert read_json(path, warnings.append) is None
    assert len(warnings) == 1 and why in warnings[0] and "treated as missing" in warnings[0]
    assert read_json(tmp_path / "absent.json", warnings.append) is None
    assert len(warnings) == 1  # a missing file is no news


def test_a_writer_killed_before_its_rename_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "stamp.json"
    write_json(path, {"state": "old"})
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        from mpforge.core.state import write_json
        write_json(Path({str(path)!r}), {{"state": "new" * 100000}})
    """)
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MPFORGE_FAULT": "state.write"})
    assert proc.returncode == -signal.SIGKILL
    assert read_json(path) == {"state": "old"}


def fault_points_in_the_code() -> dict[str, list[str]]:
    """Each name passed to ``fault_point("...")`` in the library, with the modules passing it."""
    found: dict[str, list[str]] = {}
    for path in sorted((SRC / "mpforge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) \
                    == "fault_point":
                assert len(node.args) == 1 and isinstance(node.args[0], ast.Constant), \
                    f"{path}:{node.lineno}: a fault point is named by a literal"
                found.setdefault(node.args[0].value, []).append(path.relative_to(SRC).as_posix())
    return found


def test_every_fault_point_in_the_code_is_declared_and_every_declared_one_is_in_the_code():
    in_code = fault_points_in_the_code()
    assert sorted(in_code) == sorted(FAULT_POINTS), "FAULT_POINTS and the fault_point() calls differ"
    for name, modules in in_code.items():  # each declaration names the module that passes it
        declared_in = FAULT_POINTS[name].split(":", 1)[0].replace(".", "/") + ".py"
        assert set(modules) == {declared_in}, (name, modules)


def test_passing_an_undeclared_fault_point_is_refused_even_without_mpforge_fault(monkeypatch):
    monkeypatch.delenv("MPFORGE_FAULT", raising=False)
    with pytest.raises(ValueError, match="'patch.renamed' is not declared"):
        fault_point("patch.renamed")
    fault_point("patch.write")  # a declared one, with no fault asked for: nothing happens


def test_disk_errors_are_one_line_with_a_hint():
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", "/x/dist/unix"), "cannot publish unix")
    assert full.one_line() == ("cannot publish unix: no space left on the device "
                               "(free some space and run the command again (build/ can always be removed))")
    assert isinstance(full, StateError)
    ro = disk_error(OSError(errno.EROFS, "Read-only file system"), "cannot write x")
    assert "read-only file system" in ro.message and ro.hint


def test_write_json_into_a_read_only_folder_is_a_state_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StateError, match="permission denied"):
            write_json(folder / "x.json", {})
    finally:
        folder.chmod(0o700)


def test_move_file_within_a_file_system(tmp_path):
    src, dest = tmp_path / "a", tmp_path / "out" / "b"
    src.write_bytes(b"binary")
    move_file(src, dest)
    assert dest.read_bytes() == b"binary" and not src.exists()


def test_move_file_across_file_systems_copies_then_renames(tmp_path, monkeypatch):
    """EXDEV (build/ on another disk than the tree): copied next to the target, then renamed."""
    src, dest = tmp_path / "micropython", tmp_path / "out" / "micropython"
    src.write_bytes(b"\x7fELF program")
    src.chmod(0o755)
    real_replace = os.replace
    calls = []

    def replace(a, b):
        calls.append((Path(a), Path(b)))
        if Path(a) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    move_file(src, dest)
    assert dest.read_bytes() == b"\x7fELF program" and os.access(dest, os.X_OK)
    assert not src.exists()
    assert calls[-1] == (temp_name(dest), dest)  # the copy landed in one rename


def test_deferred_signals_hold_ctrl_c_until_the_block_ends():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as on a terminal
    order = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_signals():
            signal.raise_signal(signal.SIGINT)
            order.append("finished the block")
    signal.signal(signal.SIGINT, previous)
    assert order == ["finished the block"]


def test_the_lock_is_exclusive_says_who_holds_it_and_dies_with_its_holder(tmp_path):
    (tmp_path / "build").mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time; sys.path.insert(0, {str(SRC)!r})
            from mpforge.core.lock import CheckoutLock
            CheckoutLock(__import__("pathlib").Path({str(tmp_path)!r}), "build --port unix").acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        mine = CheckoutLock(tmp_path, "patch")
        assert f"pid {holder.pid}: build --port unix" in (mine.busy() or "")
        with pytest.raises(LockBusy, match=rf"another mpforge command is using this checkout "
                                           rf"\(pid {holder.pid}: build --port unix\)"):
            mine.acquire(wait=False)
    finally:
        holder.kill()  # SIGKILL: no cleanup at all
        holder.wait()
    mine = CheckoutLock(tmp_path, "patch")
    assert mine.busy() is None
    mine.acquire(wait=False)
    assert json.dumps(mine.holder()) and "patch" in mine.holder()
    mine.release()
