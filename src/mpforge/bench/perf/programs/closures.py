# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: closures, nonlocal state, functions returned from functions
def counter():
    n = 0

    def step(k):
        nonlocal n
        n += k
        return n
    return step


def adder(a):
    return lambda b: a + b


c = counter()
t = 0
for i in range(10000):
    t += c(1) + adder(i)(2)
print(t)
