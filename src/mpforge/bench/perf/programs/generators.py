# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: generator functions, generator expressions, yield chains
def count_up(n):
    i = 0
    while i < n:
        yield i
        i += 1


def evens(gen):
    for v in gen:
        if v % 2 == 0:
            yield v


print(sum(evens(count_up(20000))), sum(x * x for x in range(5000)))
