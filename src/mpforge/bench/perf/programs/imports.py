# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: importing modules again and again (sys.modules lookups), one module once
import sys
n = 0
for i in range(3000):
    import sys as s2
    n += len(s2.argv)
if 'array' in sys.modules:
    del sys.modules['array']
import array
print(n, len(array.array('i', [1, 2, 3])))
