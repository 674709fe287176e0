"""The shape of the JSON documents mpforge writes and reads back: the parts it reads.

``dist/<target>/`` holds ``manifest.json``, ``sbom.spdx.json`` (SPDX 2.3) and
``provenance.intoto.json`` (an in-toto Statement); the patch transaction keeps its
``journal.json`` (:mod:`mpforge.tree.journal`). mpforge wrote them, but anyone may have
edited them since: before a field is used, the document is checked against the model
here, and a wrong type is one line naming the file and the key
(``manifest.json: artifacts[0].size: expected an integer, got "big"``), not a
traceback deep in the code that trusted it.

Only the fields mpforge reads are declared (``total=False``: a missing one is the
reader's business, each says what it does without it); any other key is allowed, an
older or newer mpforge may write more. Scalars are strict as in the data files'
model (:mod:`mpforge.core.model.base`): a string of digits is no size.
"""

from __future__ import annotations

from typing import Any, Required

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from mpforge.core.errors import DataFileError
from mpforge.core.model.base import Bool, Int, Str
from mpforge.core.model.loader import dotted, shown_value

OPEN = ConfigDict(extra="allow")


@with_config(OPEN)
class Artifact(TypedDict, total=False):
    name: Str
    sha256: Str
    size: Int


@with_config(OPEN)
class PatchEntry(TypedDict, total=False):
    name: Str
    sha256: Str


@with_config(OPEN)
class TreeFacts(TypedDict, total=False):
    commit: Str | None
    describe: Str
    is_pin_plus_series: Bool


@with_config(OPEN)
class Manifest(TypedDict, total=False):
    """``dist/<target>/manifest.json``."""
    target: Str
    port: Str
    board: Str | None
    variant: Str | None
    artifacts: list[Artifact]
    version: Str
    tree: TreeFacts
    patches: list[PatchEntry]
    inputs_key: Str
    make: list[dict[Str, Str]]
    make_targets: list[list[Str]]
    source_date_epoch: Int


@with_config(OPEN)
class Checksum(TypedDict, total=False):
    algorithm: Str
    checksumValue: Str


@with_config(OPEN)
class SpdxPackage(TypedDict, total=False):
    name: Str
    SPDXID: Str
    versionInfo: Str
    checksums: list[Checksum]


@with_config(OPEN)
class SpdxFile(TypedDict, total=False):
    fileName: Str
    SPDXID: Str
    checksums: list[Checksum]


@with_config(OPEN)
class Sbom(TypedDict, total=False):
    """``dist/<target>/sbom.spdx.json``."""
    spdxVersion: Str
    documentDescribes: list[Str]
    packages: list[SpdxPackage]
    files: list[SpdxFile]


@with_config(OPEN)
class Descriptor(TypedDict, total=False):
    name: Str
    digest: dict[Str, Str]


@with_config(OPEN)
class BuildDefinition(TypedDict, total=False):
    externalParameters: dict[Str, Any]
    resolvedDependencies: list[Descriptor]


@with_config(OPEN)
class Predicate(TypedDict, total=False):
    buildDefinition: BuildDefinition


@with_config(OPEN)
class Statement(TypedDict, total=False):
    """``dist/<target>/provenance.intoto.json`` (the in-toto Statement v1)."""
    _type: Str
    subject: list[Descriptor]
    predicateType: Str
    predicate: Predicate


@with_config(OPEN)
class JournalFile(TypedDict):
    before: Str | None
    after: Str | None


@with_config(OPEN)
class Journal(TypedDict, total=False):
    """``txn/journal.json`` of an interrupted patch transaction."""
    op: Str
    head: Str
    files: Required[dict[Str, JournalFile]]
    record: dict[Str, Any] | None


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def shape_error(model: Any, data: object) -> tuple[str, str, str] | None:
    """The first place ``data`` is not of ``model``'s shape: (dotted key, expected, got);
    None when it is."""
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    try:
        _ADAPTERS[model].validate_python(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        keys: list[str | int] = [p for p in error["loc"] if isinstance(p, (str, int))]
        value: Any = data
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                break
        expected = _EXPECTED.get(error["type"], error["msg"].lower().removeprefix("input should be "))
        return dotted(keys) or "(the whole document)", expected, shown_value(value)
    return None


def check_shape(model: Any, data: object, shown: str, hint: str = "") -> None:
    """:class:`DataFileError` in one line (file ``shown``, key, expected, got) when ``data``
    is not of ``model``'s shape."""
    found = shape_error(model, data)
    if found:
        raise DataFileError(shown, *found, hint)


_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "bool_type": "true or false",
    "list_type": "a list", "dict_type": "an object", "missing": "a value",
}

__all__ = ["Journal", "Manifest", "Sbom", "Statement", "check_shape", "shape_error"]
