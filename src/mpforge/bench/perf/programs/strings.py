# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: string slicing, joining, splitting, searching, case changes
words = []
for i in range(400):
    words.append('word%d' % i)
text = ' '.join(words)
n = 0
for r in range(20):
    parts = text.split(' ')
    n += len(parts) + text.find('word399') + text.count('1')
    n += len(text.upper()[:50]) + len(text[10:200].replace('w', 'W'))
print(n)
