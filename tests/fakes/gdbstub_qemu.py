#!/usr/bin/env python3
"""Stand-in for QEMU with its gdb stub, for ``invoke debug``'s tests.

Like ``qemu-system-arm ... -serial pty -chardev socket,path=S,server=on,... -gdb chardev:ID
-S``: it listens on the unix socket S, announces a pty as QEMU does ("char device
redirected to /dev/pts/N"), and runs until it is stopped. QEMU_STATE=<folder>: its
argv (JSON) goes to ``argv``, its pid and session id to ``pid`` and ``sid``.
"""
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

state = Path(os.environ["QEMU_STATE"])
args = sys.argv[1:]
(state / "argv").write_text(json.dumps(args))
(state / "pid").write_text(str(os.getpid()))
(state / "sid").write_text(str(os.getsid(0)))
chardev = args[args.index("-chardev") + 1]
options = dict(part.split("=", 1) for part in chardev.split(",")[1:] if "=" in part)
stub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
stub.bind(options["path"])
stub.listen(1)
controller, device = os.openpty()
print(f"char device redirected to {os.ttyname(device)} (label serial0)", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(0.1)
