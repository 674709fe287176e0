"""Two binaries, every workload: identical binaries are counted once and give 0/same."""

from __future__ import annotations

from pathlib import Path

from mpforge.bench.perf.builds import Built
from mpforge.bench.perf.gate import compare
from mpforge.bench.perf.layouts import Bench
from mpforge.bench.perf.valgrind import Measured
from mpforge.bench.perf.workloads import Workload
from mpforge.core.executor import Executor


def binaries(tmp_path: Path, *bodies: bytes) -> list[Path]:
    paths = []
    for i, body in enumerate(bodies):
        path = tmp_path / f"b{i}" / "micropython"
        path.parent.mkdir()
        path.write_bytes(body)
        paths.append(path)
    return paths


def counter_by_binary(per_binary: dict[bytes, int], runs: list[str]):  # type: ignore[no-untyped-def]
    def counter(executor: Executor, argv: list[str], **_: object) -> Measured:
        runs.append(argv[0])
        total = per_binary[Path(argv[0]).read_bytes()]
        return Measured(total, {"mp_map_lookup": total - 100, "main": 100})
    return counter


def test_identical_binaries_are_counted_once_and_same(tmp_path: Path) -> None:
    one, two = binaries(tmp_path, b"same", b"same")
    runs: list[str] = []
    bench = Bench(Executor(), tmp_path / "work", counter_by_binary({b"same": 5000}, runs))
    result = compare(bench, Built("base", one), Built("head", two), [Workload("w", "print(1)", "mpforge")],
                     pads=(0, 16))
    (row,) = result.workloads
    assert (row.delta_pct, row.verdict) == (0.0, "same") and len(runs) == 3


def test_a_slower_binary_is_a_regression_with_its_function(tmp_path: Path) -> None:
    base, head = binaries(tmp_path, b"fast", b"slow")
    runs: list[str] = []
    bench = Bench(Executor(), tmp_path / "work", counter_by_binary({b"fast": 10_000, b"slow": 10_500}, runs))
    result = compare(bench, Built("pin + series", base, {"text": 10, "data": 2, "bss": 3}), Built("tree", head),
                     [Workload("dicts", "print(1)", "mpforge")], pads=(0, 16))
    (row,) = result.workloads
    assert (row.base, row.head, row.verdict) == (10_000, 10_500, "regression")
    assert row.top == [{"function": "mp_map_lookup", "delta": 500}]
    assert [w.name for w in result.failing()] == ["dicts"] and len(runs) == 6


def test_a_binary_in_two_comparisons_is_counted_once(tmp_path: Path) -> None:
    # --per-patch: (pin, 0001), (0001, 0002); 0001 and 0002 built the same bytes
    pin, one, two = binaries(tmp_path, b"pin", b"one", b"one")
    runs: list[str] = []
    bench = Bench(Executor(), tmp_path / "work", counter_by_binary({b"pin": 9_000, b"one": 9_900}, runs))
    work = [Workload("w", "print(1)", "mpforge")]
    first = compare(bench, Built("pin", pin), Built("0001", one), work, pads=(0, 16))
    second = compare(bench, Built("0001", one), Built("0002", two), work, pads=(0, 16))
    assert first.workloads[0].verdict == "regression"
    assert (second.workloads[0].delta_pct, second.workloads[0].verdict) == (0.0, "same")
    assert len(runs) == 6  # 3 runs per binary content, two contents
