# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: sets of ints and strings: add, membership, union, intersection
a = set()
b = set()
for i in range(3000):
    a.add(i * 3)
    b.add(i * 5)
hits = 0
for i in range(9000):
    if i in a:
        hits += 1
print(hits, len(a | b), len(a & b), len(set(['x%d' % (i % 50) for i in range(500)])))
