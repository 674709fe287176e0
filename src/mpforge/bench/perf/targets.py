"""Where ``invoke perf`` counts, and which of our workloads run there: a table, not branches.

A **perf target** is a port (and board) the gate can count instructions on: ``unix``
(the host binary under valgrind, :mod:`~mpforge.bench.perf.valgrind`) and
``stmhal-PYBV10_QEMU`` (the emulated pyboard under QEMU ``-icount shift=0``,
:mod:`~mpforge.bench.perf.emulated`). Each row says

* ``emulator``: the port's emulator table (``[test.emulator.NAME]`` in ``ports/*.toml``)
  the target runs under, or None for the host;
* ``pads``: the heap layouts (bytes kept before the workload, see
  :mod:`~mpforge.bench.perf.layouts`); the pyboard's heap is about 100 KiB, so its pads
  are smaller than the host's 16 KiB;
* ``left_out``: the workloads of ours that do not run there, each with the reason
  (measured on the target: a feature the firmware lacks, a heap too small). Asking for
  one of them by name is an error that gives the reason; the default set skips them.

Adding a target or moving a workload in or out is an edit of :data:`TARGETS` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mpforge.bench.perf.layouts import DEFAULT_PADS
from mpforge.bench.perf.workloads import Workload
from mpforge.core.errors import UsageError


@dataclass(frozen=True)
class PerfTarget:
    """One place the gate counts on (see the module docstring)."""

    name: str  # the report's "target"
    port: str
    board: str | None = None
    emulator: str | None = None
    pads: tuple[int, ...] = DEFAULT_PADS
    left_out: Mapping[str, str] = field(default_factory=dict)

    def workloads(self, chosen: Sequence[Workload], named: bool) -> list[Workload]:
        """``chosen`` without the workloads left out here. ``named``: the user listed them
        (``--workloads``): one left out is then an error giving the reason."""
        if named:
            for workload in chosen:
                if workload.origin == "mpforge" and workload.name in self.left_out:
                    raise UsageError(f"--workloads: {workload.name} does not run on {self.name}: "
                                     f"{self.left_out[workload.name]}",
                                     "leave it out, or use --port unix")
        return [w for w in chosen if not (w.origin == "mpforge" and w.name in self.left_out)]


TARGETS: dict[str, PerfTarget] = {t.name: t for t in (
    PerfTarget("unix", "unix"),
    PerfTarget("stmhal-PYBV10_QEMU", "stmhal", "PYBV10_QEMU", emulator="qemu",
               pads=(0, 256, 1024, 4096),
               left_out={
                   "dict_lookup": "MemoryError: its dict outgrows the ~100 KiB heap",
                   "sets": "MemoryError: its set (a 29 KB table) outgrows the ~100 KiB heap",
               }),
)}


def find(port: str, board: str | None) -> PerfTarget:
    """The target of ``--port``/``--board`` (a port with one target needs no board)."""
    matches = [t for t in TARGETS.values() if t.port == port and (board is None or t.board == board)]
    if len(matches) != 1:
        known = ", ".join(f"--port {t.port}" + (f" --board {t.board}" if t.board else "")
                          for t in TARGETS.values())
        raise UsageError(f"perf: --port {port}" + (f" --board {board}" if board else "")
                         + " is not supported yet (no perf target)", f"choose one of: {known}")
    return matches[0]
