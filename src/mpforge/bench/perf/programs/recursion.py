# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: recursive calls (fibonacci, tree depth)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def depth(t):
    return 0 if t is None else 1 + max(depth(t[0]), depth(t[1]))


def build(n):
    return None if n == 0 else (build(n - 1), None)


print(fib(18), depth(build(40)))
