# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: %-formatting and str.format of ints, floats and strings
out = 0
for i in range(3000):
    s = '%d:%s:%x' % (i, 'ab', i)
    t = '{}-{:>6}-{}'.format(i, s, i * 2)
    out += len(s) + len(t)
print(out)
