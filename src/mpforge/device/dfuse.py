"""DfuSe files (ST's DFU file format, what stmhal's ``firmware.dfu`` is): read, check, write.

Layout (all little-endian)::

    prefix   "DfuSe" u8 version=1 u32 image_size u8 n_targets          (11 bytes)
    target   "Target" u8 alt u32 named char[255] name u32 size u32 n_elements
      element  u32 address u32 size bytes[size]          (n_elements times)
    suffix   u16 bcdDevice u16 idProduct u16 idVendor u16 bcdDFU=0x011A
             "UFD" u8 length=16 u32 crc                                (16 bytes)

``crc`` is the complement of the CRC-32 of every byte before it. Nothing is
flashed from a file that does not pass :func:`check`: it must parse exactly,
carry the board's USB id, and put every element inside the board's flash.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from mpforge.core.errors import DfuSeError

PREFIX = struct.Struct("<5sBIB")
TARGET = struct.Struct("<6sBI255sII")
ELEMENT = struct.Struct("<II")
SUFFIX = struct.Struct("<HHHH3sBI")


@dataclass
class Element:
    address: int
    data: bytes


@dataclass
class Target:
    alt: int
    name: str
    elements: list[Element] = field(default_factory=list)


@dataclass
class DfuSeFile:
    targets: list[Target]
    vid: int
    pid: int
    device: int


def parse(data: bytes, what: str = "file") -> DfuSeFile:
    """Read a DfuSe file; :class:`DfuSeError` names the first thing wrong."""
    def bad(problem: str) -> DfuSeError:
        return DfuSeError(f"{what} is not a valid DfuSe file: {problem}",
                          "rebuild it with `invoke build`, and do not flash it")

    if len(data) < PREFIX.size + SUFFIX.size:
        raise bad(f"only {len(data)} bytes")
    device, pid, vid, bcd_dfu, ufd, length, crc = SUFFIX.unpack(data[-SUFFIX.size:])
    if ufd != b"UFD" or length != 16 or bcd_dfu != 0x011A:
        raise bad("no DFU suffix")
    if crc != (~zlib.crc32(data[:-4]) & 0xFFFFFFFF):
        raise bad("CRC mismatch (the file is damaged)")
    signature, version, image_size, n_targets = PREFIX.unpack_from(data)
    if signature != b"DfuSe" or version != 1:
        raise bad("no DfuSe prefix")
    if image_size != len(data) - SUFFIX.size:
        raise bad(f"image size {image_size} does not match the file ({len(data) - SUFFIX.size})")
    offset, targets = PREFIX.size, []
    for _ in range(n_targets):
        if offset + TARGET.size > image_size:
            raise bad("truncated target header")
        sig, alt, named, name, size, n_elements = TARGET.unpack_from(data, offset)
        if sig != b"Target":
            raise bad(f"no target signature at offset {offset}")
        offset += TARGET.size
        end = offset + size
        target = Target(alt, name.rstrip(b"\0").decode("latin-1") if named else "")
        for _ in range(n_elements):
            if offset + ELEMENT.size > end:
                raise bad("truncated element header")
            address, length = ELEMENT.unpack_from(data, offset)
            offset += ELEMENT.size
            if offset + length > end:
                raise bad(f"element at {address:#010x} runs past its target")
            target.elements.append(Element(address, data[offset:offset + length]))
            offset += length
        if offset != end:
            raise bad("target size does not match its elements")
        targets.append(target)
    if offset != image_size:
        raise bad(f"{image_size - offset} stray bytes after the last target")
    return DfuSeFile(targets, vid, pid, device)


def check(dfu: DfuSeFile, *, usb_id: tuple[int, int], flash: list[tuple[int, int]],
          what: str = "file") -> None:
    """Refuse a file for another board: wrong USB id, or an element outside ``flash``
    (a list of ``(start, size)`` regions)."""
    if (dfu.vid, dfu.pid) != usb_id:
        raise DfuSeError(f"{what} is for USB device {dfu.vid:04x}:{dfu.pid:04x}, "
                         f"not this board's {usb_id[0]:04x}:{usb_id[1]:04x}",
                         "build the firmware for this board")
    if not dfu.targets or not any(t.elements for t in dfu.targets):
        raise DfuSeError(f"{what} holds no firmware", "rebuild it with `invoke build`")
    for target in dfu.targets:
        for element in target.elements:
            end = element.address + len(element.data)
            if not any(start <= element.address and end <= start + size for start, size in flash):
                raise DfuSeError(f"{what} writes {element.address:#010x}..{end:#010x}, outside this "
                                 f"board's flash", "build the firmware for this board (MCU)")


def write(targets: list[Target], vid: int, pid: int, device: int = 0) -> bytes:
    """Make a DfuSe file (tests use it to craft good and broken files)."""
    body = b""
    for target in targets:
        elements = b"".join(ELEMENT.pack(e.address, len(e.data)) + e.data for e in target.elements)
        name = target.name.encode("latin-1")
        body += TARGET.pack(b"Target", target.alt, 1 if name else 0, name, len(elements),
                            len(target.elements)) + elements
    data = PREFIX.pack(b"DfuSe", 1, PREFIX.size + len(body), len(targets)) + body
    data += SUFFIX.pack(device, pid, vid, 0x011A, b"UFD", 16, 0)[:-4]
    return data + struct.pack("<I", ~zlib.crc32(data) & 0xFFFFFFFF)
