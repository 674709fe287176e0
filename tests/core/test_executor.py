"""The subprocess choke point, with the Python interpreter as the stand-in tool."""

from __future__ import annotations

import sys

import pytest

from mpforge.core.errors import CommandFailed, MissingTool
from mpforge.core.executor import Executor, quote

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


def test_output_of_a_failed_query_is_empty_not_its_error_text():
    assert Executor().output([PY, "-c", "print('oops'); raise SystemExit(1)"], check=False) == ""


def test_log_file_receives_command_and_output(tmp_path):
    log = tmp_path / "logs" / "build.log"
    Executor().run([PY, "-c", "print('hello')"], log_file=log)
    text = log.read_text()
    assert text.startswith("$ ") and "hello\n" in text


def test_timeout_is_a_failure_that_says_so():
    with pytest.raises(CommandFailed, match="timed out"):
        Executor().run([PY, "-c", "import time; time.sleep(5)"], timeout=0.5)


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
