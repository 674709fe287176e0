"""The tree as a build takes it: fetched at its pin, patched, fingerprinted.

:func:`prepare_tree` is the first step of every build (see
:mod:`mpforge.firmware.pipeline`, which calls it once per command): it checks out
``micropython/`` and the submodules of the ports asked for
(:mod:`mpforge.tree.fetch`), applies the patch series (:mod:`mpforge.tree.patches`,
finishing or undoing an interrupted run first), and returns a :class:`TreeInfo`:
the commit, the applied patches, and whether the content is exactly the pin plus
the series (:mod:`mpforge.tree.fingerprint`; reported in each manifest, never refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mpforge.core.config import PortDef
from mpforge.core.errors import MpforgeError
from mpforge.core.project import TREE_DIR, Project, check_build_paths
from mpforge.tree.fetch import fetch
from mpforge.tree.fingerprint import TreeFingerprint, tree_fingerprint
from mpforge.tree.git import Git
from mpforge.tree.patches import PatchQueue


@dataclass
class TreeInfo:
    """The tree as prepared for building: what every target's inputs share."""

    commit: str
    describe: str
    state: str
    patches: list[dict[str, str]]
    #: port -> why its own sources could not be fetched (``keep_going`` only)
    failed_ports: dict[str, MpforgeError] = field(default_factory=dict)
    #: the tree's content against pin + series (None: not computed, e.g. a dry run)
    fingerprint: TreeFingerprint | None = None


def prepare_tree(project: Project, ports: Sequence[PortDef], mirror: str | None, *,
                 keep_going: bool = False) -> TreeInfo:
    """Fetch the tree and the submodules of ``ports``, and apply the patch series.

    ``keep_going``: a port whose pinned sources cannot be fetched is listed in
    ``failed_ports`` rather than failing the preparation of every port.
    """
    console, executor = project.console, project.executor
    check_build_paths(project)
    console.step(f"fetch ({', '.join(p.name for p in ports)})")
    fetched = fetch(project, ports, mirror, keep_going=keep_going)
    console.step("patch")
    queue = PatchQueue(project.patches_dir, project.tree, executor)
    try:
        newly = queue.apply()  # finishes an interrupted or half-applied series first, or fails
    finally:
        for note in queue.notes:
            console.warn(note)
    console.info(f"applied {len(newly)} patch(es)" if newly else "patch series up to date")
    git = Git(executor)
    pin = git.gitlink(project.root, TREE_DIR) if project.tree_is_submodule else git.head(project.tree)
    fingerprint = tree_fingerprint(queue, pin)
    if fingerprint.differing:
        shown = ", ".join(fingerprint.differing[:5]) + (" ..." if len(fingerprint.differing) > 5 else "")
        console.warn(f"micropython/ is not the pin plus the series: {len(fingerprint.differing)} "
                     f"difference(s) ({shown}); building it as it is, the manifest lists them")
    return TreeInfo(git.head(project.tree),
                    git.query(project.tree, "describe", "--tags", "--always", "--dirty"),
                    fingerprint.digest, queue.applied(), fetched.failed_ports, fingerprint)
