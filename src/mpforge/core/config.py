"""Port, toolchain and host-tool definitions, loaded from TOML data (the public names).

Facts about ports live in ``ports/<port>.toml`` and facts about compilers in
``toolchains/<name>.toml``; code reads them here and never branches on a port
name. Board lists are not copied into the data: a port says where its boards
live in the tree (``boards.discover``), and :meth:`PortDef.boards` reads that
folder.

String values may contain placeholders, filled by :func:`expand`:

``{tree}``      the MicroPython tree (``micropython/``)
``{port_dir}``  the port's make directory inside the tree
``{root}``      the mpforge checkout
``{build}``     the target's folder under ``build/`` (logs, stamps, moved artifacts)
``{obj}``       the make build directory inside it (``{build}/obj``, or
                ``{build}/obj/<pass>`` for ports built in several make passes)
``{board}``     the board name (empty for board-less ports)
``{prefix}``    a deplib's install prefix (deplib steps only)
``{cross}``     the toolchain's ``CROSS_COMPILE`` prefix
``{cc}``        the toolchain's C compiler (``{cross}gcc``)
``{cc_flags}``  the toolchain's own compiler flags (the reproducibility prefix map)
``{toolchain_dir}`` the toolchain's install folder (the parent of its ``bin/``)
``{dist_root}``  the ``dist/`` folder (to use another target's artifact)
``{deplibs}``    the port's deplib folder (``build/deplibs/<port>``)
``{src-NAME}``   the checkout of the port's pinned source NAME

The model itself (every key of every file, its type and its doc; the one loader; the
JSON Schemas) is the package :mod:`mpforge.core.model`. This module is the name the
rest of mpforge imports it by, and holds what is not the files' model: placeholders
(:func:`expand`) and the version pattern of tool probes. (invoke.yaml's ``mpforge:``
section has its model too: :mod:`mpforge.core.model.settings`.)
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from mpforge.core.errors import ConfigError
from mpforge.core.model.catalog import Catalog
from mpforge.core.model.defs import (
    ArtifactDef,
    DebugDef,
    DeplibDef,
    EmulatorDef,
    FlashDef,
    MakePass,
    OpenOcdDef,
    PortDef,
    PyOcdDef,
    RunVariantDef,
    SizeRegion,
    SourceDef,
    SuiteDef,
    TestDef,
    ToolchainDef,
    ToolDef,
    VariantDef,
)

__all__ = ["VERSION_RE", "ArtifactDef", "Catalog", "DebugDef", "DeplibDef", "EmulatorDef", "FlashDef",
           "MakePass", "OpenOcdDef", "PortDef", "PyOcdDef", "RunVariantDef", "SizeRegion", "SourceDef",
           "SuiteDef", "TestDef", "ToolDef", "ToolchainDef", "VariantDef", "expand"]

VERSION_RE = re.compile(r"(\d+\.\d+(?:\.\d+)*(?:\.rel\d+)?)")


def expand(value: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders; an unknown name is a :class:`ConfigError`."""
    try:
        return string.Formatter().vformat(value, (), dict(values))
    except KeyError as exc:
        raise ConfigError(f"unknown placeholder {{{exc.args[0]}}} in {value!r}",
                          f"use one of: {', '.join(sorted(values))}") from exc
