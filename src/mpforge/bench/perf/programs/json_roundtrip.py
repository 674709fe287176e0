# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: ujson dumps and loads of nested lists and dicts
try:
    import ujson as json
except ImportError:
    import json
doc = {'name': 'sensor', 'values': list(range(50)), 'nested': {'a': [1, 2, {'b': 'c'}]}}
n = 0
for i in range(150):
    text = json.dumps(doc)
    back = json.loads(text)
    n += len(text) + len(back['values'])
print(n)
