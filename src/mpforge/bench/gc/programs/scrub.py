# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest program: after the prelude (prelude.py), only zero the free heap and
# the unused stack (see mpforge.bench.gc.guest.scrub_program).
_quiet()
try:
    _clean()
finally:
    _unquiet()
