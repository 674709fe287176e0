"""One workload on one binary at K heap layouts: the :class:`~.compare.Counts` it gives.

A layout is a pad: the script starts by allocating ``bytearray(PAD)`` and keeping it, so
every later object lands elsewhere in the heap. The first pad is counted twice (the
exactness check), every other pad once. The binary is copied first to
``<work>/bin/<sha256[:16]>/micropython`` (with its ``micropython.debug``, which
valgrind finds by the stripped program's ``.gnu_debuglink``: per-function counts need
symbols) and the script written to
``<work>/scripts/<workload>-<pad>.py``, and valgrind runs in ``<work>/run``: every binary
compared gets paths of the same length and the same argv, so only its code differs.

Measurements are kept by the binary's sha256 (and the workload's text and the pads):
``--per-patch`` compares step k with k-1 and then k+1 with k, and two steps that
built the same bytes are one binary, so each binary is counted once per workload.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.bench.perf.compare import Counts
from mpforge.bench.perf.valgrind import Measured, count
from mpforge.core.executor import Executor

#: The default pads (bytes): no pad, then three sizes up to the design notes' 16 KiB.
DEFAULT_PADS = (0, 1024, 4096, 16384)

Counter = Callable[..., Measured]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pad_line(pad: int) -> str:
    """The script's first line: a kept pad of ``pad`` bytes (none for 0)."""
    return f"_perf_pad = bytearray({pad})\n" if pad else "_perf_pad = None\n"


@dataclass
class Bench:
    """Where one command's measurements happen; ``counter`` is :func:`count` (tests pass
    their own)."""

    executor: Executor
    work: Path
    counter: Counter = count
    #: (binary sha256, workload, its source, pads) -> what :meth:`measure` found
    memo: dict[tuple[str, str, str, tuple[int, ...]], tuple[Counts, Measured]] = field(
        default_factory=dict)

    def install(self, binary: Path) -> Path:
        """A copy of ``binary`` at a path whose length does not depend on the build."""
        digest = sha256(binary)[:16]
        target = self.work / "bin" / digest / "micropython"
        target.parent.mkdir(parents=True, exist_ok=True)
        debug = binary.with_name(binary.name + ".debug")
        if debug.is_file() and not target.with_name(debug.name).exists():
            # a stripped program's symbols: valgrind finds them beside it (also when an
            # earlier run installed the same bytes without them)
            shutil.copy2(debug, target.with_name(debug.name))
        if not target.exists():
            shutil.copy2(binary, target)
        return target

    def measure(self, binary: Path, name: str, source: str,
                pads: Sequence[int] = DEFAULT_PADS) -> tuple[Counts, Measured]:
        """Counts of ``source`` at every pad, and the first pad's per-function figures
        (counted once per binary content: see the module docstring)."""
        key = (sha256(binary), name, source, tuple(pads))
        if key not in self.memo:
            self.memo[key] = self._measure(binary, name, source, pads)
        return self.memo[key]

    def _measure(self, binary: Path, name: str, source: str,
                 pads: Sequence[int]) -> tuple[Counts, Measured]:
        installed = self.install(binary)
        run_dir = self.work / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        scripts = self.work / "scripts"
        scripts.mkdir(parents=True, exist_ok=True)
        firsts: list[Measured] = []
        layouts: list[int] = []
        for index, pad in enumerate(pads):
            script = scripts / f"{name}-{pad}.py"
            script.write_text(pad_line(pad) + source)
            for repeat in range(2 if index == 0 else 1):
                measured = self.counter(self.executor, [str(installed), str(script)], cwd=run_dir,
                                        out_file=self.work / "cachegrind.out", what=name)
                if index == 0:
                    firsts.append(measured)
                if repeat == 0:
                    layouts.append(measured.total)
        return Counts((firsts[0].total, firsts[1].total), tuple(layouts)), firsts[0]
