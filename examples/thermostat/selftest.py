# The thermostat firmware's self test: the frozen package and the C module, used.
# Runs on the firmware with an empty file system:
#   dist/unix/micropython < selftest.py   (after: invoke build --app examples/thermostat)
#   invoke run examples/thermostat/selftest.py --device /dev/pts/N   (the emulated pyboard)
import crc16
import thermostat

print("crc16", hex(crc16.ccitt(b"123456789")))
frame = thermostat.encode(7, -1234)
print("frame", [hex(b) for b in frame])
print("decoded", thermostat.decode(frame))
control = thermostat.Hysteresis(21.0)
print("heating", [control.update(t) for t in (20.0, 20.8, 21.6, 21.2, 20.4)])
try:
    thermostat.decode(frame[:4] + bytes([frame[4] ^ 1]))
except ValueError as exc:
    print("damaged", exc)
print("thermostat", thermostat.VERSION, "ok")
