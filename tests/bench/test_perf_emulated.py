"""invoke perf on the emulated pyboard: the guest program, reading its count, the counter
(boards faked at the hardware edge: what a board prints), the targets table, the gate."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mpforge.bench.perf import emulated, targets
from mpforge.bench.perf.builds import Built
from mpforge.bench.perf.compare import judge
from mpforge.bench.perf.gate import compare
from mpforge.bench.perf.workloads import Workload, ours, select
from mpforge.core.errors import GuestError, MissingTool, MpforgeError, TargetSilent, UsageError
from mpforge.core.executor import Executor

PYBOARD = targets.TARGETS["stmhal-PYBV10_QEMU"]

# --- the guest program ---------------------------------------------------------------------


def measured_part(program: str) -> str:
    """The program from the pad line on (what follows bench-gc's prelude)."""
    return program[program.index("_perf_pad"):]


def run_on_cpython(program: str, calls: list[str] | None = None
                   ) -> tuple[list[str], dict[str, object]]:
    """Run the measured part with the board's helpers replaced by recorders (into
    ``calls``): the order of calls and what the workload left in its globals."""
    calls = [] if calls is None else calls
    ticks = iter(range(1000, 100000, 500))
    names: dict[str, object] = {
        "_T": [0] * 8,
        "_quiet": lambda: calls.append("quiet"), "_unquiet": lambda: calls.append("unquiet"),
        "_clean": lambda: calls.append("clean"), "_clock_start": lambda: calls.append("clock"),
        "_wrapped": lambda: 0,
        "_report": lambda tag, *values: calls.append(f"{tag} {' '.join(map(str, values))}"),
    }

    def mark(k: int) -> None:
        names["_T"][k] = next(ticks)  # type: ignore[index]
        calls.append(f"mark{k}")
    names["_mark"] = mark
    exec(compile(measured_part(program), "<guest>", "exec"), names)
    return calls, names


def test_the_workload_runs_between_the_two_clock_readings_with_interrupts_masked():
    source = "x = 0\nfor i in range(3):\n    x += i\n_log_x = x\n"
    calls, names = run_on_cpython(emulated.guest_program(source, 2048))
    assert calls == ["quiet", "clean", "clock", "mark0", "mark2", "unquiet", "PERF 500 0"]
    assert names["_log_x"] == 3 and names["_perf_pad"] == bytearray(2048)


def test_a_workload_that_raises_still_unmasks_interrupts():
    calls: list[str] = []
    with pytest.raises(ZeroDivisionError):
        run_on_cpython(emulated.guest_program("y = 1 // 0\n", 0), calls)
    assert calls == ["quiet", "clean", "clock", "mark0", "unquiet"]
    assert "_perf_pad = None" in emulated.guest_program("y = 1 // 0\n", 0)


def test_multi_line_strings_keep_their_text_when_indented():
    source = 'def f():\n    return 1\ns = """a\n  b\nc"""\nt = (1,\n2)\n'
    _, names = run_on_cpython(emulated.guest_program(source, 0))
    assert names["s"] == "a\n  b\nc" and names["t"] == (1, 2)
    assert names["f"]() == 1  # type: ignore[operator]


def test_a_workload_that_does_not_tokenize_is_an_error_naming_it():
    with pytest.raises(MpforgeError, match="mine: not a Python program"):
        emulated.guest_program('s = """never closed\n', 0, "mine")


@pytest.mark.parametrize("name", sorted(set(ours()) - set(PYBOARD.left_out)))
def test_every_workload_of_ours_makes_a_guest_program_that_compiles(name: str):
    program = emulated.guest_program(ours()[name].source, 512, name)
    compile(program, name, "exec")  # MicroPython 1.8's syntax is a subset of CPython's
    assert ours()[name].source.strip().splitlines()[-1] in program


# --- what the board prints -----------------------------------------------------------------


def test_the_count_is_read_from_its_tagged_line():
    assert emulated.parse_counts("123 45\nPERF 987654 0\n", "w") == 987654
    with pytest.raises(GuestError, match="w: ran past the guest clock"):
        emulated.parse_counts("PERF 5 1\n", "w")
    with pytest.raises(GuestError, match="printed no count"):
        emulated.parse_counts("MemoryError:\n", "w")
    with pytest.raises(GuestError, match="printed no count"):
        emulated.parse_counts("PERF 1 0\nPERF 2 0\n", "w")
    with pytest.raises(GuestError, match="did not advance"):
        emulated.parse_counts("PERF 0 0\n", "w")


def test_size_output_is_read():
    out = "   text\t   data\t    bss\t    dec\t    hex\tfilename\n 290132\t    492\t  28380\t 319004\t  4de1c\tf.elf\n"
    assert emulated.parse_size(out) == {"text": 290132, "data": 492, "bss": 28380}
    with pytest.raises(MpforgeError):
        emulated.parse_size("size: f.elf: file format not recognized\n")


# --- the counter, boards faked at the hardware edge ----------------------------------------


class FakeBoard:
    """A board that answers a program with the count its script says: ``counts`` maps
    (firmware folder, pad) to the counts it gives, one per run, in order."""

    def __init__(self, folder: str, counts: dict[tuple[str, int], list[int]], log: list[str],
                 silent_once: bool = False) -> None:
        self.folder, self.counts, self.log, self.silent_once = folder, counts, log, silent_once
        self.closed = False
        self.prescrubbed = False

    def run(self, program: str, timeout: float = 0, scrub: bool = True) -> str:
        assert not self.closed
        if program == emulated.PRESCRUB:
            assert not scrub  # a soft reset of its own, and nothing more
            self.prescrubbed = True
            return ""
        assert scrub and self.prescrubbed, "each measured program follows the prescrub"
        self.prescrubbed = False
        match = re.search(r"^_perf_pad = (?:bytearray\((\d+)\)|None)$", program, re.MULTILINE)
        assert match, "every guest program starts with its pad"
        pad = int(match.group(1) or 0)
        if "raise_here" in program:
            raise GuestError("the guest program raised an exception", "",
                             "Traceback (most recent call last):\nValueError: boom\n")
        if self.silent_once:
            self.silent_once = False
            raise TargetSilent("the board stopped answering")
        self.log.append(f"{self.folder}:{pad}")
        return f"some output\nPERF {self.counts[(self.folder, pad)].pop(0)} 0\n"

    def __exit__(self, *exc: object) -> None:
        self.closed = True


def elf(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name / "firmware.elf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    return path


def fake_bench(tmp_path: Path, counts: dict[tuple[str, int], list[int]], log: list[str],
               started: list[str], silent: bool = False) -> emulated.EmulatedBench:
    def opener(command: str, what: str) -> FakeBoard:
        assert "-icount shift=0" in command and command.endswith(f"{what}/firmware.elf -icount shift=0")
        started.append(what)
        return FakeBoard(what, counts, log, silent_once=silent and len(started) == 1)
    return emulated.EmulatedBench(Executor(), tmp_path / "work", "qemu -kernel {dist}/firmware.elf",
                                  "objcopy", opener=opener)


def test_each_pad_is_counted_and_the_first_twice(tmp_path: Path):
    log: list[str] = []
    started: list[str] = []
    counts = {("a", 0): [1000, 1000], ("a", 512): [1010], ("a", 2048): [990]}
    with fake_bench(tmp_path, counts, log, started) as bench:
        got, measured = bench.measure(elf(tmp_path, "a", b"x"), "w", "print(1)\n", (0, 512, 2048))
        boards = list(bench.boards.values())
    assert (got.repeat, got.layouts) == ((1000, 1000), (1000, 1010, 990))
    assert log == ["a:0", "a:0", "a:512", "a:2048"] and measured.functions == {}
    assert boards[0].closed  # leaving the bench stops the boards it started


def test_two_runs_that_differ_make_the_workload_unstable(tmp_path: Path):
    counts = {("a", 0): [1000, 1003], ("a", 512): [1000]}
    with fake_bench(tmp_path, counts, [], []) as bench:
        got, _ = bench.measure(elf(tmp_path, "a", b"x"), "w", "print(1)\n", (0, 512))
    assert not got.stable
    assert judge("w", got, got).verdict == "unstable"


def test_one_board_per_firmware_kept_between_workloads(tmp_path: Path):
    started: list[str] = []
    counts = {("a", 0): [5, 5, 7, 7], ("b", 0): [6, 6]}
    with fake_bench(tmp_path, counts, [], started) as bench:
        a, b = elf(tmp_path, "a", b"x"), elf(tmp_path, "b", b"y")
        bench.measure(a, "w1", "print(1)\n", (0,))
        bench.measure(b, "w1", "print(1)\n", (0,))
        assert bench.measure(a, "w2", "print(2)\n", (0,))[0].count == 7
    assert started == ["a", "b"]


def test_a_silent_board_is_started_again_and_the_workload_counted_again(tmp_path: Path):
    started: list[str] = []
    notes: list[str] = []
    counts = {("a", 0): [40, 40]}
    bench = fake_bench(tmp_path, counts, [], started, silent=True)
    bench.on_note = notes.append
    with bench:
        got, _ = bench.measure(elf(tmp_path, "a", b"x"), "w", "print(1)\n", (0,))
    assert got.repeat == (40, 40) and started == ["a", "a"] and "w: the board stopped" in notes[0]


def test_a_workload_that_raises_is_one_error_naming_it(tmp_path: Path):
    with fake_bench(tmp_path, {}, [], []) as bench, \
            pytest.raises(GuestError, match=r"^mine: the guest program raised an exception on "
                                            r"the emulated board: ValueError: boom$"):
        bench.measure(elf(tmp_path, "a", b"x"), "mine", "raise_here()\n", (0,))


def test_the_gate_counts_identical_firmwares_once_and_flags_a_slower_one(tmp_path: Path):
    log: list[str] = []
    counts = {("a", 0): [1000, 1000, 1000, 1000], ("a", 512): [1001, 1001],
              ("c", 0): [1100, 1100], ("c", 512): [1101]}
    with fake_bench(tmp_path, counts, log, []) as bench:
        a, same, slow = elf(tmp_path, "a", b"x"), elf(tmp_path, "b", b"x"), elf(tmp_path, "c", b"z")
        work = [Workload("w", "print(1)\n", "mpforge")]
        same_result = compare(bench, Built("base", a), Built("head", same), work, pads=(0, 512))
        slow_result = compare(bench, Built("base", a), Built("head", slow), work, pads=(0, 512))
    assert [(r.delta_pct, r.verdict) for r in same_result.workloads] == [(0.0, "same")]
    assert "b:0" not in log  # byte-identical: counted once
    (row,) = slow_result.workloads
    assert (row.base, row.head, row.verdict, row.top) == (1000, 1100, "regression", [])


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("objcopy") is None,
                    reason="needs gcc and objcopy")
def test_builds_of_the_same_code_in_two_folders_install_as_one_binary(tmp_path: Path):
    binaries = []
    for folder in ("one", "another-folder"):
        src = tmp_path / folder
        src.mkdir()
        (src / "t.c").write_text("int main(void) { return 3; }\n")
        subprocess.run(["gcc", "-g", "-Wl,--build-id=none", "-o", "prog", "t.c"], cwd=src, check=True)
        binaries.append(src / "prog")
    assert binaries[0].read_bytes() != binaries[1].read_bytes()  # their debug info differs
    bench = emulated.EmulatedBench(Executor(), tmp_path / "work", "qemu", "objcopy")
    one, two = (bench.install(b) for b in binaries)
    assert one == two and one.name == "firmware.elf" and one.stat().st_size < binaries[0].stat().st_size
    (tmp_path / "another-folder" / "t.c").write_text("int main(void) { return 4; }\n")
    subprocess.run(["gcc", "-g", "-Wl,--build-id=none", "-o", "prog", "t.c"],
                   cwd=tmp_path / "another-folder", check=True)
    assert bench.install(binaries[1]) != one


# --- the targets table ---------------------------------------------------------------------


def test_ports_and_boards_find_their_target():
    assert targets.find("unix", None).emulator is None
    assert targets.find("stmhal", "PYBV10_QEMU") is PYBOARD == targets.find("stmhal", None)
    assert PYBOARD.emulator == "qemu" and max(PYBOARD.pads) <= 8192 and len(PYBOARD.pads) >= 3
    with pytest.raises(UsageError, match="--port stmhal --board PYBV11 is not supported") as info:
        targets.find("stmhal", "PYBV11")
    assert "--port stmhal --board PYBV10_QEMU" in info.value.hint


def test_the_pyboard_runs_at_least_ten_of_ours_and_says_why_it_skips_the_rest():
    everything = select(None)
    kept = PYBOARD.workloads(everything, named=False)
    assert len(kept) >= 10
    assert {w.name for w in kept} | set(PYBOARD.left_out) == set(ours())
    assert all(reason.strip() for reason in PYBOARD.left_out.values())


def test_naming_a_workload_left_out_gives_the_reason():
    target = targets.PerfTarget("board", "p", left_out={"floats": "single precision here"})
    with pytest.raises(UsageError, match="floats does not run on board: single precision here"):
        target.workloads(select("floats,sets"), named=True)
    assert [w.name for w in target.workloads(select("sets"), named=True)] == ["sets"]
    # a user's file of the same name is the user's: never left out
    mine = Workload("floats", "print(1)\n", "file")
    assert target.workloads([mine], named=True) == [mine]


def test_a_missing_emulator_is_one_missing_tool():
    with pytest.raises(MissingTool, match="perf: no-such-qemu-xyz is not installed") as info:
        emulated.require_tools(["sh", "no-such-qemu-xyz"])
    assert info.value.program == "no-such-qemu-xyz"
    emulated.require_tools(["sh"])


def test_the_prescrub_is_small_next_to_the_scrub_it_precedes():
    # what the prescrub leaves live must lie inside the raw REPL's buffer for bench-gc's
    # scrub program, so that the scrub's own blocks come from memory the prescrub zeroed
    from mpforge.bench.gc.guest import scrub_program

    compile(emulated.PRESCRUB, "prescrub", "exec")
    assert "bytearray(n)" in emulated.PRESCRUB and "gc.collect()" in emulated.PRESCRUB
    assert 8 * len(emulated.PRESCRUB) < len(scrub_program())


class CalibratingBoard:
    """A board whose calibration gives ``ratio`` instructions per clock count."""

    ratio = 1.0
    exited: list[str] = []

    def __init__(self, command: str, **_: object) -> None:
        self.command = command

    def __enter__(self) -> CalibratingBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.exited.append(self.command)

    def calibrate(self) -> float:
        if self.ratio < 0:
            raise GuestError("the calibration printed no timing")
        return self.ratio


@pytest.mark.parametrize("ratio", [1.0, 0.5, -1])
def test_a_board_starts_only_with_a_clock_that_counts_instructions(monkeypatch, ratio: float):
    from mpforge.bench.gc import session

    monkeypatch.setattr(session, "GuestSession", CalibratingBoard)
    monkeypatch.setattr(CalibratingBoard, "ratio", ratio)
    monkeypatch.setattr(CalibratingBoard, "exited", [])
    if ratio == 1.0:
        board, got = session.calibrated_session("qemu a", "fw")
        assert got == 1.0 and isinstance(board, CalibratingBoard) and CalibratingBoard.exited == []
        return
    with pytest.raises(GuestError) as info:
        session.calibrated_session("qemu b", "fw")
    if ratio == 0.5:
        assert "fw: the guest clock counts 2.000 per instruction" in info.value.message
        assert "-icount shift=0" in info.value.hint
    assert CalibratingBoard.exited == ["qemu b"]  # a refused board is stopped


def test_a_board_that_does_not_boot_is_started_again_then_one_error(tmp_path: Path):
    starts: list[str] = []

    def opener(command: str, what: str) -> FakeBoard:
        starts.append(what)
        if len(starts) == 1:
            raise TargetSilent("no REPL prompt within 30 s")
        return FakeBoard(what, {("a", 0): [9, 9]}, [])
    bench = emulated.EmulatedBench(Executor(), tmp_path / "work", "qemu {dist}/firmware.elf", "objcopy",
                                   opener=opener)
    with bench:
        assert bench.measure(elf(tmp_path, "a", b"x"), "w", "print(1)\n", (0,))[0].repeat == (9, 9)

    def never(command: str, what: str) -> FakeBoard:
        raise TargetSilent("no REPL prompt within 30 s")
    with emulated.EmulatedBench(Executor(), tmp_path / "work", "qemu {dist}/firmware.elf", "objcopy",
                                opener=never) as bench, \
            pytest.raises(GuestError, match="w: the emulated board stopped answering 2 times"):
        bench.measure(elf(tmp_path, "b", b"x"), "w", "print(1)\n", (0,))
