# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: calls with keyword, default, *args and **kwargs arguments
def f(a, b=2, *args, **kw):
    return a + b + len(args) + len(kw)


t = 0
for i in range(6000):
    t += f(i) + f(i, 3) + f(i, b=4) + f(1, 2, 3, 4, x=1)
print(t)
