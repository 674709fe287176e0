# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# The `bench` module the tree's tests/bench/*.py import when `invoke perf` runs them: the
# same interface (ITERS, run(f)), with ITERS scaled down for counting under valgrind and
# no clock (an instruction count needs none). Written for mpforge, MicroPython 1.8 syntax.
ITERS = 200000


def run(f):
    f(ITERS)
