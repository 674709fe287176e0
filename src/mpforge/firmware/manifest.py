"""What a build is made of, as hashes: artifacts, inputs, the tree, the build date.

A target's *inputs* (tree commit and state, patches, toolchain version, make
variables, port data, the app) are hashed into one key
(:func:`inputs_key`); the key is stored in ``dist/<target>/manifest.json`` and
in ``build/<target>/inputs.json``, and a build whose key is unchanged is reused.
The manifest also carries each artifact's sha256 (:func:`sha256_file`), checked
again before a board is flashed, and the tree's account (:func:`tree_facts`).

It names the firmware's version (:func:`version_string`), the same string the
build hands the tree's ``py/makeversionhdr.py`` (patch 0017, through
``MPFORGE_VERSION_SUFFIX``) and so the one the REPL banner and ``os.uname()``
show: ``v1.8.2-20-g04c27e5eaa+s.1a2b3c4d`` is the pin plus the series whose id
(:func:`series_id`) is ``1a2b3c4d``; ``.dirty`` is added when the tree is not
exactly that. :func:`expected_version` reads it back for a banner check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mpforge.core.project import Project
from mpforge.tree.git import Git
from mpforge.tree.prepare import TreeInfo


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(paths: list[Path | None]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None and path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def tree_facts(tree: TreeInfo) -> dict:
    """The manifest's account of the tree: its content fingerprint, and whether (and where)
    it differs from the pin plus the series. Reported, never refused."""
    fp = tree.fingerprint
    if fp is None:
        return {}
    return {"pin": fp.pin, "fingerprint": fp.digest, "pin_plus_series": fp.expected,
            "is_pin_plus_series": fp.matches, "differing": fp.differing}


def source_date_epoch(project: Project) -> int:
    """The tree commit's time: a build date that is the same on every rebuild."""
    out = Git(project.executor).query(project.tree, "log", "-1", "--format=%ct")
    return int(out) if out.isdigit() else 0


#: how many hex digits of the series digest the version carries
SERIES_ID_LENGTH = 8


def series_id(patches: list[dict[str, str]]) -> str:
    """A short digest of the patch series as applied: each patch's name and sha256, in order.

    Renaming, editing, adding, dropping or reordering a patch changes it; the same
    series on any machine gives the same id. An empty series is ``none``."""
    if not patches:
        return "none"
    digest = hashlib.sha256()
    for patch in patches:
        digest.update(f"{patch['name']}\0{patch['sha256']}\n".encode())
    return digest.hexdigest()[:SERIES_ID_LENGTH]


def version_suffix(patches: list[dict[str, str]], is_pin_plus_series: bool) -> str:
    """What the build appends to git's description: ``+s.<series id>``, then ``.dirty``
    when the tree differs from the pin plus that series (a user's edit, an untracked file)."""
    return f"+s.{series_id(patches)}" + ("" if is_pin_plus_series else ".dirty")


def version_string(describe: str, patches: list[dict[str, str]], is_pin_plus_series: bool) -> str:
    """The firmware's version: ``git describe`` of the tree without git's ``-dirty`` (the
    applied series alone makes it say so), then :func:`version_suffix`.

    >>> version_string("v1.8.2-20-g04c27e5eaa-dirty", [], True)
    'v1.8.2-20-g04c27e5eaa+s.none'
    """
    base = describe[:-len("-dirty")] if describe.endswith("-dirty") else describe
    return base + version_suffix(patches, is_pin_plus_series)


def expected_version(manifest: dict) -> str:
    """The version string the firmware of ``manifest`` shows in its banner and ``os.uname()``.

    The manifest's ``version``; a manifest written before it was recorded gets it
    computed from what it does record (describe, patches, whether the tree was pin + series)."""
    recorded = manifest.get("version")
    if isinstance(recorded, str) and recorded:
        return recorded
    tree = manifest.get("tree", {})
    return version_string(str(tree.get("describe", "")), list(manifest.get("patches", [])),
                          bool(tree.get("is_pin_plus_series", True)))


def inputs_key(inputs: dict) -> str:
    """The sha256 of a build's inputs, key order ignored."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
