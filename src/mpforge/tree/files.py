"""Single files of the tree: their content digest, copies, and replacement in one rename.

The patch transaction (:mod:`mpforge.tree.journal`), the classification of the
tree (:mod:`mpforge.tree.patches`) and the tree fingerprint
(:mod:`mpforge.tree.fingerprint`) all speak of a file by its :data:`Digest`: the
sha256 of its content, or of a symbolic link's target name, or ``None`` when
there is no such file. A file is only ever overwritten through
:func:`replace_with`: its new content is written next to it
(:func:`new_name`, fsync-ed) and renamed over it, so a reader (or a crash) sees
the old content or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

#: sha256 of a file's content; None for "no such file"
Digest = str | None


def file_digest(path: Path) -> Digest:
    """sha256 of a file's content (of a link's target name); None when absent."""
    try:
        if path.is_symlink():
            return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
        if not path.is_file():
            return "not-a-file" if path.exists() else None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def copy_entry(src: Path, dest: Path) -> None:
    """Copy a file or a symlink (not what it points to), creating folders."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dest)
    else:
        shutil.copy2(src, dest)


def new_name(dest: Path) -> Path:
    """Where a tree file's new content is written before its rename (found again after a crash)."""
    return dest.with_name(f".{dest.name}.mpforge-new")


def replace_with(dest: Path, src: Path) -> None:
    """Replace ``dest`` by a copy of ``src`` in one rename (its mode included)."""
    tmp = new_name(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), tmp)
    else:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, src.stat().st_mode & 0o7777)
    os.replace(tmp, dest)


def remove_empty_parents(folder: Path, top: Path) -> None:
    """Remove ``folder`` and its parents up to (not including) ``top`` while they are empty."""
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
