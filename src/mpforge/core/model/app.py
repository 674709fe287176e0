"""An app folder's ``mpforge.toml`` (every key optional).

The loader (:mod:`mpforge.core.appfile`) reads it through this model, then checks
what the model cannot: that every path is inside the app folder (symlinks resolved),
that each module is there and ``import`` can reach it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from mpforge.core.model.base import TABLE, OneLine, Str


@dataclass(frozen=True, config=TABLE)
class AppFile:
    """An app: what a product adds to a port (frozen Python, C modules, a board folder, make
    variables), described by ``mpforge.toml`` in the app's folder."""

    name: OneLine | None = None
    """the app's name (default: the folder's); printable characters only, on one line"""
    modules: list[Str] | None = None
    """what to freeze, relative to the app folder: ``.py`` files and package folders
    (default: every top-level ``.py`` file and package)"""
    board_dir: Str = ""
    """a board folder inside the app folder, for ports that take one (``boards/THERMO_V1``)"""
    c_modules: list[Str] = Field(default_factory=list)
    """folders of C sources inside the app folder, each defining ``mp_module_<folder name>``"""
    make_vars: dict[Str, Str] = Field(default_factory=dict)
    """more make variables (they replace the port's of the same name)"""
