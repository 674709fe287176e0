"""The project checkout: where the data, the tree, and the outputs live.

A :class:`Project` is the root of an mpforge checkout (the folder holding
``ports/``, ``toolchains/``, ``patches/`` and the ``micropython/``
submodule). Every job takes one. It also resolves "port + board" into a
:class:`Target` with its build and dist folders.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mpforge.core.config import Catalog, PortDef, ToolchainDef
from mpforge.core.environment import environment
from mpforge.core.errors import ConfigError, UnknownTarget
from mpforge.core.executor import Executor
from mpforge.core.paths import unsafe_path_char
from mpforge.core.report import NullReporter, Reporter

if TYPE_CHECKING:
    from mpforge.core.appfile import App

#: Where the tree lives inside the project, unless MPFORGE_TREE says otherwise.
TREE_DIR = "micropython"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that has ``ports/`` and ``toolchains/``.

    ``MPFORGE_ROOT`` overrides the search.
    """
    chosen = environment().root
    if chosen is not None:
        return chosen.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "ports").is_dir() and (folder / "toolchains").is_dir():
            return folder
    raise ConfigError(f"no mpforge project at or above {here}",
                      "run from the mpforge checkout, or set MPFORGE_ROOT")


@dataclass
class Target:
    """One buildable thing: a port, or a port with a board.

    ``board_dir`` is a board folder outside the tree (``--board-dir``; ``board`` is
    then its folder's name), ``app`` the user's code built in (``--app``): see
    :mod:`mpforge.firmware.app`. ``variant`` names one of the port's ``[variants]``
    (``coverage``, ``debug``): the same target built another way, under its own name.
    """

    port: PortDef
    board: str
    toolchain: ToolchainDef
    project: Project
    board_dir: Path | None = None
    app: App | None = None
    variant: str = ""

    @property
    def name(self) -> str:
        """``unix``, ``stmhal-PYBV10``, ``unix-coverage``: what names its build and dist folders."""
        base = self.port.target_name(self.board)
        return f"{base}-{self.variant}" if self.variant else base

    @property
    def port_dir(self) -> Path:
        return self.project.tree / self.port.make_dir

    @property
    def build_dir(self) -> Path:
        return self.project.build_root / self.name

    @property
    def dist_dir(self) -> Path:
        return self.project.dist_root / self.name

    @property
    def obj_dir(self) -> Path:
        return self.build_dir / "obj"

    @property
    def board_folder(self) -> Path:
        """The board's folder: ``board_dir``, or ``boards/<board>`` of the port in the tree."""
        return self.board_dir or self.port_dir / self.port.boards_dir / self.board

    def placeholders(self) -> dict[str, str]:
        return {
            "root": str(self.project.root),
            "obj": str(self.obj_dir),
            "tree": str(self.project.tree),
            "port_dir": str(self.port_dir),
            "build": str(self.build_dir),
            "board": self.board,
            "cross": self.toolchain.cross_compile,
            "cc": self.toolchain.cc,
            "cc_flags": " ".join(self.toolchain.cc_flags).replace("{root}", str(self.project.root)),
            "toolchain_dir": toolchain_home(self.toolchain),
            "dist_root": str(self.project.dist_root),
            "deplibs": str(self.project.deplibs_root / self.port.name),
            **{f"src-{s.name}": str(self.project.source_dir(s.name)) for s in self.port.sources},
        }


@dataclass
class Project:
    """An mpforge checkout plus the console and executor jobs report through.

    ``tree``, ``patches_dir``, ``build_root`` and ``dist_root`` default to the
    checkout's own folders; a variant build (see :mod:`mpforge.tree.variants`)
    points them elsewhere while sharing the data and the deplib cache.
    """

    root: Path
    console: Reporter = field(default_factory=NullReporter)
    executor: Executor = None  # type: ignore[assignment]
    tree: Path = None  # type: ignore[assignment]
    patches_dir: Path = None  # type: ignore[assignment]
    build_root: Path = None  # type: ignore[assignment]
    dist_root: Path = None  # type: ignore[assignment]
    _catalog: Catalog | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.tree is None:
            override = environment().tree
            self.tree = override.resolve() if override else self.root / TREE_DIR
        if self.executor is None:
            self.executor = Executor(log=self.console.detail)
        self.patches_dir = self.patches_dir or self.root / "patches"
        self.build_root = self.build_root or self.root / "build"
        self.dist_root = self.dist_root or self.root / "dist"

    @classmethod
    def discover(cls, console: Reporter | None = None, dry_run: bool = False) -> Project:
        console = console or NullReporter()
        return cls(find_root(), console, Executor(log=console.detail, dry_run=dry_run))

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load(self.root / "ports", self.root / "toolchains")
        return self._catalog

    def source_dir(self, name: str) -> Path:
        """Where a port's pinned source NAME is checked out (shared by variants)."""
        return self.root / "build" / "sources" / name

    @property
    def tree_is_submodule(self) -> bool:
        """True when the tree is the checkout's own pinned ``micropython/`` submodule."""
        return self.tree == self.root / TREE_DIR

    @property
    def deplibs_root(self) -> Path:
        """Deplibs are shared by every variant: their inputs do not include the tree's patches."""
        return self.root / "build" / "deplibs"

    def target(self, port_name: str, board: str | None = None, variant: str = "") -> Target:
        """Resolve a port (and board, and variant) name, checking them against the data and
        the tree."""
        port = self.catalog.port(port_name)
        if variant:
            port.variant(variant)  # an unknown one fails here, listing the port's
            return replace(self.target(port_name, board), variant=variant)
        toolchain = self.catalog.toolchain_for(port)
        if not port.has_boards:
            if board:
                raise UnknownTarget(f"port '{port.name}' has no boards (got --board {board})",
                                    "drop --board")
            return Target(port, "", toolchain, self)
        board = board or port.default_board
        boards = port.boards(self.tree)
        if boards and board not in boards:
            raise UnknownTarget(f"unknown board '{board}' for port '{port.name}'",
                                f"valid boards: {', '.join(boards)}")
        return Target(port, board, toolchain, self)




def check_build_paths(project: Project) -> None:
    """Refuse, before anything is fetched or built, a checkout whose path make cannot handle.

    make splits words at spaces (``-ffile-prefix-map=/my proj=.`` becomes two
    arguments, ``BUILD=/my proj/build`` two targets) and the tree's recipes pass
    paths to the shell unquoted, so such a path fails somewhere deep in a deplib
    or a port's build; better one clear line first.
    """
    for what, path in (("checkout", project.root), ("tree", project.tree),
                       ("build folder", project.build_root), ("dist folder", project.dist_root)):
        char = unsafe_path_char(path)
        if char:
            raise ConfigError(f"the {what} path '{path}' contains {char}, which make and the 2016 "
                              "makefiles cannot handle in a path",
                              "move or clone the checkout to a path of letters, digits and / . _ - + only")


def toolchain_search_path(toolchain: ToolchainDef) -> tuple[str, str]:
    """Where a toolchain's programs are looked for: ``(extra, path)``, ``extra`` being the
    folder its variable names (``$XC16_HOME/bin``; '' when unset) and ``path`` that folder
    followed by ``PATH``."""
    extra = ""
    if toolchain.path_env and os.environ.get(toolchain.path_env):
        extra = str(Path(os.environ[toolchain.path_env]) / toolchain.path_subdir)
    return extra, os.pathsep.join(p for p in (extra, os.environ.get("PATH", "")) if p)


def toolchain_home(toolchain: ToolchainDef) -> str:
    """The install folder of a toolchain: the parent of the folder its compiler is in."""
    found = shutil.which(toolchain.probe[0], path=toolchain_search_path(toolchain)[1])
    return str(Path(found).resolve().parent.parent) if found else ""
