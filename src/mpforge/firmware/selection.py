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
the others are built as they are. ``--app`` and ``--board-dir`` make one target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mpforge.core.config import PortDef
from mpforge.core.errors import ConfigError
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
        """The targets, in the order asked for. With a ``pipeline`` (and not a dry run),
        the tree is prepared first when board names must be checked against it."""
        project = self.project
        if pipeline is not None and self.names_boards and not project.executor.dry_run:
            pipeline.tree(self.ports)
        if self.app is not None or self.board_dir is not None:
            port = self.ports[0]
            return [app_mod.resolve_target(project, port, self.board, self.board_dir, self.app)]
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
           board_dir: str | Path | None = None, app: str | Path | None = None) -> Selection:
    """Check ``--port``/``--board`` (``--all``, ``--board-dir``, ``--app``) against the
    data and return the selection; see the module docstring."""
    catalog = project.catalog
    names = sorted(catalog.ports) if all or port.strip() == "all" else split_names(port)
    if not names:
        raise ConfigError("no port given", f"valid ports: {', '.join(sorted(catalog.ports))}")
    ports = tuple(catalog.port(name) for name in names)  # an unknown name fails here
    if all and board is None:
        board = "all"
    selection = Selection(project, ports, board, Path(board_dir) if board_dir else None,
                          Path(app) if app else None)
    if (app or board_dir) and selection.many:
        raise ConfigError("--app and --board-dir build one target", "give one --port (and one --board)")
    return selection
