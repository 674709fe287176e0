# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest program: the clock's calibration, after the prelude (prelude.py).
# A loop of two instructions a turn, timed for two numbers of turns: under -icount
# shift=0 the counts differ by exactly twice the turns. The undefined names are the
# inline assembler's and the prelude's.
@micropython.asm_thumb
def _spin(r0):
    label(loop)
    sub(r0, r0, 1)
    bne(loop)


_quiet()
try:
    for _n in (1000000, 3000000):
        _clock_start()
        _mark(0)
        _spin(_n)
        _mark(2)
        _report('CAL', _n, _T[2] - _T[0], _wrapped())
finally:
    _unquiet()
