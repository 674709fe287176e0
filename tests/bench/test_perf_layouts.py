"""One workload at K heap layouts: what is run, and the Counts it gives."""

from __future__ import annotations

from pathlib import Path

from mpforge.bench.perf.layouts import Bench, Counter, pad_line
from mpforge.bench.perf.valgrind import Measured
from mpforge.core.executor import Executor


def fake_counter(calls: list[tuple[str, str]], totals: list[int]) -> Counter:
    def counter(executor: Executor, argv: list[str], *, cwd: Path, out_file: Path, what: str) -> Measured:
        calls.append((argv[0], Path(argv[1]).read_text()))
        return Measured(totals[len(calls) - 1], {"f": totals[len(calls) - 1]})
    return counter


def test_first_pad_twice_then_each_pad_once(tmp_path: Path) -> None:
    binary = tmp_path / "built" / "micropython"
    binary.parent.mkdir()
    binary.write_bytes(b"\x7fELF fake")
    calls: list[tuple[str, str]] = []
    bench = Bench(Executor(), tmp_path / "work", fake_counter(calls, [100, 100, 103, 99]))
    counts, first = bench.measure(binary, "dicts", "print(1)\n", pads=(0, 64, 512))
    assert counts.repeat == (100, 100) and counts.layouts == (100, 103, 99)
    assert first.total == 100
    assert [text for _, text in calls] == [pad_line(0) + "print(1)\n"] * 2 + [
        "_perf_pad = bytearray(64)\nprint(1)\n", "_perf_pad = bytearray(512)\nprint(1)\n"]
    installed = {path for path, _ in calls}
    assert len(installed) == 1 and Path(installed.pop()).read_bytes() == b"\x7fELF fake"


def test_two_builds_get_paths_of_the_same_length(tmp_path: Path) -> None:
    bench = Bench(Executor(), tmp_path / "work")
    one, two = tmp_path / "a" / "micropython", tmp_path / "a-much-longer-folder" / "micropython"
    for path, body in ((one, b"one"), (two, b"two")):
        path.parent.mkdir()
        path.write_bytes(body)
    first, second = bench.install(one), bench.install(two)
    assert first != second and len(str(first)) == len(str(second))


def test_the_debug_file_is_installed_beside_the_binary_even_late(tmp_path: Path) -> None:

    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "micropython").write_bytes(b"stripped")
    bench = Bench(Executor(), tmp_path / "work")
    first = bench.install(dist / "micropython")
    assert not first.with_name("micropython.debug").exists()
    (dist / "micropython.debug").write_bytes(b"symbols")  # a later build of the same bytes has them
    again = bench.install(dist / "micropython")
    assert again == first and again.with_name("micropython.debug").read_bytes() == b"symbols"
