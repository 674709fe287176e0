"""``invoke debug``: which way a target is reached, what runs, and that all of it stops.

The emulated way runs against a stand-in for QEMU's gdb stub (tests/fakes/gdbstub_qemu.py),
the probe way against a recording OpenOCD and gdb (tests/fakes/swd_tool.py); the host
way runs the real gdb on the fixture tree's unix program (a real host program built with
-g, stripped, its debug info beside it), when gdb is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import project_for, run_task
from mpforge.core.errors import ConfigError, DeviceError
from mpforge.core.executor import Executor
from mpforge.core.project import Project, Target
from mpforge.device import debug

FAKES = Path(__file__).resolve().parents[1] / "fakes"
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb (apt-get install gdb)")


@pytest.fixture
def project(fixture_project: Path) -> Project:
    return project_for(fixture_project)


def _target(project: Project, port: str, board: str = "", variant: str = "") -> Target:
    port_def = project.catalog.port(port)
    return Target(port_def, board, project.catalog.toolchain_for(port_def), project, variant=variant)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (reaped later by its parent)
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


# --- the way, from the data -------------------------------------------------------------------

def test_the_way_follows_the_ports_data(project):
    stmhal = project.catalog.port("stmhal")
    assert debug.default_board(stmhal) == "PYBV10_QEMU"  # the emulated board: nothing to plug in
    assert debug.default_board(project.catalog.port("teensy")) == ""
    emulated = debug.plan(_target(project, "stmhal", "PYBV10_QEMU", "debug"))
    assert (emulated.way, emulated.spec.gdb) == ("emulated", "gdb-multiarch")
    assert emulated.emulator.startswith("qemu-system-arm ") and "{dist}" in emulated.emulator
    assert emulated.elf() == project.dist_root / "stmhal-PYBV10_QEMU-debug" / "firmware.elf"
    board = debug.plan(_target(project, "stmhal", "PYBV11"))
    assert (board.way, board.server) == ("probe", "openocd")
    assert debug.plan(_target(project, "stmhal", "PYBV11"), "pyocd").server == "pyocd"
    assert debug.plan(_target(project, "teensy")).server == "openocd"
    host = debug.plan(_target(project, "unix"))
    assert (host.way, host.spec.gdb, host.elf().name) == ("host", "gdb", "micropython")


def test_a_port_without_a_debugger_or_a_probe_is_refused_naming_what_to_add(project):
    with pytest.raises(ConfigError, match="port 'minimal' declares no debugger") as none:
        debug.plan(_target(project, "minimal"))
    assert "[debug]" in none.value.hint
    with pytest.raises(ConfigError, match="--probe jlink: not a gdb server mpforge runs"):
        debug.plan(_target(project, "stmhal", "PYBV11"), "jlink")


def test_gdb_reads_the_elf_with_the_sources_mapped_to_the_checkout(project, tmp_path):
    plan = debug.plan(_target(project, "stmhal", "PYBV10_QEMU"))
    session = debug.DebugSession(plan, "target remote /tmp/x/gdb.sock", "/dev/pts/9")
    script = tmp_path / "gc.gdb"
    argv = debug.gdb_argv(project, session, script)
    root = str(project.root)
    assert argv == ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", f"set substitute-path . {root}",
                    "-ex", f"directory {root}", "-ex", f"file {plan.elf()}",
                    "-ex", "target remote /tmp/x/gdb.sock", "-x", str(script)]
    interactive = debug.gdb_argv(project, session)
    assert "-batch" not in interactive and "-x" not in interactive  # the user's ~/.gdbinit is read
    host = debug.gdb_argv(project, debug.DebugSession(debug.plan(_target(project, "unix"))))
    assert host[0] == "gdb" and not any(word.startswith("target ") for word in host)


def test_a_probes_gdb_server_listens_on_this_machine_only(project):
    openocd = debug.server_argv(debug.plan(_target(project, "stmhal", "PYBV11")), 4321, "066DFF")
    assert openocd == ["openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 066DFF",
                       "-f", "target/stm32f4x.cfg", "-c", "bindto 127.0.0.1", "-c", "gdb_port 4321",
                       "-c", "telnet_port disabled", "-c", "tcl_port disabled"]
    pyocd = debug.server_argv(debug.plan(_target(project, "teensy"), "pyocd"), 4321)
    assert pyocd == ["pyocd", "gdbserver", "--no-wait", "-t", "mk20dx256xxx7", "--port", "4321",
                     "--telnet-port", "0"]


# --- sessions: what starts, and that it stops ----------------------------------------------

def _fake_elf(target: Target) -> None:
    target.dist_dir.mkdir(parents=True)
    (target.dist_dir / target.port.debug.elf).write_bytes(b"\x7fELF")


def test_the_emulated_board_runs_halted_with_its_stub_on_a_private_socket(project, tmp_path, monkeypatch):
    state = tmp_path / "qemu"
    state.mkdir()
    monkeypatch.setenv("QEMU_STATE", str(state))
    target = _target(project, "stmhal", "PYBV10_QEMU")
    _fake_elf(target)
    plan = debug.plan(target)
    plan = debug.DebugPlan(target, plan.way, plan.spec,
                           emulator=f"{sys.executable} {FAKES / 'gdbstub_qemu.py'} -serial pty "
                                    "-kernel {dist}/firmware.elf")
    logged: list[str] = []
    with debug.session(project, plan, executor=Executor(log=logged.append)) as session:
        argv = json.loads((state / "argv").read_text())
        pid = int((state / "pid").read_text())
        sock = Path(session.connect.removeprefix("target remote "))
        assert session.connect.startswith("target remote ") and sock.exists()
        assert session.pty.startswith("/dev/pts/") and Path(session.pty).exists()
        assert argv[argv.index("-kernel") + 1] == f"{target.dist_dir}/firmware.elf"
        assert argv[-5:] == ["-chardev", f"socket,path={sock},server=on,wait=off,id=mpforge-gdb",
                             "-gdb", "chardev:mpforge-gdb", "-S"]
        # a session of its own: a Ctrl-C typed at gdb does not reach the emulator
        assert int((state / "sid").read_text()) == pid != os.getsid(0)
        assert logged and logged[0].startswith("$ setsid ")
        assert _alive(pid)
    assert not _alive(pid) and not sock.parent.exists()  # stopped, its folder gone


def test_ctrl_c_inside_the_session_stops_the_emulator_too(project, tmp_path, monkeypatch):
    state = tmp_path / "qemu"
    state.mkdir()
    monkeypatch.setenv("QEMU_STATE", str(state))
    target = _target(project, "stmhal", "PYBV10_QEMU")
    _fake_elf(target)
    plan = debug.DebugPlan(target, "emulated", target.port.debug,
                           emulator=f"{sys.executable} {FAKES / 'gdbstub_qemu.py'} -serial pty")
    with pytest.raises(KeyboardInterrupt), debug.session(project, plan):
        pid = int((state / "pid").read_text())
        raise KeyboardInterrupt
    assert not _alive(pid)


@pytest.fixture
def swd_tools(tmp_path, monkeypatch) -> Path:
    """openocd, pyocd and gdb-multiarch first on PATH as the recording stand-in; its state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "swd-state"
    bin_dir.mkdir()
    state.mkdir()
    for name in ("openocd", "pyocd", "gdb-multiarch"):
        (bin_dir / name).symlink_to(FAKES / "swd_tool.py")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SWD_STATE", str(state))
    return state


def test_the_probes_server_starts_listens_and_stops(project, swd_tools):
    target = _target(project, "stmhal", "PYBV11")
    _fake_elf(target)
    with debug.session(project, debug.plan(target), probe_serial="066DFF") as session:
        (call,) = [json.loads(line) for line in (swd_tools / "calls").read_text().splitlines()]
        port = int(session.connect.rsplit(":", 1)[1])
        assert call[:5] == ["openocd", "-f", "interface/stlink.cfg", "-c", "adapter serial 066DFF"]
        assert f"gdb_port {port}" in call and session.connect.startswith("target extended-remote 127.0.0.1:")
        pid = int((swd_tools / "server.pid").read_text())
        assert _alive(pid)
    assert not _alive(pid)


def test_a_server_that_finds_no_probe_fails_in_one_line_with_its_output(project, swd_tools):
    target = _target(project, "stmhal", "PYBV11")
    _fake_elf(target)
    (swd_tools / "fail").write_text("Error: open failed")
    with pytest.raises(DeviceError) as failed, debug.session(project, debug.plan(target)):
        pass
    assert failed.value.message == "openocd ended before gdb could connect (exit status 1)"
    assert "is the probe connected" in failed.value.hint
    assert "Error: open failed" in failed.value.details
    assert (target.build_dir / "debug-server.log").read_text().count("Error: open failed") == 1


def test_a_target_not_built_is_named(project):
    with pytest.raises(DeviceError, match="firmware.elf is not in dist/stmhal-PYBV11"), \
            debug.session(project, debug.plan(_target(project, "stmhal", "PYBV11"))):
        pass


# --- the task ---------------------------------------------------------------------------------

def test_bad_input_ends_in_one_line(fixture_project, tmp_path):
    no_debugger = run_task(fixture_project, "debug", "--port", "minimal", "--batch", __file__)
    assert no_debugger.returncode == 1
    assert no_debugger.stderr.strip().splitlines()[-1].endswith(
        "port 'minimal' declares no debugger (add [debug] to ports/minimal.toml (gdb, elf), "
        "as stmhal.toml and unix.toml do)")
    no_script = run_task(fixture_project, "debug", "--port", "unix", "--batch", str(tmp_path / "nope.gdb"))
    assert no_script.returncode == 1 and "no gdb script" in no_script.stderr
    no_terminal = run_task(fixture_project, "debug", "--port", "unix")
    assert no_terminal.returncode == 1 and "run it on one, or pass --batch FILE" in no_terminal.stderr
    for result in (no_debugger, no_script, no_terminal):
        assert "Traceback" not in result.stderr


@needs_arm
def test_debug_on_a_board_connects_gdb_to_the_probes_server_and_exits_with_gdbs_status(
        fixture_project, fixture_mirror, tmp_path):
    bin_dir, state = tmp_path / "bin", tmp_path / "swd-state"
    bin_dir.mkdir()
    state.mkdir()
    for name in ("openocd", "gdb-multiarch"):
        (bin_dir / name).symlink_to(FAKES / "swd_tool.py")
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SWD_STATE": str(state)}
    script = tmp_path / "bt.gdb"
    script.write_text("bt\n")
    (state / "gdb-status").write_text("3")
    result = run_task(fixture_project, "debug", "--port", "stmhal", "--board", "PYBV11", "--batch", str(script),
                     "--device", "probe:066DFF", "--mirror", str(fixture_mirror.base), env=env, timeout=300)
    assert result.returncode == 3, result.stderr  # gdb's status
    # how full the board's flash is (the fixture's linker script: FLASH, 1 MiB at 0x08000000)
    assert re.search(r"firmware.elf: flash at 0x08000000: [\d,]+ of 1,048,576 bytes \(\d+\.\d%\)",
                     result.stdout), result.stdout
    assert (state / "connected").read_text().startswith("target extended-remote 127.0.0.1:")
    calls = [json.loads(line) for line in (state / "calls").read_text().splitlines()]
    assert [c[0] for c in calls if c[1:] != ["--version"]] == ["openocd", "gdb-multiarch"]
    gdb = calls[-1]
    assert f"file {fixture_project / 'dist' / 'stmhal-PYBV11' / 'firmware.elf'}" in gdb
    assert gdb[-2:] == ["-x", str(script)]
    assert not _alive(int((state / "server.pid").read_text()))  # the server was stopped


@needs_gdb
def test_gdb_on_the_stripped_unix_program_finds_file_and_line(fixture_project, fixture_mirror, tmp_path):
    """The fixture's unix program (a real one, built with -g) is published stripped with its
    debug file beside it; gdb breaks in gc_collect and the backtrace names the files and lines."""
    built = run_task(fixture_project, "build", "--port", "unix", "--mirror", str(fixture_mirror.base), timeout=600)
    assert built.returncode == 0, built.stderr
    dist = fixture_project / "dist" / "unix"
    sections = subprocess.run(["readelf", "-S", "-W", str(dist / "micropython")], capture_output=True,
                              text=True, check=True).stdout
    assert ".gnu_debuglink" in sections and ".debug_info" not in sections and ".symtab" not in sections
    assert ".debug_info" in subprocess.run(["readelf", "-S", "-W", str(dist / "micropython.debug")],
                                           capture_output=True, text=True, check=True).stdout
    manifest = json.loads((dist / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["micropython", "micropython.debug"]
    commands = tmp_path / "input"
    commands.write_text("alloc 20\n")  # 20 allocations of 100 bytes fill the 1 KiB heap: a collection
    script = tmp_path / "gc.gdb"
    script.write_text(f"break gc_collect\nrun < {commands}\nbt\nlist gc_collect\n")
    result = run_task(fixture_project, "debug", "--port", "unix", "--batch", str(script), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # (the fixture series patches gc.c: gc_collect's first line is 17)
    assert "Breakpoint 1, gc_collect () at ../py/gc.c:17" in result.stdout
    assert "gc_alloc (n=n@entry=100) at ../py/gc.c:25" in result.stdout
    assert "in main (argc=<optimized out>, argv=<optimized out>) at ../py/mini.c:130" in result.stdout
    assert "heap_used = 0;" in result.stdout  # list: the source itself, found in the checkout
    failing = tmp_path / "bad.gdb"
    failing.write_text("list no_such_function_anywhere\n")
    refused = run_task(fixture_project, "debug", "--port", "unix", "--batch", str(failing), timeout=120)
    assert refused.returncode == 1  # gdb's status for a script whose last command failed
