# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: list append, insert, index, slice, sort, comprehension
items = [(i * 7919) % 1009 for i in range(3000)]
items.sort()
total = 0
for i in range(0, 3000, 3):
    total += items[i]
copy = items[100:900]
copy.reverse()
copy.insert(0, 5)
print(total, copy.index(5), len([x for x in items if x & 1]))
