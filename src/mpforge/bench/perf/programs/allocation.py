# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: many short-lived small objects (tuples, lists, dicts)
keep = []
for i in range(8000):
    t = (i, i + 1, [i, i * 2], {'a': i})
    if i % 100 == 0:
        keep.append(t)
print(len(keep), keep[-1][0])
