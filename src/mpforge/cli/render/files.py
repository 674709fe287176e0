"""Result files that every consumer can load, whatever a test printed.

A test's output is whatever the program under test wrote: a failing test's
diff may hold a backspace, an ANSI colour sequence (``\\x1b[31m``) or a NUL.
XML 1.0 forbids most C0 control characters outright (even as ``&#1;``), so a
JUnit file that carries them raw is not XML at all: ElementTree, junitparser,
Jenkins and GitLab all refuse the *whole* file, and one odd test hides every
other result.

Everything mpforge writes into a report therefore goes through
:func:`readable`, which replaces each character a report cannot or should not
carry by its Python escape, spelled out: ESC becomes the four characters
``\\x1b``, a carriage return ``\\r``. The text stays readable (a diff line that
differs only by a stray ``\\r`` now *shows* the difference) and the mapping
never fails. It is one-way: a literal backslash is left as it is.

The JUnit writers build their trees with :func:`element`, which applies
:func:`readable` to every attribute value and text, so no caller can forget
it; :func:`xml_text` serialises a tree; :func:`json_clean` does the same job
for JSON documents (JSON could escape the characters itself, but the same text
in both files is easier to compare, and a lone surrogate is refused by strict
JSON parsers).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from mpforge.core.errors import ReportError

#: What a report does not carry raw: the C0 controls but tab and newline (XML 1.0
#: forbids all of them but CR, and XML parsers turn a CR into a newline, so it is
#: escaped too), DEL and the C1 controls (allowed, but invisible and discouraged),
#: lone surrogates, and the two non-characters U+FFFE and U+FFFF.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def readable(text: str) -> str:
    """``text`` with every character a report must not carry raw spelled out as an escape.

    >>> readable("a\\x1b[31mred\\x08\\r\\n")
    'a\\\\x1b[31mred\\\\x08\\\\r\\n'
    """
    return _UNSAFE.sub(_escape, text)


def element(parent: ET.Element | None, tag: str, attrs: Mapping[str, object] | None = None,
            text: str | None = None) -> ET.Element:
    """A new XML element (under ``parent`` when given) whose attributes and text are
    :func:`readable`; attribute values may be any object (``str()`` is applied)."""
    safe = {key: readable(str(value)) for key, value in (attrs or {}).items()}
    node = ET.Element(tag, safe) if parent is None else ET.SubElement(parent, tag, safe)
    if text is not None:
        node.text = readable(text)
    return node


def xml_text(root: ET.Element) -> str:
    """The document for ``root``, with its XML declaration and a final newline."""
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def json_clean(data: object) -> object:
    """A copy of a JSON-able structure with :func:`readable` applied to every string
    (keys included)."""
    if isinstance(data, str):
        return readable(data)
    if isinstance(data, Mapping):
        return {json_clean(key): json_clean(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_clean(value) for value in data]
    return data


def write_files(files: Mapping[Path, str]) -> None:
    """Write each file (UTF-8, parent folders created); one that cannot be written does
    not stop the others, and all failures are raised together afterwards as a
    :class:`ReportError`."""
    failed: list[str] = []
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror or exc}")
    if failed:
        raise ReportError(f"could not write {len(failed)} result file(s): {'; '.join(failed)}",
                          "check the path and its permissions")
