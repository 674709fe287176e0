"""Counting a program's instructions under valgrind, exactly and repeatably.

The tool is ``cachegrind --cache-sim=no`` (Debian's valgrind 3.19): instructions only,
about half callgrind's cost; its figures are never mixed with callgrind's (the two
differ by 0.2% on the same input). What moves counts besides the code is fixed here
(measured on this machine, see the design notes): the environment (``env -i`` with a
fixed ``HOME`` and ``PATH``), the working folder and argv (the caller passes paths of
the same length for every binary it compares: :func:`count` only runs what it is given).

:func:`count` returns the total (``I refs``) and the instructions per function, read
from cachegrind's own output file (``fn=`` lines, then ``line Ir`` pairs), so that a
change can be explained by the functions whose counts moved (:func:`top_functions`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import MpforgeError
from mpforge.core.executor import Executor

#: The only environment the measured program sees.
FIXED_ENV = ("HOME=/nonexistent", "PATH=/usr/bin:/bin", "LANG=C")
#: A workload may run this long (seconds, under valgrind) before it counts as hung.
TIMEOUT = 300.0


@dataclass(frozen=True)
class Measured:
    """One run: the total and the instructions per function."""

    total: int
    functions: dict[str, int]


def parse_output_file(text: str) -> Measured:
    """Cachegrind's output file (``--cache-sim=no``: one event, ``Ir``) -> totals."""
    per_fn: Counter[str] = Counter()
    fn, fl = "???", ""
    total = None
    for line in text.splitlines():
        if line.startswith("fl="):
            fl = line[3:]
        elif line.startswith("fn="):
            # valgrind 3.19 may read a stripped program's line table from its .debug file
            # but not its symbols: then the source file is the best name there is
            fn = line[3:] if line[3:] != "???" or not fl else f"??? ({fl.rsplit('/', 1)[-1]})"
        elif line.startswith("summary:"):
            total = int(line.split()[1])
        elif line[:1].isdigit():
            parts = line.split()
            if len(parts) >= 2:
                per_fn[fn] += int(parts[1])
    if total is None:
        raise MpforgeError("cachegrind wrote no summary line", "is this valgrind 3.x?")
    return Measured(total, dict(per_fn))


def count(executor: Executor, argv: list[str], *, cwd: Path, out_file: Path,
          timeout: float = TIMEOUT, what: str = "workload") -> Measured:
    """Run ``argv`` under cachegrind in the fixed environment; raise if it fails or hangs."""
    command = ["env", "-i", *FIXED_ENV, "valgrind", "--tool=cachegrind", "--cache-sim=no",
               f"--cachegrind-out-file={out_file}", *argv]
    result = executor.run(command, cwd=cwd, check=False, mutates=False, timeout=timeout,
                          what=f"valgrind ({what})", hint="apt-get install valgrind")
    if result.timed_out:
        raise MpforgeError(f"{what}: timed out after {timeout:g} s under valgrind",
                           "make the workload smaller", result.tail())
    if not result.ok:
        raise MpforgeError(f"{what}: exited with status {result.returncode} under valgrind",
                           "run it without valgrind to see why", result.tail())
    measured = parse_output_file(out_file.read_text())
    match = re.search(r"I\s+refs:\s+([\d,]+)", result.stdout)
    if match and int(match.group(1).replace(",", "")) != measured.total:
        raise MpforgeError(f"{what}: cachegrind's summary and its file disagree", "")
    return measured


def top_functions(base: Measured, head: Measured, limit: int = 5) -> list[dict[str, object]]:
    """The functions whose instruction counts moved most, largest change first."""
    names = set(base.functions) | set(head.functions)
    deltas = [(name, head.functions.get(name, 0) - base.functions.get(name, 0)) for name in names]
    moved = sorted((d for d in deltas if d[1]), key=lambda d: (-abs(d[1]), d[0]))[:limit]
    return [{"function": name, "delta": delta} for name, delta in moved]
