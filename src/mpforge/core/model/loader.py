"""The one loader of data files: read safely, parse, validate against a model, fail in one line.

Every data file (a port, a toolchain, the host tools, an app's ``mpforge.toml``) goes
through :func:`load`:

1. :func:`read_text` opens it without blocking and refuses anything that is not a
   regular file (a link to ``/dev/zero``, a FIFO, a folder) or is larger than
   :data:`MAX_BYTES`, and anything that is not UTF-8 text;
2. ``tomllib`` parses it;
3. the model (a pydantic dataclass of :mod:`mpforge.core.model`) validates it.

A problem is a :class:`~mpforge.core.errors.DataFileError`: one line naming the file,
the key as a dotted path (``make.post[0]``), what was expected (read from the model's
JSON Schema, so it says what an editor says) and what was found; its hint is the key's
own doc. A file with several problems reports the first (and says how many more).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from mpforge.core.errors import ConfigError, DataFileError

#: the largest data file read (the biggest shipped one is under 10 KiB)
MAX_BYTES = 1 << 20

T = TypeVar("T")

_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_text(path: Path, shown: str) -> str:
    """The text of the data file ``path`` (called ``shown`` in messages), read safely.

    Opened with ``O_NONBLOCK`` (a FIFO cannot hang the open), then refused unless it is
    a regular file (links are followed: a link to a port file is fine, a link to
    ``/dev/zero`` is not) of at most :data:`MAX_BYTES`, holding UTF-8 text.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ConfigError(f"{shown}: no such file", f"create {path} or fix the name") from exc
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot be read ({exc.strerror})", f"check {path}") from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise ConfigError(f"{shown}: is {kind}, not a regular file",
                              "a data file is a plain TOML file")
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_BYTES // 1024} KiB, too large for a data file",
                          "a data file is a short TOML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                          "a data file is TOML, which is UTF-8 text") from exc


def parse_toml(text: str, shown: str) -> dict[str, Any]:
    """``text`` parsed as TOML, or a :class:`ConfigError` naming ``shown`` and the place."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: invalid TOML: {exc}", f"fix {shown}") from exc


def load(model: type[T], path: Path, shown: str) -> T:
    """The data file ``path`` read, parsed and validated as ``model``."""
    return validate(model, parse_toml(read_text(path, shown), shown), shown)


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def adapter(model: type[Any]) -> TypeAdapter[Any]:
    """pydantic's validator (and schema writer) of ``model``, built once per model."""
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]


def validate(model: type[T], data: dict[str, Any], shown: str) -> T:
    """``data`` (a parsed file) as ``model``, or a :class:`DataFileError` in one line."""
    try:
        value: T = adapter(model).validate_python(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise _one_line(adapter(model).json_schema(), data, errors[0], shown, len(errors) - 1) from None
    return value


# --- one error, one line --------------------------------------------------------------

def dotted(keys: list[str | int]) -> str:
    """``["make", "post", 0]`` as ``make.post[0]`` (a key that is no bare TOML key quoted)."""
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            bare = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
            text += f".{bare}" if text else bare
    return text


def shown_value(value: Any) -> str:
    """``value`` as TOML would write it, on one line and at most about 60 characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        text = "[" + ", ".join(shown_value(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Schema:
    """A JSON Schema with its ``$defs``, walked key by key."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.root = self.resolve(schema)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """``node`` with ``$ref`` followed and ``X | None`` (no null in TOML) unwrapped to ``X``."""
        while True:
            if "$ref" in node:
                node = self.defs[node["$ref"].rsplit("/", 1)[-1]]
                continue
            members = [m for m in node.get("anyOf", []) if m.get("type") != "null"]
            if "anyOf" in node and len(members) == 1:
                node = members[0]
                continue
            return node

    def describe(self, node: dict[str, Any], plural: bool = False) -> str:
        """What ``node`` accepts, in words: ``a list of strings``, ``an integer >= 0``."""
        node = self.resolve(node)
        union = node.get("anyOf") or node.get("oneOf")
        if union:
            return " or ".join(self.describe(m, plural) for m in union if m.get("type") != "null")
        if "enum" in node:
            shown = [json.dumps(v) for v in node["enum"] if v != ""]
            return "one of " + ", ".join(shown) + (" (or empty)" if "" in node["enum"] else "")
        kind = node.get("type")
        if kind == "string":
            words = "strings" if plural else "a string"
            if "pattern" in node:
                return words + (" of printable characters" if r"\x00-\x1f" in node["pattern"]
                                else f" matching {node['pattern']}")
            return words
        if kind == "integer":
            words = "integers" if plural else "an integer"
            if "minimum" in node and "maximum" in node:
                return f"{words} from {node['minimum']} to {node['maximum']}"
            if "maximum" in node:
                return f"{words} <= {node['maximum']}"
            return words + (f" >= {node['minimum']}" if "minimum" in node else "")
        if kind == "boolean":
            return "true or false"
        if kind == "array":
            words = ("lists" if plural else "a list") if not node.get("minItems") else \
                ("non-empty lists" if plural else "a non-empty list")
            items = node.get("items")
            return f"{words} of {self.describe(items, True)}" if items else words
        if kind == "object":
            words = "tables" if plural else "a table"
            extra = node.get("additionalProperties")
            if isinstance(extra, dict) and not node.get("properties"):
                return f"{words} of {self.describe(extra, True)}"
            return words
        return "a value"


def _one_line(schema: dict[str, Any], data: Any, error: Any, shown: str, more: int) -> DataFileError:
    """The pydantic ``error`` as one line: file, dotted key, expected (from ``schema``), got."""
    walker = _Schema(schema)
    node = walker.root
    keys: list[str | int] = []
    value: Any = data
    loc = list(error["loc"])
    kind = error["type"]
    doc = ""
    tail = f"; {more} more problem{'s' if more > 1 else ''} in the file" if more else ""
    for index, part in enumerate(loc):
        if part == "[key]":
            name = keys[-1]
            expected = walker.describe(node.get("propertyNames", {"type": "string"}))
            return DataFileError(shown, dotted(keys), f"a key that is {expected}", json.dumps(name),
                                 f"rename it{tail}")
        following = loc[index + 1] if index + 1 < len(loc) else None
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        if extra is None and node.get("patternProperties"):  # a table of names matching a pattern
            pattern, extra = next(iter(node["patternProperties"].items()))
            if isinstance(part, str) and not re.search(pattern, part):
                return DataFileError(shown, dotted([*keys, part]), f"a name matching {pattern}",
                                     json.dumps(part), f"rename it{tail}")
        if isinstance(part, int) and node.get("type") == "array":
            node = walker.resolve(node.get("items", {}))
        elif isinstance(part, str) and part in props:
            doc = props[part].get("description", "")  # the key's doc (a value inside keeps it)
            node = walker.resolve(props[part])
        elif isinstance(part, str) and isinstance(extra, dict):
            if following == "[key]":
                keys.append(part)
                continue
            node = walker.resolve(extra)
        elif "anyOf" in node or "oneOf" in node:
            break  # a union's member label: the error is said at the union, in its own words
        else:
            near = difflib.get_close_matches(str(part), list(props), n=1)
            where = f"[{dotted(keys)}]" if keys else "the top level"
            hint = f"did you mean '{near[0]}'?" if near else f"keys of {where}: {', '.join(props)}"
            return DataFileError(shown, dotted([*keys, part]), f"a key of {where}", "an unknown key",
                                 hint + tail, unknown=True)
        keys.append(part)
        if kind != "missing":
            value = value[part] if isinstance(value, (dict, list)) else value
    doc = doc.split("\n")[0]
    expected = walker.describe(node)
    if kind == "missing":
        return DataFileError(shown, dotted(keys), expected, "nothing", (doc or f"add it to {shown}") + tail,
                             missing=True)
    return DataFileError(shown, dotted(keys), expected, shown_value(value), (doc or f"fix {shown}") + tail)
