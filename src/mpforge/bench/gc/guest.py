"""bench-gc's guest programs: put together from the files in ``programs/``.

The programs are real Python files shipped with the package (``programs/*.py``), so
ruff reads them and the tests compile them; they run on MicroPython 1.8, whose syntax
is a subset of CPython's (no f-strings), so CPython's ``compile()`` is a syntax pass
for them (the tests also check that every name a program uses is defined in it).

A program is joined from parts: the parameters, the prelude (``prelude.py``: the
guest clock, interrupts masked, the heap and stack scrub), then a workload
(``churn.py``, ...) and the measurement (``measure.py``). **Parameters** are a few
lines of ``_NAME = const(N)`` put first (:func:`assignments`): MicroPython's parser
replaces each later ``_NAME`` by its value and stores no global for it, so the
compiled program is the same as with the number written in place (no ``%``
templating, no lookup inside the timed loops). On CPython the tests define ``const``
as ``int``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources

from mpforge.core.errors import MpforgeError

#: The thresholds measured by default: off, and the heap divided by these.
DEFAULT_DIVISORS = (0, 2, 3, 4, 8)
#: The workloads measured by default, in the table's order.
DEFAULT_WORKLOADS = ("churn", "pidigits", "float", "chaos")
#: Bytes of stack below the stack pointer the guest zeroes before a run (the
#: pyboard has 16 KiB of stack; ``micropython.stack_use()`` of it is in use).
STACK_SCRUB = 14 * 1024


@functools.cache
def source(name: str) -> str:
    """The text of ``programs/<name>.py``."""
    return resources.files(__package__).joinpath("programs", f"{name}.py").read_text()


def assignments(params: dict[str, int]) -> str:
    """``{"rounds": 12}`` -> ``_ROUNDS = const(12)``, one line each (see the module docstring)."""
    for name, value in params.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not isinstance(value, int):
            raise ValueError(f"not a guest parameter: {name}={value!r}")
    return "".join(f"_{name.upper()} = const({value})\n" for name, value in params.items())


def prelude(**params: int) -> str:
    """The parameters (``params`` and the stack scrub's) and the helpers every guest
    program starts with."""
    return assignments({"stack_scrub": STACK_SCRUB, **params}) + source("prelude")


def calibration_program() -> str:
    """Two spin loops of known length, timed (see :func:`mpforge.bench.gc.trace.parse_calibration`)."""
    return prelude() + source("calibrate")


def scrub_program() -> str:
    """A program that only zeroes the free heap and the unused stack.

    A program's own scrub (``_clean``) runs after it was compiled, and what
    the compiler allocated holds words left by whatever ran before: the
    conservative collector reads them, and a measured count moved by up to 5%
    with the program run before it. After a soft reset, this program (always
    the same text, so it lands where it landed last time) leaves the memory the
    same for the next one, whatever came before: the measured program then
    gives the same count in any order.
    """
    return prelude() + source("scrub")


def host_workload() -> str:
    """The unix port's churn script (``programs/host_churn.py``; arguments: threshold, rounds)."""
    return source("host_churn")


@dataclass(frozen=True)
class Workload:
    """One guest workload: its file in ``programs/`` and its parameters."""

    name: str
    what: str
    file: str
    params: dict[str, int] = field(default_factory=dict)
    fragmentation: bool = False  # reports largest free blocks per round

    @property
    def code(self) -> str:
        """The workload's own file (it defines ``work()``), parameters not included."""
        return source(self.file)

    def program(self, divisor: int) -> str:
        """The whole guest program for threshold ``heap // divisor`` (0: off)."""
        return prelude(**self.params, divisor=divisor) + self.code + source("measure")


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("churn", "small objects (8-128 bytes), every 8th kept in a ring of 96 survivors; "
             "per round one 40%-of-heap bytearray, then the largest free block",
             "churn", {"rounds": 12, "per_round": 2000, "survivors": 96}, fragmentation=True),
    Workload("grow", "live data growing to ~58% of the heap while small objects (8-128 bytes) "
             "churn; per round one 12%-of-heap bytearray probed, then the largest free block",
             "grow", {"rounds": 36, "per_round": 600}, fragmentation=True),
    Workload("pidigits", "spigot for 300 digits of pi: big-integer temporaries",
             "pidigits", {"digits": 300}),
    Workload("float", "200 objects of three floats, built, normalised and scanned, 12 rounds",
             "floats", {"rounds": 12, "points": 200}),
    Workload("chaos", "chaos game: 12000 steps of a point object, a 256-point trail",
             "chaos", {"steps": 12000, "trail": 256}),
)}


def threshold_label(divisor: int) -> str:
    """0 -> ``off``, 4 -> ``heap/4``, -4 -> ``auto/4`` (``gc.threshold(auto=4)``)."""
    if divisor < 0:
        return f"auto/{-divisor}"
    return "off" if divisor == 0 else f"heap/{divisor}"


def parse_thresholds(text: str) -> list[int]:
    """``off,heap/2,1/3,4,auto/2`` -> ``[0, 2, 3, 4, -2]`` (divisors of the heap; 0 = off;
    negative: ``gc.threshold(auto=D)``, the free heap after each collection over D)."""
    divisors = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        match = re.fullmatch(r"(?:off|-1)|(auto/)?(?:(?:heap|1)/)?(\d+)", item)
        if not match:
            raise MpforgeError(f"not a threshold for the emulated heap: {item!r}",
                               "use off, a fraction of the heap (heap/2, 1/3, 4) or auto/D")
        value = int(match.group(2)) if match.group(2) else 0
        if match.group(1):
            if value < 2:
                raise MpforgeError(f"auto/{value} is not a threshold", "use auto/2 or more")
            value = -value
        elif match.group(2) and value < 1:
            raise MpforgeError(f"heap/{value} is not a threshold", "use heap/1 or more")
        if value not in divisors:
            divisors.append(value)
    return divisors or [0]


def parse_workloads(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise MpforgeError(f"unknown workload(s): {', '.join(unknown)}",
                           f"choose from {', '.join(WORKLOADS)}")
    return names
