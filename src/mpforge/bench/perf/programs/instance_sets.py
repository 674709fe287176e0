# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: a set and dict of instances (hashes are addresses: moves with the heap)
class Node:
    def __init__(self, k):
        self.k = k


nodes = [Node(i) for i in range(600)]
seen = set()
index = {}
for r in range(5):
    for n in nodes:
        seen.add(n)
        index[n] = n.k
total = 0
for n in nodes:
    total += index[n]
print(len(seen), total)
