"""bench-gc's guest programs: real files, compiled here, put together without templating."""

from __future__ import annotations

import ast
import builtins
from importlib import resources

import pytest

from mpforge.bench.gc import guest as g
from mpforge.core.errors import MpforgeError

PROGRAMS = resources.files("mpforge.bench.gc").joinpath("programs")

#: names MicroPython 1.8 provides that CPython's builtins lack or that the guest
#: imports from the board's firmware, and the Thumb inline assembler's own words
MICROPYTHON_NAMES = {"const"}
ASSEMBLER_NAMES = {"mov", "movw", "label", "sub", "str", "bne", "loop", "sp", "r0", "r1", "r2"}


def all_programs() -> list[tuple[str, str]]:
    programs = [("scrub", g.scrub_program()), ("calibrate", g.calibration_program())]
    for name, workload in g.WORKLOADS.items():
        for divisor in (*g.DEFAULT_DIVISORS, -2):
            programs.append((f"{name} {g.threshold_label(divisor)}", workload.program(divisor)))
    return programs


def test_every_guest_file_is_shipped_and_compiles() -> None:
    """The files in programs/ are Python: CPython's compile() is the syntax pass for
    MicroPython 1.8, whose grammar is a subset of CPython's (f-strings aside, refused below)."""
    files = sorted(p.name for p in PROGRAMS.iterdir() if p.name.endswith(".py"))
    assert files == ["calibrate.py", "chaos.py", "churn.py", "floats.py", "grow.py", "host_churn.py", "measure.py",
                     "pidigits.py", "prelude.py", "scrub.py"]
    for name in files:
        text = PROGRAMS.joinpath(name).read_text()
        compile(text, name, "exec")
        assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(ast.parse(text))), name
        assert "%(" not in text, f"{name}: a %-format placeholder left"


def defined_and_used(tree: ast.AST) -> tuple[set[str], set[str]]:
    defined: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return defined, used


@pytest.mark.parametrize(("name", "program"), all_programs(), ids=lambda v: v if " " in v else None)
def test_guest_programs_are_whole(name: str, program: str) -> None:
    # the raw REPL would end (Ctrl-D) or leave (Ctrl-A/B/C) half-way through
    assert not any(1 <= b <= 4 for b in program.encode()), name
    tree = ast.parse(program)
    assert not any(isinstance(node, ast.JoinedStr) for node in ast.walk(tree)), name
    # every name the program reads is defined in it (a parameter the joining forgot, a
    # helper the prelude lost), a builtin, or the inline assembler's
    defined, used = defined_and_used(tree)
    unknown = used - defined - set(dir(builtins)) - MICROPYTHON_NAMES - ASSEMBLER_NAMES
    assert unknown == set(), name


def test_parameters_are_const_lines_first() -> None:
    program = g.WORKLOADS["float"].program(3)
    head = program.split("\n", 4)[:4]
    assert head == ["_STACK_SCRUB = const(14336)", "_ROUNDS = const(12)", "_POINTS = const(200)",
                    "_DIVISOR = const(3)"]
    assert "_DIVISOR = const(0)\n" in g.WORKLOADS["float"].program(0)
    assert program.count("_mark(0)") == 1 and program.count("_mark(2)") == 1
    assert program.count("_report('RUN'") == 1
    with pytest.raises(ValueError, match="not a guest parameter"):
        g.assignments({"Bad Name": 1})


def test_parameters_reach_the_workload() -> None:
    """A parameter changes what the program computes (run on CPython: const is int)."""
    def checksum(digits: int) -> int:
        namespace: dict = {"const": int}
        exec(g.assignments({"digits": digits}) + g.WORKLOADS["pidigits"].code, namespace)
        return namespace["work"]()
    assert checksum(10) != checksum(11)


def pi_digits(n: int) -> str:
    """pi's first n digits by Machin's formula, in integers (independent of the guest's spigot)."""
    scale = 10 ** (n + 10)

    def arctan_inv(x: int) -> int:
        total, term, k, sign = 0, scale // x, 1, 1
        while term:
            total += sign * (term // k)
            term //= x * x
            k += 2
            sign = -sign
        return total

    pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return str(pi)[:n]


def test_the_pidigits_workload_computes_pi() -> None:
    namespace: dict = {"const": int}
    exec(g.assignments({"digits": 60}) + g.WORKLOADS["pidigits"].code, namespace)
    checksum = 0
    for digit in pi_digits(60):
        checksum = (checksum * 10 + int(digit)) % 1000003
    assert namespace["work"]() == checksum


def test_the_host_workload_is_the_shipped_file() -> None:
    text = g.host_workload()
    assert "VmHWM" in text and "gc.threshold(threshold)" in text
    compile(text, "host_churn.py", "exec")


def test_thresholds_are_fractions_of_the_heap() -> None:
    assert g.parse_thresholds("off,heap/2,1/3,4,heap/2") == [0, 2, 3, 4]
    assert g.parse_thresholds("-1") == [0]
    assert g.parse_thresholds("") == [0]
    with pytest.raises(MpforgeError, match="not a threshold for the emulated heap: '1M'"):
        g.parse_thresholds("off,1M")
    with pytest.raises(MpforgeError, match="heap/0"):
        g.parse_thresholds("heap/0")


def test_workloads_are_checked_by_name() -> None:
    assert g.parse_workloads("pidigits, churn") == ["pidigits", "churn"]
    with pytest.raises(MpforgeError, match="unknown workload.*fft") as info:
        g.parse_workloads("churn,fft")
    assert "churn, grow, pidigits, float, chaos" in info.value.hint


def test_auto_thresholds_are_negative_divisors() -> None:
    """auto/D is gc.threshold(auto=D): kept apart from heap/D as -D, labelled back."""
    assert g.parse_thresholds("off,heap/4,auto/2,auto/4,auto/2") == [0, 4, -2, -4]
    assert [g.threshold_label(d) for d in (0, 4, -2)] == ["off", "heap/4", "auto/2"]
    for bad in ("auto/1", "auto/0"):
        with pytest.raises(MpforgeError, match="is not a threshold") as info:
            g.parse_thresholds(bad)
        assert "auto/2 or more" in info.value.hint and "\n" not in info.value.message
    with pytest.raises(MpforgeError, match="not a threshold"):
        g.parse_thresholds("auto")
    program = g.WORKLOADS["grow"].program(-2)
    assert "_DIVISOR = const(-2)" in program and "gc.threshold(auto=-_div)" in program
