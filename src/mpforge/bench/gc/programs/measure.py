# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest program: the measurement, after the prelude and a workload (which
# defines work()). _DIVISOR: the threshold is the heap divided by it (0: off;
# negative: gc.threshold(auto=-_DIVISOR)).
_heap = gc.mem_free() + gc.mem_alloc()
_div = _DIVISOR
_has = hasattr(gc, 'threshold')
if _div > 0 and _has:
    gc.threshold(_heap // _div)
if _div < 0 and _has:
    gc.threshold(auto=-_div)
_quiet()
try:
    _clean()
    _free = gc.mem_free()
    _clock_start()
    gc.isenabled()
    _mark(0)
    _sum = work()
    _mark(2)
    gc.isenabled()
finally:
    _unquiet()
_report('RUN', _heap, gc.threshold() if _has else -2, _free, _sum, _T[2] - _T[0], _wrapped())
micropython.mem_info()
