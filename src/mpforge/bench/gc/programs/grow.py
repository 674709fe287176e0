# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest workload (after prelude.py): live data that grows while small objects
# churn. Each round keeps one more slab (1.6% of the heap: ~58% after 36 rounds), makes
# _PER_ROUND small objects of varied sizes (every 8th kept a while in a ring, so
# survivors end up scattered), then probes one 12%-of-heap bytearray and reads the
# largest free block. A MemoryError outside the probe ends the workload (OOM line).
# Parameters: _ROUNDS, _PER_ROUND (const lines put first).
def work():
    heap = gc.mem_free() + gc.mem_alloc()
    big = heap * 3 // 25
    slab = heap // 62
    live = []
    ring = [None] * 48
    seed = 1
    k = 0
    ok = 0
    paused = 0
    try:
        for rnd in range(_ROUNDS):
            live.append(bytearray(slab))
            for i in range(_PER_ROUND):
                seed = (seed * 75 + 74) % 65537
                obj = bytearray(8 + seed % 120)
                if i & 7 == 0:
                    ring[k] = obj
                    k = (k + 1) % 48
            obj = None
            try:
                b = bytearray(big)
                ok += 1
            except MemoryError:
                pass
            b = None  # noqa: F841 (drops the reference: the collector may free it)
            _mark(4)
            gc.isenabled()
            print('ROUND', rnd, ok, gc.mem_free())
            micropython.mem_info()
            gc.isenabled()
            _mark(6)
            paused += _T[6] - _T[4]
    except MemoryError:
        ring = None
        print('OOM', rnd)
    _report('CHURN', heap, big, ok, paused)
    return seed + k + len(live)
