# mypy: ignore-errors
# bench-gc guest workload (after prelude.py): objects holding three floats, built,
# normalised and scanned. Parameters: _ROUNDS, _POINTS (const lines put first).
import math


class Vec:
    def __init__(self, x, y, z):
        self.x = x
        self.y = y
        self.z = z

    def length(self):
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)

    def scaled(self, f):
        return Vec(self.x * f, self.y * f, self.z * f)

    def larger(self, other):
        return Vec(max(self.x, other.x), max(self.y, other.y), max(self.z, other.z))


def work():
    top = Vec(-9.0, -9.0, -9.0)
    for rnd in range(_ROUNDS):  # noqa: F821 (a parameter)
        pts = [Vec(math.sin(i * 0.25 + rnd), 2.0 * math.cos(i * 0.5), math.sin(i) * math.cos(rnd))
               for i in range(_POINTS)]  # noqa: F821 (a parameter)
        pts = [p.scaled(1.0 / (p.length() + 0.5)) for p in pts]
        for p in pts:
            top = top.larger(p)
    return int((top.x + top.y + top.z) * 100000)
