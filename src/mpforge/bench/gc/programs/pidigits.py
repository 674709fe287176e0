# mypy: ignore-errors
# bench-gc guest workload (after prelude.py): the unbounded spigot for pi's digits,
# big-integer temporaries. Parameter: _DIGITS (a const line put first).
def work():
    q, r, t, k, m, x = 1, 0, 1, 1, 3, 3
    digits = 0
    acc = 0
    while digits < _DIGITS:  # noqa: F821 (a parameter)
        if 4 * q + r - t < m * t:
            acc = (acc * 10 + m) % 1000003
            digits += 1
            q, r, m = 10 * q, 10 * (r - m * t), (10 * (3 * q + r)) // t - 10 * m
        else:
            q, r, t, k, m, x = (q * k, (2 * q + r) * x, t * x, k + 1,
                                (q * (7 * k + 2) + r * x) // (t * x), x + 2)
    return acc
