"""bench-gc on the emulated board: reading what the guest and QEMU say, folding runs into
cells, the targets, tables and plot, the session protocol and its sender."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpforge.bench.gc import guest, results, session, trace, variants
from mpforge.cli.render import bench as render_bench
from mpforge.core.errors import GuestError

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "board.py"


def test_icount_is_added_once():
    assert session.icount_command("qemu-system-arm -M x") == "qemu-system-arm -M x -icount shift=0"
    assert session.icount_command("qemu -icount shift=2 -M x") == "qemu -icount shift=2 -M x"


# --- what the guest says -------------------------------------------------------------------


def test_calibration_gives_instructions_per_count():
    assert trace.parse_calibration("CAL 1000000 2001949 0\nCAL 3000000 6001949 0\n") == 1.0
    # a clock on wall time (no -icount) need not advance with the loop
    with pytest.raises(GuestError, match="does not follow its instructions") as info:
        trace.parse_calibration("CAL 1000000 900 0\nCAL 3000000 800 0\n")
    assert "-icount shift=0" in info.value.hint
    with pytest.raises(GuestError, match="printed no timing"):
        trace.parse_calibration("Traceback ...\n")


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
    outcome = trace.parse_run(churn_output([3000, 2000, 2500]))
    assert (outcome.heap, outcome.threshold, outcome.free_at_start) == (102720, 34240, 95456)
    assert (outcome.checksum, outcome.counts) == (31405, 60000000)
    assert outcome.rounds == [(90000, 48000), (89999, 32000), (89998, 40000)]
    assert (outcome.big_size, outcome.big_ok, outcome.paused_counts) == (41088, 2, 1500)
    assert outcome.max_free_end == 4092 * 16


def test_unreadable_runs_are_errors():
    with pytest.raises(GuestError, match="no result"):
        trace.parse_run("MemoryError\n")
    with pytest.raises(GuestError, match="2\\*\\*30"):
        trace.parse_run("RUN 102720 -1 95456 1 60000000 1\n")
    with pytest.raises(GuestError, match="no heap figures"):
        trace.parse_run("ROUND 0 0 9000\nRUN 102720 -1 95456 1 6 0\n" + MEM_INFO.format(1))
    with pytest.raises(GuestError, match="unreadable RUN line"):
        trace.parse_run("RUN 102720 x\n")


# --- what QEMU traces ----------------------------------------------------------------------


NM = """\
08020318 T gc_collect_start
08037175 t gc_isenabled
0805c0d4 T gc_isenabled_obj
"""


def test_probes_come_from_the_symbol_table():
    probes = trace.find_probes(NM)
    assert probes == trace.Probes(0x08020318, 0x08037174)  # the Thumb bit cleared
    assert "-dfilter 0x8020318+2,0x8037174+2" in probes.qemu_args(Path("t.log"))
    assert trace.find_probes("08020318 T gc_collect_start\n") is None


def trace_line(pc: int) -> str:
    return f"Trace 0: 0x7f3aec1533c0 [00800408/{pc:08x}/00000010/ff020200] name\n"


def test_trace_lines_become_events():
    probes = trace.Probes(0x08020318, 0x08037174)
    log = (trace_line(0x08037174) + trace_line(0x08020318) + trace_line(0x08000000)
           + trace_line(0x08020318)
           + "Stopped execution of TB chain before 0x7f95ec261900 [08020318] gc_collect_start\n"
           + trace_line(0x08020318) + trace_line(0x08037174))
    # the block stopped before its first instruction did not run: it was entered again
    assert trace.trace_events(log, probes) == "MCCM"


def test_collections_are_counted_between_the_markers():
    assert trace.count_collections("CCMCCCM") == 3  # before the first marker: not the workload's
    assert trace.count_collections("MCMCCMCM") == 2  # M..M inside: a measurement, left out
    assert trace.count_collections("MM") == 0
    with pytest.raises(GuestError, match="3 markers"):
        trace.count_collections("MCMCM")


# --- runs into cells, cells into figures ---------------------------------------------------


def outcome(counts: int, checksum: int = 7, threshold: int = 34240, collections: int | None = 5,
            rounds: list[tuple[int, int]] | None = None) -> trace.Outcome:
    o = trace.Outcome(102720, threshold, 95000, checksum, counts, 4000, collections=collections)
    if rounds:
        o.rounds, o.big_ok, o.big_size, o.paused_counts = rounds, 1, 41088, 100
    return o


VARIANT = results.Variant("patched", "ours", Path("firmware.elf"))


def test_runs_fold_into_a_cell():
    cell = results.make_cell(VARIANT, guest.WORKLOADS["pidigits"], 3, [outcome(1000), outcome(1002)])
    assert (cell.instructions, cell.runs, cell.threshold, cell.collections) == (1001, [1000, 1002],
                                                                               34240, 5)
    assert not cell.deterministic and cell.spread == pytest.approx(0.002)
    assert cell.label == "heap/3"
    churn = results.make_cell(VARIANT, guest.WORKLOADS["churn"], 2,
                        [outcome(600, rounds=[(80000, 30000), (81000, 20000), (80500, 25000)])])
    assert churn.instructions == 500  # the measurements inside it are left out
    assert (churn.largest_free_min, churn.largest_free_median) == (20000, 25000)
    assert churn.live_median == 102720 - 80500
    assert (churn.big_ok, churn.big_rounds, churn.big_size) == (1, 3, 41088)


def test_runs_that_disagree_are_not_folded():
    with pytest.raises(GuestError, match="different results"):
        results.make_cell(VARIANT, guest.WORKLOADS["float"], 0, [outcome(1, checksum=1), outcome(1, checksum=2)])
    with pytest.raises(GuestError, match="did not take"):
        results.make_cell(VARIANT, guest.WORKLOADS["float"], 2, [outcome(1, threshold=-2)])
    varied = results.make_cell(VARIANT, guest.WORKLOADS["float"], 0, [outcome(1, collections=5),
                                                             outcome(1, collections=6)])
    assert varied.collections is None


def cell(variant: str, workload: str, divisor: int, instructions: int, largest: int | None = None,
         collections: int | None = 10) -> results.Cell:
    c = results.Cell(variant, workload, divisor, 102720 // divisor if divisor else -1, 102720,
               instructions, [instructions, instructions], 1, collections=collections)
    if largest is not None:
        c.largest_free_min = c.largest_free_median = largest
        c.big_ok, c.big_rounds, c.live_median = 3, 12, 19000
    return c


def sample_report() -> results.EmuReport:
    report = results.EmuReport(repeat=2)
    report.variants = [results.Variant("patched", "ours", Path("a")),
                       results.Variant("unpatched", "pin", Path("b")),
                       results.Variant("upstream", "reference", Path("c"), reference=True)]
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
    assert [(t.name.split(",")[0], t.measured, t.met, t.note) for t in
            results.check_targets(report)] == [
        ("largest free block after churn", round(45000 / 102720, 3), True, "threshold off: 9.7%"),
        ("pidigits instructions", 0.1, True, "")]
    report.cells[1].largest_free_min = 30000
    assert [t.met for t in results.check_targets(report)] == [False, True]
    assert results.check_targets(results.EmuReport()) == []


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


def test_the_report_names_firmwares_relative_to_the_checkout(tmp_path):
    report = results.EmuReport(root=tmp_path)
    report.variants = [results.Variant("patched", "ours", tmp_path / "dist" / "x" / "firmware.elf"),
                       results.Variant("other", "elsewhere", Path("/elsewhere/firmware.elf"))]
    assert [v["elf"] for v in report.as_dict()["variants"]] == ["dist/x/firmware.elf", "firmware.elf"]


def test_the_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "gc.png"
    render_bench.write_plot(sample_report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the session protocol, on the fake board ---------------------------------------------------


def test_a_session_runs_programs_after_a_soft_reset():
    with session.GuestSession(f"{sys.executable} {FAKE}", silence=5) as board:
        assert board.run("print('RUN', 1 + 1)\n", scrub=False) == "RUN 2\n"
        with pytest.raises(GuestError, match="raised an exception") as info:
            board.run("raise ValueError('boom')\n", scrub=False)
        assert "ValueError" in info.value.details
        # the board is still usable afterwards
        assert board.run("print('again')\n", scrub=False) == "again\n"
        # a transport problem other than silence is the guest's error (callers skip a
        # reference firmware on GuestError): here, code the raw REPL cannot carry
        with pytest.raises(GuestError, match="control bytes"):
            board.run("print('\x04')\n", scrub=False)


class RecordingPort:
    """A serial port that answers the raw REPL's exchange and records every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self._out = b""

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        if data == b"\x04":
            self._out += b"OKhello\x04\x04>"

    def flush(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        data, self._out = self._out[:n], self._out[n:]
        return data


def test_programs_go_through_the_transports_sender_in_paced_pieces(monkeypatch):
    """One raw-REPL sender: the session hands code to RawRepl (chunk 32, a pause after
    each piece) rather than writing it itself."""
    from mpforge.device import transport

    pauses: list[float] = []
    monkeypatch.setattr(transport.time, "sleep", pauses.append)
    port = RecordingPort()
    board = session.GuestSession("unused")
    board.repl = session.paced_repl(port, silence=1)  # type: ignore[arg-type]
    code = b"x = 1\n" * 40  # 240 bytes
    assert board._exec(code, timeout=1) == (b"hello", b"")
    pieces = port.writes[:-1]
    assert b"".join(pieces) == code and port.writes[-1] == b"\x04"
    assert max(len(p) for p in pieces) == session.SEND_CHUNK == 32
    assert len(pieces) == 8 and pauses[:8] == [session.SEND_PAUSE] * 8


def test_the_task_defaults_are_the_module_defaults():
    import inspect

    from mpforge.cli.tasks.bench import bench_gc

    defaults = {name: p.default for name, p in inspect.signature(bench_gc.body).parameters.items()}
    assert defaults["workloads"] == ",".join(guest.DEFAULT_WORKLOADS)
    assert defaults["upstream"] == variants.UPSTREAM_COMMIT
    assert guest.parse_thresholds("off,heap/2,heap/3,heap/4,heap/8") == list(guest.DEFAULT_DIVISORS)


def test_a_memory_error_outside_the_probe_is_read():
    text = churn_output([3000, 2000]).replace("CHURN", "OOM 1\nCHURN")
    assert trace.parse_run(text).oom_round == 1
    assert trace.parse_run(churn_output([3000])).oom_round is None
    grew = results.make_cell(VARIANT, guest.WORKLOADS["grow"], -2,
                             [outcome(600, rounds=[(80000, 30000)])])
    assert grew.label == "auto/2" and grew.oom_round is None


def grow_cell(divisor: int, big_ok: int, oom: int | None = None) -> results.Cell:
    c = cell("patched", "grow", divisor, 500, largest=15000)
    c.big_ok, c.big_rounds, c.oom_round = big_ok, 36, oom
    return c


def test_auto_targets():
    """auto/2 against every fixed threshold down to heap/4 (not heap/8), no MemoryError
    outside the probe, and no more instructions than heap/4 on the compute loops."""
    report = results.EmuReport()
    report.cells = [grow_cell(0, 11, oom=11), grow_cell(2, 23), grow_cell(4, 32), grow_cell(8, 36),
                    grow_cell(-2, 33), cell("patched", "float", 4, 1000), cell("patched", "float", -2, 990)]
    got = [(t.name, t.measured, t.limit, t.met) for t in results.auto_targets(report)]
    assert got == [("grow: large-block successes, auto/2 vs heap/2", 33, 23, True),
                   ("grow: large-block successes, auto/2 vs heap/4", 33, 32, True),
                   ("grow, auto/2: rounds ended by a MemoryError outside the probe", 0, 0, True),
                   ("float instructions, auto/2 over heap/4", 990, 1000, True)]
    report.cells[4].big_ok, report.cells[4].oom_round = 31, 20
    report.cells[6].instructions = 1001
    assert [t.met for t in results.auto_targets(report)] == [True, False, False, False]
    assert results.auto_targets(results.EmuReport()) == []


def test_the_docs_auto_table_is_the_recorded_file():
    """Every row of the auto/D table (docs/gc-threshold.md) comes from bench-results/bench-gc-qemu-auto.json."""
    import json
    import re

    root = Path(__file__).resolve().parents[2]
    data = json.loads((root / "bench-results" / "bench-gc-qemu-auto.json").read_text())
    cells = {(c["workload"], c["label"]): c for c in data["cells"] if c["variant"] == "patched"}
    readme = (root / "docs" / "gc-threshold.md").read_text()
    rows = re.findall(r"^\| ((?:off|heap/\d|auto/\d)) \| (\d+)/(\d+)[^|]*\| ([\d.]+) M, (\d+)(?: GC)? \| "
                      r"([\d.]+) M, (\d+) \| ([\d.]+) M, (\d+) \|$", readme, re.M)
    assert [r[0] for r in rows] == ["off", "heap/2", "heap/4", "heap/8", "auto/2", "auto/4"]
    for label, ok, ran, *compute in rows:
        grow = cells[("grow", label)]
        assert (int(ok), int(ran)) == (grow["big_ok"], grow["big_rounds"]), label
        for name, (mi, gcs) in zip(("pidigits", "float", "chaos"), zip(compute[::2], compute[1::2])):
            c = cells[(name, label)]
            assert float(mi) == round(c["instructions"] / 1e6, 2) and int(gcs) == c["collections"], (name, label)


def test_the_large_allocations_share_comes_from_the_cells():
    report = sample_report()
    for c in report.cells:
        c.big_size = 41088 if c.workload == "churn" else None
    assert render_bench.big_share(report, "churn") == "40%"
    grow = cell("patched", "grow", -2, 100, largest=9000)
    grow.big_size, grow.threshold = 12326, 34240
    report.cells.append(grow)
    assert render_bench.big_share(report, "grow") == "12%"
    assert [r[1] for r in render_bench.fragmentation_rows(report, "grow")] == ["auto/2 = 34,240 B"]
    assert len(render_bench.fragmentation_rows(report)) == 2  # churn only
    report.cells[0].big_size = 20000  # cells that disagree: no figure made up
    assert render_bench.big_share(report, "churn") == "large"
