# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: small-int arithmetic and comparisons in tight loops
s = 0
i = 0
while i < 40000:
    if i & 3 == 1:
        s += i * 3
    else:
        s -= i >> 1
    i += 1
print(s)
