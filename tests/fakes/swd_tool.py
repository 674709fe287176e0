#!/usr/bin/env python3
"""Recording stand-in for openocd, pyocd and gdb-multiarch (linked under those names).

SWD_STATE=<folder>: each call appends its name and argv (JSON) to ``calls``. A gdb
server call (openocd ``-c "gdb_port N"``, ``pyocd gdbserver --port N``) listens on
127.0.0.1:N until it is stopped, and writes its pid to ``server.pid``; with a file
``fail`` in the folder it prints that file's text and exits 1 instead, as OpenOCD
does without a probe. ``--version`` answers as the tool does. gdb exits with the
status in the file ``gdb-status`` (default 0), after connecting to the server its
``target extended-remote`` names (``connected`` records that it could).
"""
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

name = Path(sys.argv[0]).name
args = sys.argv[1:]
if args == ["--version"]:
    print({"openocd": "Open On-Chip Debugger 0.12.0", "pyocd": "0.46.0"}.get(name, "GNU gdb 13.1"))
    sys.exit(0)
state = Path(os.environ["SWD_STATE"])
with (state / "calls").open("a") as log:
    log.write(json.dumps([name, *args]) + "\n")


def gdb_port() -> int | None:
    if name == "openocd":
        ports = [a.split()[1] for a in args if a.startswith("gdb_port ")]
        return int(ports[0]) if ports else None
    if name == "pyocd" and args[:1] == ["gdbserver"]:
        return int(args[args.index("--port") + 1])
    return None


if name.startswith("gdb"):
    remote = [a for a in args if a.startswith("target extended-remote ")]
    if remote:
        host, port = remote[0].split()[-1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5):
            (state / "connected").write_text(remote[0])
    status = state / "gdb-status"
    sys.exit(int(status.read_text()) if status.exists() else 0)

port = gdb_port()
if port is None:  # flashing: program / load / erase
    if (state / "fail").exists():
        print((state / "fail").read_text(), flush=True)
        sys.exit(1)
    print("** Programming Finished **" if name == "openocd" else "[====] 100%", flush=True)
    sys.exit(0)
if (state / "fail").exists():
    print((state / "fail").read_text(), flush=True)
    sys.exit(1)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(4)
(state / "server.pid").write_text(str(os.getpid()))
print(f"Info : Listening on port {port} for gdb connections", flush=True)
while True:
    conn, _ = server.accept()
    time.sleep(0.05)
    conn.close()
