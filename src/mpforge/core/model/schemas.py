"""The JSON Schemas of ``schemas/``, written from the model: one per kind of data file.

======================  =====================================  ==================================
schema                  model                                  files
======================  =====================================  ==================================
``port``                :class:`~.ports.PortFile`              ``ports/*.toml``
``toolchain``           :class:`~.toolchains.ToolchainFile`    ``toolchains/*.toml``
``host-tools``          :class:`~.toolchains.HostToolsFile`    ``toolchains/host-tools.toml``
``app``                 :class:`~.app.AppFile`                 an app folder's ``mpforge.toml``
``invoke``              :class:`~.settings.InvokeFile`         ``invoke.yaml`` (its ``mpforge:``)
======================  =====================================  ==================================

Each schema is pydantic's (the same class validates the file and writes its schema),
with each key's doc as its ``description`` and ``additionalProperties: false`` on every
table (an unknown key is an error there as in the loader). Two changes make it fit a
TOML file: TOML has no null, so the ``null`` pydantic allows for an optional table
(``X | None = None``, meaning "absent") is left out, and so is the ``title`` pydantic
makes up for each key (``"Make Vars"``), which an editor would show above the doc.

``invoke schemas`` rewrites ``schemas/`` of the checkout;
``--check`` says which files differ from the model (``tests/core/test_schemas.py``
fails on any). This module only writes and compares (the library never prints).
Editors (taplo, Even Better TOML) find the schemas through the checkout's ``.taplo.toml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpforge.core.model.app import AppFile
from mpforge.core.model.loader import adapter
from mpforge.core.model.ports import PortFile
from mpforge.core.model.settings import InvokeFile
from mpforge.core.model.toolchains import HostToolsFile, ToolchainFile

#: the JSON Schema dialect pydantic writes
DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: the folder of the checkout that holds them
FOLDER = "schemas"


@dataclass(frozen=True)
class SchemaFile:
    """One schema: its name (``schemas/<name>.schema.json``), its model, the files it describes."""

    name: str
    model: type[Any]
    #: glob patterns of the files it describes, relative to the checkout
    files: tuple[str, ...]
    title: str
    #: glob patterns of files that match ``files`` but are not of this kind
    exclude: tuple[str, ...] = ()
    #: the files are TOML (no null); False for YAML, where ``key: ~`` means "not set"
    toml: bool = True

    @property
    def file_name(self) -> str:
        return f"{self.name}.schema.json"


SCHEMAS = (
    SchemaFile("port", PortFile, ("ports/*.toml",), "ports/<port>.toml"),
    SchemaFile("toolchain", ToolchainFile, ("toolchains/*.toml",), "toolchains/<name>.toml",
               exclude=("toolchains/host-tools.toml",)),
    SchemaFile("host-tools", HostToolsFile, ("toolchains/host-tools.toml",), "toolchains/host-tools.toml"),
    SchemaFile("app", AppFile, ("**/mpforge.toml",), "an app's mpforge.toml"),
    SchemaFile("invoke", InvokeFile, ("invoke.yaml",), "invoke.yaml (the mpforge: section)", toml=False),
)

# keywords whose value is one schema, a list of schemas, or a table of schemas by name
_ONE = ("items", "additionalProperties", "propertyNames", "not", "contains")
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
_BY_NAME = ("properties", "patternProperties", "$defs")


def _clean(node: Any, toml: bool) -> Any:
    """The schema ``node`` without made-up titles and, for ``toml``, without null."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in _ONE:
            out[key] = _clean(value, toml)
        elif key in _LIST:
            out[key] = [_clean(member, toml) for member in value]
        elif key in _BY_NAME:
            out[key] = {name: _clean(sub, toml) for name, sub in value.items()}
        else:
            out[key] = value
    if toml:
        if "anyOf" in out:
            members = [m for m in out["anyOf"] if m.get("type") != "null"]
            if len(members) == 1:  # ``X | None``: just X, with this node's doc and default
                del out["anyOf"]
                out = {**members[0], **out}
            else:
                out["anyOf"] = members
        if "default" in out and out["default"] is None:
            del out["default"]
    return out


def schema(entry: SchemaFile) -> dict[str, Any]:
    """The JSON Schema of ``entry``, as ``schemas/`` holds it."""
    body = _clean(adapter(entry.model).json_schema(), entry.toml)
    return {"$schema": DIALECT, "title": entry.title, **body}


def render(entry: SchemaFile) -> str:
    """The text of ``schemas/<name>.schema.json``: stable (keys in the model's order), one
    newline at the end."""
    return json.dumps(schema(entry), indent=2, ensure_ascii=False) + "\n"


def stale(folder: Path) -> list[str]:
    """The schema files of ``folder`` that differ from the model or are missing."""
    found = []
    for entry in SCHEMAS:
        path = folder / entry.file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(entry):
            found.append(entry.file_name)
    return found


def write(folder: Path) -> list[str]:
    """Write every schema into ``folder`` (made if need be); the files that changed."""
    changed = stale(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in SCHEMAS:
        if entry.file_name in changed:
            (folder / entry.file_name).write_text(render(entry), encoding="utf-8")
    return changed
