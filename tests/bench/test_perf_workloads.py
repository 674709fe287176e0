"""The perf workloads: our programs compile, there are enough, and selection is strict."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mpforge.bench.perf.workloads import bench_shim, ours, select
from mpforge.core.errors import MpforgeError


def test_at_least_twenty_programs_of_ours_all_valid_micropython_syntax() -> None:
    programs = ours()
    assert len(programs) >= 20
    for workload in [*programs.values()]:
        tree = compile(workload.source, workload.name, "exec", ast.PyCF_ONLY_AST)
        assert not any(isinstance(n, ast.JoinedStr) for n in ast.walk(tree)), workload.name
        assert "print(" in workload.source, f"{workload.name} shows no result"
    compile(bench_shim(), "bench.py", "exec")


def test_names_and_files_are_selected_in_order(tmp_path: Path) -> None:
    mine = tmp_path / "mine.py"
    mine.write_text("print(1)\n")
    chosen = select(f"floats, {mine},dict_lookup")
    assert [(w.name, w.origin) for w in chosen] == [("floats", "mpforge"), ("mine", "file"),
                                                    ("dict_lookup", "mpforge")]
    assert len(select(None)) == len(ours()) == len(select("all"))


@pytest.mark.parametrize("spec", ["floats,nosuch", "missing.py"])
def test_an_unknown_workload_is_one_error(spec: str) -> None:
    with pytest.raises(MpforgeError, match="--workloads"):
        select(spec)
