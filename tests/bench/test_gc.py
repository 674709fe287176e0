"""bench-gc on the emulated board: the guest programs, reading what the guest and QEMU
say, folding runs into cells, the targets, tables and plot, the session protocol."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, project_for
from mpforge.bench import gc as g
from mpforge.cli.render import bench as render_bench
from mpforge.core.errors import MpforgeError

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"


# --- the guest programs ---------------------------------------------------------------


def all_programs() -> list[tuple[str, str]]:
    programs = [("scrub", g.scrub_program()), ("calibrate", g.prelude() + g.CALIBRATE)]
    for name, workload in g.WORKLOADS.items():
        for divisor in g.DEFAULT_DIVISORS:
            programs.append((f"{name} {g.threshold_label(divisor)}", workload.program(divisor)))
    return programs


@pytest.mark.parametrize(("name", "program"), all_programs(), ids=lambda v: v if " " in v else None)
def test_guest_programs_can_travel_over_the_raw_repl(name, program):
    # the raw REPL would end (Ctrl-D) or leave (Ctrl-A/B/C) half-way through
    assert not any(1 <= b <= 4 for b in program.encode()), name
    # MicroPython 1.8 parses it: plain Python syntax, no f-strings (1.8 has none)
    tree = ast.parse(program)
    assert not any(isinstance(node, ast.JoinedStr) for node in ast.walk(tree)), name
    assert "%(" not in program  # every placeholder filled in


def test_each_program_measures_once_and_reports_once():
    program = g.WORKLOADS["float"].program(3)
    assert program.count("_mark(0)") == 1 and program.count("_mark(2)") == 1
    assert program.count("_report('RUN'") == 1
    assert "gc.threshold(_heap // _div)" in program and "_div = 3\n" in program
    assert "_div = 0\n" in g.WORKLOADS["float"].program(0)


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


def test_the_pidigits_workload_computes_pi():
    workload = g.WORKLOADS["pidigits"]
    namespace: dict = {}
    exec(workload.code % {"digits": 60}, namespace)
    checksum = 0
    for digit in pi_digits(60):
        checksum = (checksum * 10 + int(digit)) % 1000003
    assert namespace["work"]() == checksum


# --- options ---------------------------------------------------------------------------


def test_thresholds_are_fractions_of_the_heap():
    assert g.parse_thresholds("off,heap/2,1/3,4,heap/2") == [0, 2, 3, 4]
    assert g.parse_thresholds("-1") == [0]
    assert g.parse_thresholds("") == [0]
    with pytest.raises(MpforgeError, match="not a threshold for the emulated heap: '1M'"):
        g.parse_thresholds("off,1M")
    with pytest.raises(MpforgeError, match="heap/0"):
        g.parse_thresholds("heap/0")


def test_workloads_are_checked_by_name():
    assert g.parse_workloads("pidigits, churn") == ["pidigits", "churn"]
    with pytest.raises(MpforgeError, match="unknown workload.*fft") as info:
        g.parse_workloads("churn,fft")
    assert "churn, pidigits, float, chaos" in info.value.hint


def test_icount_is_added_once():
    assert g.icount_command("qemu-system-arm -M x") == "qemu-system-arm -M x -icount shift=0"
    assert g.icount_command("qemu -icount shift=2 -M x") == "qemu -icount shift=2 -M x"


# --- what the guest says -------------------------------------------------------------------


def test_calibration_gives_instructions_per_count():
    assert g.parse_calibration("CAL 1000000 2001949 0\nCAL 3000000 6001949 0\n") == 1.0
    # a clock on wall time (no -icount) need not advance with the loop
    with pytest.raises(g.GuestError, match="does not follow its instructions") as info:
        g.parse_calibration("CAL 1000000 900 0\nCAL 3000000 800 0\n")
    assert "-icount shift=0" in info.value.hint
    with pytest.raises(g.GuestError, match="printed no timing"):
        g.parse_calibration("Traceback ...\n")


MEM_INFO = ("stack: 328 out of 15360\nGC: total: 102720, used: 22304, free: 80416\n"
            " No. of 1-blocks: 93, 2-blocks: 8, max blk sz: 209, max free sz: {}\n")


def churn_output(largest: list[int], final: int = 4092) -> str:
    text = ""
    for i, blocks in enumerate(largest):
        text += f"ROUND {i} {i} {90000 - i}\n" + MEM_INFO.format(blocks)
    text += "CHURN 102720 41088 2 1500\n"
    text += "RUN 102720 34240 95456 31405 60000000 0\n" + MEM_INFO.format(final)
    return text


def test_a_run_is_read_with_its_rounds():
    outcome = g.parse_run(churn_output([3000, 2000, 2500]))
    assert (outcome.heap, outcome.threshold, outcome.free_at_start) == (102720, 34240, 95456)
    assert (outcome.checksum, outcome.counts) == (31405, 60000000)
    assert outcome.rounds == [(90000, 48000), (89999, 32000), (89998, 40000)]
    assert (outcome.big_size, outcome.big_ok, outcome.paused_counts) == (41088, 2, 1500)
    assert outcome.max_free_end == 4092 * 16


def test_unreadable_runs_are_errors():
    with pytest.raises(g.GuestError, match="no result"):
        g.parse_run("MemoryError\n")
    with pytest.raises(g.GuestError, match="2\\*\\*30"):
        g.parse_run("RUN 102720 -1 95456 1 60000000 1\n")
    with pytest.raises(g.GuestError, match="no heap figures"):
        g.parse_run("ROUND 0 0 9000\nRUN 102720 -1 95456 1 6 0\n" + MEM_INFO.format(1))
    with pytest.raises(g.GuestError, match="unreadable RUN line"):
        g.parse_run("RUN 102720 x\n")


# --- what QEMU traces ----------------------------------------------------------------------


NM = """\
08020318 T gc_collect_start
08037175 t gc_isenabled
0805c0d4 T gc_isenabled_obj
"""


def test_probes_come_from_the_symbol_table():
    probes = g.find_probes(NM)
    assert probes == g.Probes(0x08020318, 0x08037174)  # the Thumb bit cleared
    assert "-dfilter 0x8020318+2,0x8037174+2" in probes.qemu_args(Path("t.log"))
    assert g.find_probes("08020318 T gc_collect_start\n") is None


def trace(pc: int) -> str:
    return f"Trace 0: 0x7f3aec1533c0 [00800408/{pc:08x}/00000010/ff020200] name\n"


def test_trace_lines_become_events():
    probes = g.Probes(0x08020318, 0x08037174)
    log = (trace(0x08037174) + trace(0x08020318) + trace(0x08000000)
           + trace(0x08020318)
           + "Stopped execution of TB chain before 0x7f95ec261900 [08020318] gc_collect_start\n"
           + trace(0x08020318) + trace(0x08037174))
    # the block stopped before its first instruction did not run: it was entered again
    assert g.trace_events(log, probes) == "MCCM"


def test_collections_are_counted_between_the_markers():
    assert g.count_collections("CCMCCCM") == 3  # before the first marker: not the workload's
    assert g.count_collections("MCMCCMCM") == 2  # M..M inside: a measurement, left out
    assert g.count_collections("MM") == 0
    with pytest.raises(g.GuestError, match="3 markers"):
        g.count_collections("MCMCM")


# --- runs into cells, cells into figures ---------------------------------------------------


def outcome(counts: int, checksum: int = 7, threshold: int = 34240, collections: int | None = 5,
            rounds: list[tuple[int, int]] | None = None) -> g.Outcome:
    o = g.Outcome(102720, threshold, 95000, checksum, counts, 4000, collections=collections)
    if rounds:
        o.rounds, o.big_ok, o.big_size, o.paused_counts = rounds, 1, 41088, 100
    return o


VARIANT = g.Variant("patched", "ours", Path("firmware.elf"))


def test_runs_fold_into_a_cell():
    cell = g.make_cell(VARIANT, g.WORKLOADS["pidigits"], 3, [outcome(1000), outcome(1002)])
    assert (cell.instructions, cell.runs, cell.threshold, cell.collections) == (1001, [1000, 1002],
                                                                               34240, 5)
    assert not cell.deterministic and cell.spread == pytest.approx(0.002)
    assert cell.label == "heap/3"
    churn = g.make_cell(VARIANT, g.WORKLOADS["churn"], 2,
                        [outcome(600, rounds=[(80000, 30000), (81000, 20000), (80500, 25000)])])
    assert churn.instructions == 500  # the measurements inside it are left out
    assert (churn.largest_free_min, churn.largest_free_median) == (20000, 25000)
    assert churn.live_median == 102720 - 80500
    assert (churn.big_ok, churn.big_rounds, churn.big_size) == (1, 3, 41088)


def test_runs_that_disagree_are_not_folded():
    with pytest.raises(g.GuestError, match="different results"):
        g.make_cell(VARIANT, g.WORKLOADS["float"], 0, [outcome(1, checksum=1), outcome(1, checksum=2)])
    with pytest.raises(g.GuestError, match="did not take"):
        g.make_cell(VARIANT, g.WORKLOADS["float"], 2, [outcome(1, threshold=-2)])
    varied = g.make_cell(VARIANT, g.WORKLOADS["float"], 0, [outcome(1, collections=5),
                                                             outcome(1, collections=6)])
    assert varied.collections is None


def cell(variant: str, workload: str, divisor: int, instructions: int, largest: int | None = None,
         collections: int | None = 10) -> g.Cell:
    c = g.Cell(variant, workload, divisor, 102720 // divisor if divisor else -1, 102720,
               instructions, [instructions, instructions], 1, collections=collections)
    if largest is not None:
        c.largest_free_min = c.largest_free_median = largest
        c.big_ok, c.big_rounds, c.live_median = 3, 12, 19000
    return c


def sample_report() -> g.EmuReport:
    report = g.EmuReport(repeat=2)
    report.variants = [g.Variant("patched", "ours", Path("a")),
                       g.Variant("unpatched", "pin", Path("b")),
                       g.Variant("upstream", "reference", Path("c"), reference=True)]
    report.cells = [cell("patched", "churn", 0, 100, largest=10000),
                    cell("patched", "churn", 2, 110, largest=45000),
                    cell("patched", "pidigits", 0, 1000), cell("patched", "pidigits", 3, 1100),
                    cell("unpatched", "pidigits", 0, 990),
                    cell("upstream", "pidigits", 0, 1010), cell("upstream", "pidigits", 3, 1300)]
    return report


def test_targets_and_costs():
    report = sample_report()
    assert report.cost(report.cell("patched", "pidigits", 3)) == pytest.approx(0.10)
    assert report.cost(report.cell("unpatched", "pidigits", 0)) == 0
    assert report.cost(cell("patched", "float", 3, 5)) is None  # no threshold-off cell
    assert [(name.split(",")[0], value, ok, note) for name, value, _, ok, note in
            g.check_targets(report)] == [
        ("largest free block after churn", round(45000 / 102720, 3), True, "threshold off: 9.7%"),
        ("pidigits instructions", 0.1, True, "")]
    report.cells[1].largest_free_min = 30000
    assert [ok for *_, ok, _ in g.check_targets(report)] == [False, True]
    assert g.check_targets(g.EmuReport()) == []


def test_tables_show_every_firmware():
    report = sample_report()
    frag = render_bench.fragmentation_rows(report)
    assert frag[0][:2] == ("patched", "off") and frag[1][1] == "heap/2 = 51,360 B"
    assert frag[1][3] == "43.9 KiB (44%)" and frag[1][5] == "3/12" and frag[1][7] == "+10.0%"
    rows = {(r[0], r[1]): r[2:] for r in render_bench.cost_rows(report)}
    assert rows[("pidigits", "heap/3")] == ("0.00 M (+10.0%) 10 GC", "", "0.00 M (+28.7%) 10 GC")
    assert rows[("pidigits", "off")][1] == "0.00 M 10 GC"
    data = report.as_dict()
    assert data["cells"][3]["cost"] == pytest.approx(0.10) and data["deterministic"] is True


def test_the_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "gc.png"
    render_bench.write_plot(sample_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the session protocol, on the fake board ---------------------------------------------------


def test_a_session_runs_programs_after_a_soft_reset():
    with g.GuestSession(f"{sys.executable} {FAKE}", silence=5) as session:
        assert session.run("print('RUN', 1 + 1)\n", scrub=False) == "RUN 2\n"
        with pytest.raises(g.GuestError, match="raised an exception") as info:
            session.run("raise ValueError('boom')\n", scrub=False)
        assert "ValueError" in info.value.details
        # the board is still usable afterwards
        assert session.run("print('again')\n", scrub=False) == "again\n"


# --- the firmwares ------------------------------------------------------------------------------


def test_the_unpatched_series_leaves_out_only_the_feature(fixture_project):
    project = project_for(fixture_project)
    names = [p.name for p in g.series_without(project, "gc-threshold.patch")]
    assert names == ["0001-gc-threshold-decl.patch"]
    with pytest.raises(MpforgeError, match="exactly one patch"):
        g.series_without(project, "gc-threshold")  # both patch names contain it
    with pytest.raises(MpforgeError, match="matches: none"):
        g.series_without(project, "nope")


def test_fixture_series_is_what_the_tests_above_assume():
    assert (FIXTURES / "patches" / "0001-gc-threshold-decl.patch").is_file()


def test_the_task_defaults_are_the_module_defaults():
    import inspect

    from mpforge.cli.tasks import bench_gc

    defaults = {name: p.default for name, p in inspect.signature(bench_gc.body).parameters.items()}
    assert defaults["workloads"] == ",".join(g.DEFAULT_WORKLOADS)
    assert defaults["upstream"] == g.UPSTREAM_COMMIT
    assert g.parse_thresholds("off,heap/2,heap/3,heap/4,heap/8") == list(g.DEFAULT_DIVISORS)
