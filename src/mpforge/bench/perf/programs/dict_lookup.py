# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: dict inserts, lookups and deletes with string and int keys
d = {}
for i in range(3000):
    d['k%d' % (i % 500)] = i
    d[i] = i
total = 0
for r in range(4):
    for i in range(3000):
        total += d[i] + d['k%d' % (i % 500)]
for i in range(0, 3000, 2):
    del d[i]
print(total, len(d))
