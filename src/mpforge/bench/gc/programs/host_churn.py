# mypy: ignore-errors
# mpforge bench-gc workload for the unix port: churn of short-lived 200-byte objects.
# Run as `micropython -X heapsize=N host_churn.py THRESHOLD ROUNDS` (threshold in
# bytes; -1: leave the GC as it is; -D: gc.threshold(auto=D)); prints the process's
# peak RSS (VmHWM) in KiB.
import gc
import sys

threshold = int(sys.argv[1])
rounds = int(sys.argv[2])
if threshold >= 0:
    gc.threshold(threshold)
elif threshold < -1:
    gc.threshold(auto=-threshold)   # -D: auto/D
live = [bytearray(200) for i in range(200)]   # a little data in use
for _ in range(rounds):
    junk = bytearray(200)
peak = 0
with open('/proc/self/status') as f:
    for line in f:
        if line.startswith('VmHWM:'):
            peak = int(line.split()[1])
print('vmhwm_kib', peak)
