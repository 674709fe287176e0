# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: big-integer arithmetic (products, divisions, shifts)
a = 1
for i in range(1, 300):
    a *= i
b = a
n = 0
while b:
    b //= 7
    n += 1
c = (a >> 100) ^ (a << 3)
print(n, c % 1000003)
