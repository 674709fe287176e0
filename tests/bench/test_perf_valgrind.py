"""Counting instructions under cachegrind: the file format, and a real run repeats exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mpforge.bench.perf.valgrind import Measured, count, parse_output_file, top_functions
from mpforge.core.errors import MpforgeError
from mpforge.core.executor import Executor

RECORDED = """\
desc: I1 cache:
cmd: ./micropython w.py
events: Ir
fl=py/map.c
fn=mp_map_lookup
10 400
11 600
fn=mp_obj_equal
20 50
fl=py/vm.c
fn=mp_execute_bytecode
5 1000
fl=./build/unix/../py/gc.c
fn=???
7 25
summary: 2075
"""


def test_the_output_file_gives_the_total_and_each_function() -> None:
    measured = parse_output_file(RECORDED)
    assert measured.total == 2075
    assert measured.functions == {"mp_map_lookup": 1000, "mp_obj_equal": 50,
                                  "mp_execute_bytecode": 1000, "??? (gc.c)": 25}


def test_a_file_without_summary_is_an_error() -> None:
    with pytest.raises(MpforgeError):
        parse_output_file("events: Ir\nfn=f\n1 2\n")


def test_top_functions_are_the_largest_moves_first() -> None:
    base = Measured(100, {"a": 50, "b": 30, "c": 20})
    head = Measured(130, {"a": 50, "b": 70, "c": 10})
    assert top_functions(base, head) == [{"function": "b", "delta": 40},
                                         {"function": "c", "delta": -10}]


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_a_real_run_counts_the_same_twice(tmp_path: Path) -> None:
    executor = Executor()
    runs = [count(executor, ["/bin/echo", "hello"], cwd=tmp_path, out_file=tmp_path / f"cg.{i}",
                  what="echo") for i in range(2)]
    assert runs[0].total == runs[1].total > 10_000
    assert sum(runs[0].functions.values()) == runs[0].total


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed")
def test_a_program_that_fails_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(MpforgeError, match="exited with status 1"):
        count(Executor(), ["/bin/false"], cwd=tmp_path, out_file=tmp_path / "cg", what="false")
