# mypy: ignore-errors
# bench-gc guest workload (after prelude.py): a chaos game, three contractions, points
# kept in a trail, visits counted. Parameters: _STEPS, _TRAIL (const lines put first).
class Pt:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def moved(self, m):
        return Pt(m[0] * self.x + m[1] * self.y + m[4], m[2] * self.x + m[3] * self.y + m[5])


def work():
    maps = [(0.5, 0.0, 0.0, 0.5, 0.0, 0.0), (0.5, 0.0, 0.0, 0.5, 0.5, 0.0),
            (0.5, 0.0, 0.0, 0.5, 0.25, 0.5), (0.45, -0.1, 0.1, 0.45, 0.3, 0.2)]
    grid = bytearray(32 * 32)
    trail = [None] * _TRAIL  # noqa: F821 (a parameter)
    p = Pt(0.1, 0.1)
    seed = 7
    for i in range(_STEPS):  # noqa: F821 (a parameter)
        seed = (seed * 75 + 74) % 65537
        p = p.moved(maps[seed & 3])
        trail[i % _TRAIL] = p  # noqa: F821 (a parameter)
        cell = int(p.x * 31.0) * 32 + int(p.y * 31.0)
        grid[cell] = (grid[cell] + 1) & 255
    total = 0
    for i in range(len(grid)):
        total = (total * 31 + grid[i]) % 1000003
    return total
