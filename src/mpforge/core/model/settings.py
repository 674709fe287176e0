"""The ``mpforge:`` section of invoke's configuration (``invoke.yaml``): the options every
task shares, each declared once here with its type and doc.

:mod:`mpforge.cli.options` merges them with the task's flags and the ``MPFORGE_*``
environment; this module only says which keys the section takes and reads it through
the one loader (:func:`~mpforge.core.model.loader.validate`): an unknown key or a
value of the wrong type is one line naming the file, the key (``mpforge.jobs``), what
was expected and what was found.

Unlike a TOML data file, YAML has a null (``mirror: ~``): every key may be null, which
means "not set here" (as does ``jobs: 0``, the built-in default).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StrictInt
from pydantic.dataclasses import dataclass

from mpforge.core.environment import MAX_JOBS
from mpforge.core.model.base import TABLE, Bool, Str
from mpforge.core.model.loader import validate

#: the section of invoke's configuration that holds mpforge's shared options
SECTION = "mpforge"

#: parallel jobs: 0 (the CPU count) to :data:`~mpforge.core.environment.MAX_JOBS`
Jobs = Annotated[StrictInt, Field(ge=0, le=MAX_JOBS)]


@dataclass(frozen=True, config=TABLE)
class MpforgeSettings:
    """``mpforge:``: the options every task shares (a task's flag and the ``MPFORGE_*``
    variable come first, then this section, then the built-in default)."""

    mirror: Str | None = None
    """a mirror laid out like https://github.com/ for every clone: a URL, or a folder
    (relative to the checkout); ``none``: no mirror (flag ``--mirror``, variable ``MPFORGE_MIRROR``)"""
    jobs: Jobs | None = None
    """parallel jobs; 0: the CPU count (flag ``--jobs``/``-j``, variable ``MPFORGE_JOBS``)"""
    ccache: Bool | None = None
    """compile through ccache when it is installed (flag ``--no-ccache``, variable ``MPFORGE_CCACHE``)"""
    ccache_remote: Str | None = None
    """ccache's remote storage shared by a team: ``redis://HOST:PORT``, ``http://HOST/PATH/``
    (``|read-only`` ...); none: the local cache only (flag ``--ccache-remote``, variable
    ``MPFORGE_CCACHE_REMOTE``)"""
    verbose: Bool | None = None
    """show every command run (flag ``--verbose``/``-v``, variable ``MPFORGE_VERBOSE``)"""
    debug: Bool | None = None
    """tracebacks on errors (flag ``--debug``, variable ``MPFORGE_DEBUG``)"""

    def given(self) -> dict[str, Any]:
        """The keys set here: a null, ``jobs: 0`` and an empty ``mirror`` or ``ccache_remote``
        (the built-in defaults) are left out."""
        values = {key: value for key, value in asdict(self).items() if value is not None}
        return {key: value for key, value in values.items() if value or isinstance(value, bool)}


@dataclass(frozen=True, config=ConfigDict(extra="allow", use_attribute_docstrings=True))
class InvokeFile:
    """invoke's configuration (``invoke.yaml``, ``~/.invoke.yaml``): invoke's own keys, and
    mpforge's section."""

    mpforge: MpforgeSettings | None = None
    """the options every mpforge task shares"""


#: the names of the section's keys, in their order
KEYS = tuple(MpforgeSettings.__dataclass_fields__)


def read_section(section: Any, shown: str) -> dict[str, Any]:
    """The ``mpforge:`` section ``section`` (as invoke's configuration holds it; None when
    absent) checked against :class:`MpforgeSettings`; the keys it sets, with their values.

    Raises :class:`~mpforge.core.errors.DataFileError` naming ``shown``: an unknown key
    (``mpforge.job``), a value of the wrong type (``mpforge.jobs: expected an integer from
    0 to 4096, got "many"``), or a section that is no table."""
    if section is None:
        return {}
    data = dict(section) if isinstance(section, dict) else section
    settings = validate(InvokeFile, {SECTION: data}, shown).mpforge
    return settings.given() if settings is not None else {}
