# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: float arithmetic in a small integration loop
x, v = 1.0, 0.0
dt = 0.001
for i in range(20000):
    a = -x * 4.0 - v * 0.1
    v += a * dt
    x += v * dt
print(int(x * 1000000))
