"""``--port``/``--board`` into targets: once, the same way, for every task.

A task's user writes ``--port unix``, ``--port unix,stmhal``, ``--port all`` (or
``--all``), ``--board PYBV10``, ``--board A,B``, ``--board all`` (``invoke ci``
spells them ``--ports``/``--boards``: the same values). :func:`select` checks the
port names against the data at once (an unknown one fails before anything is
fetched) and returns a :class:`Selection`; :meth:`Selection.targets` turns it into
:class:`~mpforge.core.project.Target` values, checking board names against the
tree *as the patch series leaves it* (``PYBV10_QEMU`` comes from the series), so
it has the :class:`~mpforge.firmware.pipeline.Pipeline` fetch and patch first when a
board is named. Below the task layer, only targets travel.

In a selection of several ports, a board applies to the ports that have boards;
the others are built as they are. ``--app`` and ``--board-dir`` make one target:
:func:`resolve_target` (the board from ``--board-dir``, ``--board``, the app's
``board_dir`` or the port's default), with :func:`board_from_dir` checking a board
folder outside the tree; :func:`list_boards` is ``--board list``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mpforge.core.appfile import load_app, safe_path
from mpforge.core.config import PortDef
from mpforge.core.errors import ConfigError, UnknownTarget
from mpforge.core.project import Project, Target
from mpforge.firmware import app as app_mod
from mpforge.firmware.pipeline import Pipeline


def split_names(spec: str) -> list[str]:
    """``A,B`` -> ``["A", "B"]`` (spaces and empty names dropped)."""
    return [name.strip() for name in spec.split(",") if name.strip()]


@dataclass(frozen=True)
class Selection:
    """What ``--port``/``--board`` asked for, checked against the data."""

    project: Project
    ports: tuple[PortDef, ...]
    #: None (each port's default board), a name, ``A,B`` or ``all``
    board: str | None = None
    board_dir: Path | None = None
    app: Path | None = None
    #: one of the ports' ``[variants]`` (``coverage``, ``debug``), or "" for the default build
    variant: str = ""

    @property
    def many(self) -> bool:
        """True for a matrix: several ports, or several boards of one."""
        return len(self.ports) > 1 or self.board == "all" or "," in (self.board or "")

    @property
    def names_boards(self) -> bool:
        """True when a board is named (or given as a folder) for a port that has boards:
        then the targets can be made only once the tree is fetched and patched."""
        return bool(self.board or self.board_dir or self.app) and any(p.has_boards for p in self.ports)

    def targets(self, pipeline: Pipeline | None = None) -> list[Target]:
        """The targets, in the order asked for (each built as ``variant``, when given). With
        a ``pipeline`` (and not a dry run), the tree is prepared first when board names
        must be checked against it."""
        targets = self._targets(pipeline)
        return [replace(t, variant=self.variant) for t in targets] if self.variant else targets

    def _targets(self, pipeline: Pipeline | None) -> list[Target]:
        project = self.project
        if pipeline is not None and self.names_boards and not project.executor.dry_run:
            pipeline.tree(self.ports)
        if self.app is not None or self.board_dir is not None:
            port = self.ports[0]
            return [resolve_target(project, port, self.board, self.board_dir, self.app)]
        targets: list[Target] = []
        for port in self.ports:
            if not port.has_boards and self.many:
                targets.append(project.target(port.name))
            elif self.board == "all" and port.has_boards:
                boards = port.boards(project.tree) or [port.default_board]
                targets += [project.target(port.name, b) for b in boards]
            elif self.board and "," in self.board and port.has_boards:
                targets += [project.target(port.name, b) for b in split_names(self.board)]
            elif self.board and self.board != "all":
                targets.append(project.target(port.name, self.board))
            else:
                targets.append(project.target(port.name))
        return targets

    def target(self, pipeline: Pipeline | None = None) -> Target:
        """The one target of a selection that must name exactly one (deploy, emulate, test)."""
        targets = self.targets(pipeline)
        if len(targets) != 1:
            raise ConfigError(f"this command takes one target, not {len(targets)} "
                              f"({', '.join(t.name for t in targets)})", "give one --port and one --board")
        return targets[0]


def select(project: Project, port: str = "unix", board: str | None = None, *, all: bool = False,
           board_dir: str | Path | None = None, app: str | Path | None = None,
           variant: str | None = None) -> Selection:
    """Check ``--port``/``--board`` (``--all``, ``--board-dir``, ``--app``, ``--variant``)
    against the data and return the selection; see the module docstring."""
    catalog = project.catalog
    names = sorted(catalog.ports) if all or port.strip() == "all" else split_names(port)
    if not names:
        raise ConfigError("no port given", f"valid ports: {', '.join(sorted(catalog.ports))}")
    ports = tuple(catalog.port(name) for name in names)  # an unknown name fails here
    if all and board is None:
        board = "all"
    for each in ports if variant else ():
        each.variant(variant or "")  # a port without it fails here, naming the ones it has
    selection = Selection(project, ports, board, Path(board_dir) if board_dir else None,
                          Path(app) if app else None, variant or "")
    if (app or board_dir) and selection.many:
        raise ConfigError("--app and --board-dir build one target", "give one --port (and one --board)")
    return selection


def board_from_dir(project: Project, port: PortDef, folder: Path) -> tuple[str, Path]:
    """The name and folder of a board described outside the tree, checked.

    The port must take a board folder (``[boards] dir_var``); the folder must hold
    the port's marker file (``mpconfigboard.h``); its name becomes the board's
    (``dist/<port>-<NAME>/``) and may not be the name of a board of the tree,
    whose build it would replace.
    """
    if not port.has_boards or not port.board_dir_var:
        able = sorted(p.name for p in project.catalog.ports.values() if p.board_dir_var)
        raise UnknownTarget(f"port '{port.name}' cannot build a board from a folder outside the tree",
                            f"ports that can: {', '.join(able) or 'none'}")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no board folder at {folder}", "--board-dir takes the board's folder")
    folder = safe_path(folder.resolve(), "board folder")
    if not (folder / port.board_marker).is_file():
        raise ConfigError(f"{folder} is not a {port.name} board folder: it has no {port.board_marker}",
                          f"a board folder holds {port.board_marker} and mpconfigboard.mk "
                          f"(see `invoke build --port {port.name} --board list`)")
    name = folder.name
    tree_board = project.tree / port.make_dir / port.boards_dir / name
    if tree_board.is_dir() and tree_board.resolve() != folder:
        raise ConfigError(f"the board folder {folder} has the name of a board of the tree ({name})",
                          "rename the folder: its name is the board's, and names its build "
                          f"(dist/{port.target_name(name)}/)")
    return name, folder


def resolve_target(project: Project, port: PortDef, board: str | None = None,
                   board_dir: str | Path | None = None, app_dir: str | Path | None = None) -> Target:
    """The target ``invoke build`` and ``invoke deploy`` build: a port, a board, an app.

    The board: ``--board-dir`` (a folder outside the tree), else ``--board`` (one
    of the tree's), else the app's ``board_dir`` for a port that takes board
    folders, else the port's default board.
    """
    if board and board_dir:
        raise ConfigError("--board names a board of the tree and --board-dir one outside it",
                          "give one of them")
    app = load_app(Path(app_dir)) if app_dir else None
    folder = Path(board_dir) if board_dir else None
    if folder is None and not board and app is not None and app.board_dir is not None \
            and port.board_dir_var:
        folder = app.board_dir
    if folder is not None:
        name, folder = board_from_dir(project, port, folder)
        target = replace(project.target(port.name), board=name, board_dir=folder)
    else:
        target = project.target(port.name, board)
    if app is not None:
        target = replace(target, app=app)
        method = app_mod.FreezeMethod.of(port)
        if app.frozen and not method.kind:
            raise ConfigError(f"port '{port.name}' does not say how to freeze Python modules",
                              f"add [app] freeze = 'mpy' or 'str' to ports/{port.name}.toml, "
                              "or build an app without .py files")
    return target


def list_boards(project: Project, port: PortDef, board_dir: str | Path | None = None,
                app_dir: str | Path | None = None) -> list[tuple[str, str, str]]:
    """``invoke build --board list``: (board, folder, note) for the tree's boards of a port,
    and the board folder given (``--board-dir`` or the app's), if any."""
    if not port.has_boards:
        raise UnknownTarget(f"port '{port.name}' has no boards", "drop --board")
    rows = [(name, str(Path(port.make_dir) / port.boards_dir / name),
             "default" if name == port.default_board else "")
            for name in port.boards(project.tree)]
    folder = Path(board_dir) if board_dir else None
    if folder is None and app_dir:
        app = load_app(Path(app_dir))
        folder = app.board_dir if port.board_dir_var else None
    if folder is not None:
        name, resolved = board_from_dir(project, port, folder)
        rows.append((name, str(resolved), f"outside the tree: dist/{port.target_name(name)}/"))
    return rows
