"""usb.core as pydfu uses it: ``find()`` and a device in DfuSe mode (see the package)."""

from __future__ import annotations

import atexit
import json
import os
import struct

VID, PID = 0x0483, 0xDF11
#: the STM32F405's flash, as its DFU bootloader describes it (interface string)
LAYOUT = "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,07*128Kg"
DNLOAD, GETSTATUS, CLRSTATUS = 1, 3, 4
DN_BUSY, DN_IDLE, MANIFEST = 4, 5, 7


class Interface:
    bInterfaceClass = 0xFE  # application specific
    bInterfaceSubClass = 1  # DFU
    iInterface = 4


class Configuration:
    def __init__(self) -> None:
        self.interface = Interface()

    def __iter__(self):
        return iter([self.interface])

    def __getitem__(self, key):  # cfg[(0, 0)]: interface 0, alternate setting 0
        assert key == (0, 0), key
        return self.interface


def pages() -> list[tuple[int, int]]:
    """(start, size) of each flash page, from LAYOUT."""
    _, base, segments = LAYOUT.split("/")
    address, out = int(base, 16), []
    for segment in segments.split(","):
        count, size = segment.split("*")
        size_bytes = int(size[:-2]) * 1024
        for _ in range(int(count)):
            out.append((address, size_bytes))
            address += size_bytes
    return out


class Device:
    idVendor, idProduct = VID, PID

    def __init__(self, address: int) -> None:
        self.bus, self.address = 1, address
        self.config = Configuration()
        self.strings = {4: LAYOUT}
        self.claimed = self.disposed = False
        self.pointer = 0x08000000
        self.pending: str | None = None  # the state the next GETSTATUS reports
        self.story = {"erased": [], "mass_erase": False, "writes": [], "left": False,
                      "errors": []}
        self.erased: set[int] = set()  # pages erased since this session began

    def __iter__(self):
        return iter([self.config])

    def __getitem__(self, index):
        return self.config

    def page_of(self, address: int) -> int | None:
        return next((start for start, size in pages() if start <= address < start + size), None)

    def ctrl_transfer(self, request_type, request, value, index, data=None, timeout=None):
        if not self.claimed:
            self.story["errors"].append("transfer before claim_interface")
        if request == GETSTATUS:
            state = {"busy": DN_BUSY, "idle": DN_IDLE, "manifest": MANIFEST}.get(self.pending, 2)
            self.pending = {"busy": "idle"}.get(self.pending, self.pending)
            return bytes([0, 0, 0, 0, state, 0])
        if request == CLRSTATUS:
            return None
        if request != DNLOAD:
            self.story["errors"].append(f"unexpected request {request}")
            return None
        if isinstance(data, str):  # Python 2's bytes, as the unpatched mass erase sends them
            data = data.encode("latin-1")
        data = bytes(data or b"")
        if value == 0 and not data:  # leave DFU mode (after a set-address to the start)
            self.story["left"] = True
            self.pending = "manifest"
            return 0
        self.pending = "busy"
        if value == 0 and data[:1] == b"\x21":
            (self.pointer,) = struct.unpack("<I", data[1:5])
        elif value == 0 and data == b"\x41":
            self.story["mass_erase"] = True
            self.erased = {start for start, _ in pages()}
        elif value == 0 and data[:1] == b"\x41":
            (page,) = struct.unpack("<I", data[1:5])
            if self.page_of(page) != page:
                self.story["errors"].append(f"erase of 0x{page:08x}: not a page start")
            self.erased.add(page)
            self.story["erased"].append(page)
        elif value >= 2:
            address = self.pointer + (value - 2) * len(data)
            if self.page_of(address) not in self.erased:
                self.story["errors"].append(f"write to 0x{address:08x}: page not erased")
            self.story["writes"].append([address, data.hex()])
        else:
            self.story["errors"].append(f"unknown DNLOAD {value} {data[:8].hex()}")
        return len(data)


_devices = [Device(5 + i) for i in range(int(os.environ.get("FAKE_USB_DEVICES", "1")))]


def _save() -> None:
    path = os.environ.get("FAKE_USB_STATE")
    if path:
        with open(path, "w") as fh:
            json.dump([d.story for d in _devices], fh)


atexit.register(_save)


def find(*, find_all=False, custom_match=None, idVendor=None, idProduct=None, **other):
    found = [d for d in _devices
             if (idVendor is None or d.idVendor == idVendor)
             and (idProduct is None or d.idProduct == idProduct)
             and (custom_match is None or custom_match(d))]
    return iter(found) if find_all else (found[0] if found else None)
