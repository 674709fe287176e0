"""The subprocess choke point, with the Python interpreter as the stand-in tool."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from conftest import ended_within
from mpforge.core.errors import CommandFailed, MissingTool
from mpforge.core.executor import Executor, Running, quote

PY = sys.executable


def test_runs_argv_and_captures_merged_output(tmp_path):
    logged: list[str] = []
    ex = Executor(log=logged.append)
    result = ex.run([PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"],
                    cwd=tmp_path)
    assert result.ok and "out" in result.stdout and "err" in result.stdout
    assert logged[0].startswith(f"$ {quote([PY])} -c ") and str(tmp_path) in logged[0]


def test_failure_raises_with_the_tail_of_the_output():
    ex = Executor()
    script = "import sys\nfor i in range(100): print('line', i)\nsys.exit(3)"
    with pytest.raises(CommandFailed) as info:
        ex.run([PY, "-c", script], what="frobnicate", hint="try harder")
    err = info.value
    assert err.returncode == 3
    assert err.message.startswith("frobnicate exited with status 3: ")
    assert err.hint == "try harder"
    assert err.details.splitlines()[-1] == "line 99"
    assert len(err.details.splitlines()) == 20


def test_check_false_returns_the_result():
    result = Executor().run([PY, "-c", "raise SystemExit(2)"], check=False)
    assert not result and result.returncode == 2


def test_missing_program_is_a_missing_tool_error():
    with pytest.raises(MissingTool) as info:
        Executor().run(["no-such-program-xyz", "--version"])
    assert info.value.program == "no-such-program-xyz"
    assert "doctor" in info.value.hint


def test_dry_run_logs_mutating_commands_but_runs_queries(tmp_path):
    logged: list[str] = []
    ex = Executor(log=logged.append, dry_run=True)
    marker = tmp_path / "made"
    result = ex.run([PY, "-c", f"open({str(marker)!r}, 'w')"])
    assert result.ok and result.dry_run and not marker.exists()
    assert ex.output([PY, "-c", "print('asked')"]) == "asked"
    assert len(logged) == 2


def test_a_failed_query_never_reads_as_empty_output():
    failing = [PY, "-c", "print('oops'); raise SystemExit(1)"]
    with pytest.raises(CommandFailed, match="exited with status 1") as info:
        Executor().output(failing)
    assert info.value.details == "oops"  # the error text is the error's, not the answer
    assert Executor().query(failing) is None  # "it failed", never ""
    assert Executor().query([PY, "-c", "pass"]) == ""  # an empty answer is a different thing
    assert Executor().query([PY, "-c", "print(' yes ')"]) == "yes"
    with pytest.raises(CommandFailed, match="timed out after 0.3 s"):
        Executor().output([PY, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert Executor().query([PY, "-c", "import time; time.sleep(5)"], timeout=0.3) is None


def test_log_file_receives_command_and_output(tmp_path):
    log = tmp_path / "logs" / "build.log"
    Executor().run([PY, "-c", "print('hello')"], log_file=log)
    text = log.read_text()
    assert text.startswith("$ ") and "hello\n" in text


# --- a timeout is its own field, whichever way the command ran ----------------------------

SLOW = "import sys, time; print('started', flush=True); time.sleep(30)"
#: the three ways run() runs a command: captured, streamed (on_line), measured
WAYS = {"captured": {}, "streamed": {"on_line": lambda line: None}, "measured": {"measure": True}}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_timeout_is_a_failure_that_says_so(way):
    started = time.monotonic()
    with pytest.raises(CommandFailed, match=r"^python\S* timed out after 0.5 s: ") as info:
        Executor().run([PY, "-c", SLOW], timeout=0.5, **WAYS[way])
    assert time.monotonic() - started < 10  # killed, not waited for
    assert "started" in info.value.details  # what it said before


@pytest.mark.parametrize("way", sorted(WAYS))
def test_timeout_sets_timed_out_and_the_kills_status(way):
    result = Executor().run([PY, "-c", SLOW], timeout=0.5, check=False, **WAYS[way])
    assert result.timed_out and not result.ok
    assert result.returncode == -signal.SIGKILL
    assert "[mpforge: timed out after 0.5 s]" in result.stdout


@pytest.mark.parametrize("way", sorted(WAYS))
def test_a_program_killed_by_something_else_did_not_time_out(way):
    # the same status as a timeout's kill (-9), but no deadline passed: not a timeout
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = Executor().run([PY, "-c", suicide], timeout=30, check=False, **WAYS[way])
    assert result.returncode == -signal.SIGKILL and not result.timed_out
    with pytest.raises(CommandFailed, match="exited with status -9"):
        Executor().run([PY, "-c", suicide], timeout=30, **WAYS[way])


def test_environment_is_merged(tmp_path):
    out = Executor(env={"A_VAR": "1"}).output(
        [PY, "-c", "import os; print(os.environ['A_VAR'], os.environ['B_VAR'])"],
        env={"B_VAR": "2"})
    assert out == "1 2"


def test_measure_reports_the_childs_own_cpu_time():
    # The busy child spins until it has used 0.3 s of CPU itself, however loaded the
    # machine is, so its measured CPU time is at least that; the sleeping child used
    # almost none, and must not be charged the busy child's time (RUSAGE_CHILDREN would).
    spin = "import time\nwhile time.process_time() < 0.3: pass"
    busy = Executor().run([PY, "-c", spin], measure=True)
    idle = Executor().run([PY, "-c", "import time; time.sleep(0.3)"], measure=True)
    assert busy.ok and busy.stdout == ""
    assert busy.cpu_seconds >= 0.3
    assert idle.cpu_seconds < 0.3 <= idle.duration  # sleeping is not CPU time


def test_measure_keeps_exit_code_and_output():
    result = Executor().run([PY, "-c", "print('hi'); raise SystemExit(4)"], measure=True,
                            check=False)
    assert result.returncode == 4 and result.stdout.strip() == "hi"


def test_streamed_lines_split_on_carriage_returns_too():
    seen: list[str] = []
    script = "import sys; sys.stdout.write('a\\r10%\\r60%\\rdone\\nlast'); sys.stdout.flush()"
    result = Executor().run([PY, "-c", script], on_line=seen.append)
    assert seen == ["a", "10%", "60%", "done", "last"]
    assert result.stdout == "a\r10%\r60%\rdone\nlast"


# --- programs that run beside mpforge: start, stop ------------------------------------------

#: a program that ignores SIGTERM, says so once it does, then sleeps
STUBBORN = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring SIGTERM', flush=True); time.sleep(60)")
POLITE = "import time; print('up', flush=True); time.sleep(60)"


def test_start_logs_the_command_and_stop_ends_a_polite_program_with_sigterm(tmp_path):
    logged: list[str] = []
    program = Executor(log=logged.append).start([PY, "-c", POLITE], cwd=tmp_path, stdout="pipe")
    assert isinstance(program, Running) and not program.dry_run and program.pid
    assert logged == [f"$ {quote([PY, '-c', POLITE])} (in {tmp_path})"]
    assert program.stdout is not None and program.stdout.readline() == b"up\n"
    assert program.poll() is None  # running
    assert program.stop(grace=10) == -signal.SIGTERM and not program.killed
    assert program.stdout.closed


def test_stop_kills_a_program_that_ignores_sigterm_after_the_grace():
    program = Executor().start([PY, "-c", STUBBORN], stdout="pipe")
    assert program.stdout is not None and program.stdout.readline() == b"ignoring SIGTERM\n"
    started = time.monotonic()
    assert program.stop(grace=0.5) == -signal.SIGKILL
    assert program.killed
    assert 0.5 <= time.monotonic() - started < 10
    # idempotent: a second stop only says how it ended
    assert program.stop(grace=0.5) == -signal.SIGKILL and program.poll() == -signal.SIGKILL


def test_a_started_program_is_stopped_on_leaving_its_with_block():
    with Executor().start([PY, "-c", POLITE]) as program:
        assert program.poll() is None
    assert program.returncode == -signal.SIGTERM


def test_a_program_that_ended_by_itself_is_only_reaped():
    program = Executor().start([PY, "-c", "raise SystemExit(3)"])
    assert program.wait(30) == 3
    assert program.stop() == 3 and not program.killed


def test_dry_run_start_logs_and_starts_nothing(tmp_path):
    logged: list[str] = []
    marker = tmp_path / "started"
    program = Executor(log=logged.append, dry_run=True).start(
        [PY, "-c", f"open({str(marker)!r}, 'w')"], stdout="pipe")
    assert program.dry_run and program.pid is None and program.stdout is None
    assert program.poll() is None and program.wait() is None and program.stop() is None
    assert len(logged) == 1 and logged[0].startswith(f"$ {quote([PY])} -c ")
    time.sleep(0.3)
    assert not marker.exists()


def test_starting_a_missing_program_is_a_missing_tool_error():
    with pytest.raises(MissingTool) as info:
        Executor().start(["no-such-program-xyz", "-serial", "pty"], hint="install qemu-system-arm")
    assert info.value.program == "no-such-program-xyz"
    assert info.value.hint == "install qemu-system-arm"
    with pytest.raises(MissingTool):  # a path that does not exist: Popen's own error, the same type
        Executor().start(["/no/such/dir/program"])


def test_a_started_programs_output_goes_to_its_log_file(tmp_path):
    log = tmp_path / "logs" / "qemu.log"
    program = Executor().start([PY, "-c", "print('hello from the program', flush=True)"],
                               log_file=log, stdout="log", what="stand-in")
    assert program.wait(30) == 0
    program.stop()
    lines = log.read_text().splitlines()
    assert lines[0] == f"$ {quote([PY, '-c', program.argv[2]])}"
    assert lines[1] == "hello from the program"
    assert lines[2] == "[mpforge: stand-in stopped, status 0]"
    with pytest.raises(ValueError, match="needs a log_file"):
        Executor().start([PY, "-c", "pass"], stdout="log")


def test_a_program_outlives_no_mpforge_killed_by_sigkill(tmp_path):
    """kill -9 of mpforge runs no handler: the kernel's parent-death signal (setpriv) stops
    what it started, so no make or QEMU is left running with the checkout's lock free."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "child.pid"
    script = ("import sys; from mpforge.core.executor import Executor; "
              f"Executor().run([sys.executable, '-c', \"import os,time; open({str(pidfile)!r},'w')"
              ".write(str(os.getpid())); time.sleep(60)\"])")
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert ended_within(child, 5), "the program outlived mpforge's SIGKILL"


def test_signal_all_and_stop_all_reach_every_started_program():
    import sys

    from mpforge.core import executor as ex

    running = [Executor().start([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
    pids = {r.pid for r in running}
    assert pids <= set(ex.stop_all(grace=2))
    assert all(r.poll() is not None for r in running)
    assert ex.stop_all() == []
