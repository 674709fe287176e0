# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: tuple packing and unpacking, swaps, enumerate and zip
a, b = 0, 1
t = 0
for i in range(10000):
    a, b = b, (a + b) & 0xFFFF
t = 0
for k, (x, y) in enumerate(zip(range(3000), range(3000, 6000))):
    t += k + x - y
print(a, b, t)
