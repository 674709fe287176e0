"""What a build is made of, as hashes: artifacts, inputs, the tree, the build date.

A target's *inputs* (tree commit and state, patches, toolchain version, make
variables, port data, the app) are hashed into one key
(:func:`inputs_key`); the key is stored in ``dist/<target>/manifest.json`` and
in ``build/<target>/inputs.json``, and a build whose key is unchanged is reused.
The manifest also carries each artifact's sha256 (:func:`sha256_file`), checked
again before a board is flashed, and the tree's account (:func:`tree_facts`).
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


def inputs_key(inputs: dict) -> str:
    """The sha256 of a build's inputs, key order ignored."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
