"""Reading what bench-gc's guest program and QEMU's exec trace say.

The guest prints tagged lines (``CAL``, ``RUN``, ``ROUND``, ``CHURN``: integers after
the tag) and ``micropython.mem_info()``'s report, whose ``max free sz`` is the largest
free block in 16-byte blocks. **Collections** are counted outside the firmware, the
same way for every tree: QEMU's exec trace restricted to the entry of
``gc_collect_start`` and of a marker function (:class:`Probes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import GuestError


def _fields(output: str, tag: str) -> list[list[int]]:
    rows = []
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] == tag:
            try:
                rows.append([int(p) for p in parts[1:]])
            except ValueError:
                raise GuestError(f"unreadable {tag} line from the guest: {line!r}") from None
    return rows


def parse_calibration(output: str) -> float:
    """Instructions per clock count, from two spin loops of 2 instructions a turn.

    Under ``-icount shift=0`` it is 1: anything else means the emulator runs on
    wall-clock time, and the counts would measure the host, not the guest.
    """
    rows = _fields(output, "CAL")
    if len(rows) != 2 or any(len(r) != 3 for r in rows):
        raise GuestError("the calibration printed no timing", "", output[-400:])
    (turns0, counts0, wrap0), (turns1, counts1, wrap1) = rows
    if wrap0 or wrap1 or counts1 <= counts0:
        raise GuestError("the guest's clock does not follow its instructions",
                         "the emulator must run with -icount shift=0", output[-400:])
    return 2 * (turns1 - turns0) / (counts1 - counts0)


@dataclass
class Outcome:
    """What one guest run reported."""

    heap: int
    threshold: int  # bytes as the guest reports it; -1 off; -2 no gc.threshold
    free_at_start: int
    checksum: int
    counts: int  # guest clock counts: instructions
    max_free_end: int  # bytes, after the workload (no collection)
    rounds: list[tuple[int, int]] = field(default_factory=list)  # (free, largest free) per round
    big_ok: int = 0
    big_size: int = 0
    paused_counts: int = 0  # spent measuring, inside the workload
    collections: int | None = None  # traced by QEMU (None: not traced)
    oom_round: int | None = None  # grow: the round a MemoryError outside the probe ended


def parse_mem_info(output: str) -> list[int]:
    """``max free sz`` of each ``micropython.mem_info()`` printed, in bytes."""
    return [int(n) * 16 for n in re.findall(r"max free sz: (\d+)", output)]


def parse_run(output: str) -> Outcome:
    """One measured program's output (``measure.py`` and, for churn, its rounds)."""
    runs = _fields(output, "RUN")
    if len(runs) != 1 or len(runs[0]) != 6:
        raise GuestError("the guest printed no result", "", output[-600:])
    heap, threshold, free, checksum, counts, wrapped = runs[0]
    if wrapped:
        raise GuestError("the workload ran past the guest clock's 2**30 counts",
                         "make the workload smaller")
    largest = parse_mem_info(output)
    outcome = Outcome(heap, threshold, free, checksum, counts, largest[-1] if largest else 0)
    rounds = _fields(output, "ROUND")
    if rounds:
        # each ROUND line is followed by its mem_info; the last mem_info is the final one
        if len(largest) != len(rounds) + 1:
            raise GuestError("a round of the workload printed no heap figures", "",
                             output[-600:])
        outcome.rounds = [(free_now, largest[i]) for i, (_, _, free_now) in enumerate(rounds)]
        oom = _fields(output, "OOM")
        outcome.oom_round = oom[0][0] if oom else None
        churn = _fields(output, "CHURN")
        if churn:
            _, outcome.big_size, outcome.big_ok, outcome.paused_counts = churn[0]
    return outcome


@dataclass(frozen=True)
class Probes:
    """Where the collector starts a collection, and a marker the guest calls.

    QEMU's exec trace (``-d exec,nochain -dfilter``) restricted to these two
    addresses writes one line each time the guest enters either function: a
    collection counter outside the firmware, the same for every tree. The guest
    calls ``gc.isenabled()`` (the marker, otherwise unused) where counting
    starts and stops, and around the measurements inside a workload.
    """

    collect: int  # gc_collect_start
    marker: int  # the function behind gc.isenabled()

    def qemu_args(self, log: Path) -> str:
        return (f"-d exec,nochain -dfilter {self.collect:#x}+2,{self.marker:#x}+2 "
                f"-D {log}")


def find_probes(symbols: str) -> Probes | None:
    """:class:`Probes` from ``nm`` output of the firmware; None when a symbol is missing."""
    found: dict[str, int] = {}
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("gc_collect_start", "gc_isenabled"):
            found[parts[2]] = int(parts[0], 16) & ~1  # a Thumb address, as QEMU logs it
    if len(found) != 2:
        return None
    return Probes(found["gc_collect_start"], found["gc_isenabled"])


def trace_events(log_text: str, probes: Probes) -> str:
    """The traced entries as a string: ``C`` a collection, ``M`` a marker.

    QEMU logs ``Trace ... [../PC/..]`` as it enters a block of code. Under
    -icount a block can be stopped before its first instruction (its share of
    instructions ran out) and entered again: QEMU then logs ``Stopped execution
    of TB chain before ... [PC]``, and that entry did not happen.
    """
    events: list[str] = []
    kinds = {probes.collect: "C", probes.marker: "M"}
    for line in log_text.splitlines():
        if line.startswith("Trace "):
            match = re.search(r"\[[0-9a-f]+/([0-9a-f]+)/", line)
            kind = kinds.get(int(match.group(1), 16)) if match else None
            if kind:
                events.append(kind)
        elif line.startswith("Stopped execution"):
            match = re.search(r"\[([0-9a-f]+)\]", line)
            kind = kinds.get(int(match.group(1), 16)) if match else None
            if kind and events and events[-1] == kind:
                events.pop()
    return "".join(events)


def count_collections(events: str) -> int:
    """Collections between the first and the last marker, leaving out those between
    the inner marker pairs (measurements inside the workload)."""
    marks = [i for i, e in enumerate(events) if e == "M"]
    if len(marks) < 2 or len(marks) % 2:
        raise GuestError(f"the collection trace has {len(marks)} markers, not a start, "
                         "an end and pairs between them")
    count = 0
    outside = True
    for event in events[marks[0] + 1:marks[-1]]:
        if event == "M":
            outside = not outside
        elif outside:
            count += 1
    return count
