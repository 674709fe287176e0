"""The farm as a labgrid lab: the exporter's configuration, the ser2net it runs, the places.

- :func:`exporter_config`: per board a group named after its place, with a
  ``RawSerialPort`` (the pty; the exporter serves it through ser2net in RFC 2217 mode
  while the place is acquired) and, for a board with a QMP socket, a
  ``NetworkPowerPort`` (model ``rest``, the power service of :mod:`.power`);
- :func:`register_places`: places ``pyb-1`` .. ``pyb-N`` at the coordinator, each
  matching its board's group and tagged (``board=PYBV10_QEMU`` by default);
- :func:`ser2net_wrapper`: the ``ser2net`` the exporter finds first on its ``PATH``.

**No Nagle on the serial hop.** labgrid's exporter starts ser2net with a plain ``tcp``
accepter, so ser2net's small writes to the client wait for the client's delayed ACK
(Nagle's algorithm): the raw REPL's short exchanges (``OK``, output, ``\\x04``) then cost
~100 ms a test (measured here: ``-k basics`` on one place 49-57 s against 20 s on its
pty). The wrapper runs the real ser2net with ``tcp(nodelay)``, and the same run takes
23 s (1.15x). A lab's own exporter host can do the same.

**ser2net goes with its exporter.** The exporter does not stop its ser2net children when
it is told to stop; the wrapper asks the kernel to send ser2net SIGTERM when its parent,
the exporter, ends (``PR_SET_PDEATHSIG``, kept across ``exec``), so stopping the
exporter is enough.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from mpforge.core.errors import FarmError, MissingTool
from mpforge.device.coordinator import Session
from mpforge.device.farm.state import FarmBoard, FarmState


def require_labgrid() -> None:
    try:
        import labgrid  # noqa: F401
    except ImportError:
        raise FarmError("labgrid is not installed", "pip install -e '.[farm]' (labgrid from PyPI)") from None


def ser2net_path() -> str:
    """The ser2net the exporter will run (labgrid also looks in /usr/sbin, which is not on
    every user's PATH), or :class:`MissingTool`."""
    found = shutil.which("ser2net") or ("/usr/sbin/ser2net" if os.access("/usr/sbin/ser2net", os.X_OK) else None)
    if not found:
        raise MissingTool("ser2net", "missing host tool ser2net (labgrid's exporter serves serial ports with it)",
                          "apt-get install ser2net (`invoke doctor` lists it)")
    return found


#: what labgrid's exporter hands ser2net as the accepter, and what the wrapper makes of it
ACCEPTER = "telnet(rfc2217,mode=server),tcp,"
ACCEPTER_NODELAY = "telnet(rfc2217,mode=server),tcp(nodelay),"


def ser2net_wrapper(folder: Path) -> Path:
    """Write ``folder/bin/ser2net``: the real ser2net (:func:`ser2net_path`) with its
    accepter's TCP ``nodelay`` on, ended with the exporter (see the module docstring);
    returns the folder to put first on the exporter's ``PATH``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "ser2net"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "# mpforge's farm: labgrid's ser2net command with TCP nodelay on its accepter, ended with its exporter\n"
        "import ctypes, os, signal, sys\n"
        "parent = os.getppid()\n"
        "ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG\n"
        "if os.getppid() != parent:\n"
        "    sys.exit(1)  # the exporter is already gone\n"
        f"real = {ser2net_path()!r}\n"
        f"args = [a.replace({ACCEPTER!r}, {ACCEPTER_NODELAY!r}) for a in sys.argv[1:]]\n"
        "os.execv(real, [real, *args])\n")
    wrapper.chmod(0o755)
    return bin_dir


def exporter_config(boards: list[FarmBoard], power_url: str | None) -> str:
    """The exporter's YAML (see the module docstring).

    labgrid reads the file as a Jinja2 template: no line may start with ``#``.
    """
    lines: list[str] = []
    for board in boards:
        lines += [f"{board.place}:", "  RawSerialPort:", f"    port: {board.pty}", "    speed: 115200"]
        if board.qmp and power_url:
            lines += ["  NetworkPowerPort:", "    model: rest",
                      f"    host: '{power_url}/board/{{index}}/power'", f"    index: {board.index}"]
    return "\n".join(lines) + "\n"


def exported(session: Session, state: FarmState) -> bool:
    """Whether the exporter's groups for every board have reached the coordinator."""
    session.pause(0.05)
    groups = session.session.resources.get(state.exporter, {})
    return all(b.place in groups for b in state.boards)


def register_places(session: Session, state: FarmState) -> None:
    """Create a place per board, matching its group, tagged ``state.tags``."""
    for board in state.boards:
        session.create_place(board.place, f"{state.exporter}/{board.place}/*", state.tags)
    session.sync()
