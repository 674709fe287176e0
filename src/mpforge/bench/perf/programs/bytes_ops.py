# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: bytes and bytearray: building, indexing, slicing, joining
buf = bytearray(2048)
for i in range(len(buf)):
    buf[i] = i & 0xFF
s = 0
for r in range(10):
    chunk = bytes(buf[r:r + 512])
    s += sum(chunk) + chunk.find(b'\x10') + len(b'-'.join([chunk[:8], chunk[8:16]]))
print(s)
