# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: instance and class attribute reads and writes, method calls
class Point:
    scale = 3

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def moved(self, dx):
        self.x += dx * self.scale
        return self.x + self.y


p = Point(1, 2)
s = 0
for i in range(20000):
    s += p.moved(1) + p.y
print(s)
