# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest workload (after prelude.py): small objects of varied sizes, every 8th
# kept in a ring of _SURVIVORS; per round one 40%-of-heap bytearray, then the largest
# free block. Parameters: _ROUNDS, _PER_ROUND, _SURVIVORS (const lines put first).
def work():
    heap = gc.mem_free() + gc.mem_alloc()
    big = heap * 2 // 5
    ring = [None] * _SURVIVORS
    seed = 1
    k = 0
    ok = 0
    paused = 0
    for rnd in range(_ROUNDS):
        for i in range(_PER_ROUND):
            seed = (seed * 75 + 74) % 65537
            if seed & 7 == 0:
                obj = [seed, bytearray(8 + seed % 24)]
            else:
                obj = bytearray(8 + seed % 120)
            if i & 7 == 0:
                ring[k] = obj
                k = (k + 1) % _SURVIVORS
        obj = None
        try:
            b = bytearray(big)
            ok += 1
        except MemoryError:
            pass
        b = None  # noqa: F841 (drops the reference: the collector may free it)
        # the largest allocation that succeeds now (a failing one collects first)
        _mark(4)
        gc.isenabled()
        gc.collect()
        print('ROUND', rnd, ok, gc.mem_free())
        micropython.mem_info()
        gc.isenabled()
        _mark(6)
        paused += _T[6] - _T[4]
    _report('CHURN', heap, big, ok, paused)
    return seed + k
