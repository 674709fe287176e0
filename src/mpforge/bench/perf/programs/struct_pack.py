# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: ustruct pack/unpack of records
try:
    import ustruct as struct
except ImportError:
    import struct
t = 0
for i in range(3000):
    b = struct.pack('<HIb', i & 0xFFFF, i * 7, -(i & 63))
    x, y, z = struct.unpack('<HIb', b)
    t += x + y + z
print(t)
