"""``toolchains/<name>.toml`` (a C toolchain) and ``toolchains/host-tools.toml`` (host programs).

A toolchain's name is its file's; a host tool's name is its table's (``[tools.git]``).
The typed objects the code uses are ``ToolchainDef`` and ``ToolDef``
(:mod:`mpforge.core.model.defs`), which add those names and the default probes.
"""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from mpforge.core.model.base import TABLE, Str


@dataclass(frozen=True, config=TABLE)
class ToolchainFile:
    """A C toolchain: ``toolchains/<name>.toml`` (the ``CROSS_COMPILE`` prefix, its version
    probe, the Debian packages that install it)."""

    description: Str = ""
    """one line on the toolchain"""
    cross_compile: Str = ""
    """the ``CROSS_COMPILE`` prefix (``arm-none-eabi-``; empty for the host's compiler)"""
    probe: list[Str] = Field(default_factory=list)
    """the command that prints its version (default: ``{cross_compile}gcc -dumpfullversion``)"""
    debian: list[Str] = Field(default_factory=list)
    """the Debian packages that install it"""
    hint: Str = ""
    """how to install it where Debian does not package it"""
    make_vars: dict[Str, Str] = Field(default_factory=dict)
    """make variables every build with it takes"""
    cc_flags: list[Str] = Field(default_factory=list)
    """its own compiler flags (``{cc_flags}``: the reproducibility prefix map, ``-g``)"""
    path_env: Str = ""
    """an environment variable naming its install folder (``XC16_DIR``)"""
    path_subdir: Str = "bin"
    """the folder of its programs inside that install folder"""


@dataclass(frozen=True, config=TABLE)
class ToolTable:
    """``[tools.NAME]``: a host program some job needs (``git``, ``autoconf``, ``dfu-util``)."""

    probe: list[Str] = Field(default_factory=list)
    """the command that proves it is there (default: ``NAME --version``)"""
    debian: Str | list[Str] = Field(default_factory=list)
    """the Debian package, or packages, a clean system needs for it to do its job"""
    hint: Str = ""
    """how to install it where Debian does not package it (``pip install pyocd``)"""
    purpose: Str = ""
    """what it is for, shown when it is missing"""


@dataclass(frozen=True, config=TABLE)
class ProjectTable:
    """``[project]``: what every port needs, whatever it builds."""

    tools: list[Str] = Field(default_factory=list)
    """host tools every port needs (names of ``[tools]``)"""


@dataclass(frozen=True, config=TABLE)
class HostToolsFile:
    """Host programs jobs need, with the Debian packages that provide each:
    ``toolchains/host-tools.toml``."""

    project: ProjectTable = Field(default_factory=ProjectTable)
    """what every port needs"""
    tools: dict[Str, ToolTable] = Field(default_factory=dict)
    """every host tool, by name"""
