# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: raising and catching exceptions, try/finally, custom exceptions
class Oops(Exception):
    pass


def may_fail(i):
    if i % 3 == 0:
        raise Oops(i)
    return i


caught = 0
total = 0
for i in range(6000):
    try:
        total += may_fail(i)
    except Oops:
        caught += 1
    finally:
        total += 1
print(caught, total)
