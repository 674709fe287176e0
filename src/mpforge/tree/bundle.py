"""A mirror in one file, for machines without network: write it, and unpack it to use it.

``invoke mirror DIR --bundle FILE`` (:func:`write_bundle`) puts the bare
repositories of a mirror (``OWNER/NAME.git``, see :mod:`mpforge.tree.mirror`)
into one uncompressed tar (git's packs are compressed already), with
:data:`INDEX` listing them. Carry it to the other machine; there, ``--mirror
FILE`` on any task (:func:`mpforge.tree.git.normalise_mirror`) unpacks it once
(:func:`unpack_bundle`) into a cache folder, ``.mpforge/mirrors/`` of the
checkout, and uses that folder as the mirror. The cache is keyed by the file's
path, size and modification time, so a new bundle at the same path is unpacked
anew; an unpack is made in a temporary folder and renamed into place, so a
stopped one is never taken for a mirror.

This module does not run git: a tar is written and read with :mod:`tarfile`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from mpforge.core.errors import ConfigError
from mpforge.core.project import find_root
from mpforge.core.settings import LOCAL_DIR
from mpforge.core.state import disk_errors, fsync_dir

#: the list of repositories at the top of a bundle (also what marks a tar as one)
INDEX = "mpforge-mirror.json"
#: where bundles are unpacked, under the checkout
CACHE_DIR = "mirrors"


def write_bundle(base: Path, repos: list[str], dest: Path) -> int:
    """Write the repositories ``repos`` (``OWNER/NAME.git`` under ``base``) into the tar ``dest``
    (replaced in one rename); returns its size in bytes."""
    with disk_errors(f"cannot write {dest}"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as any file written here (mkstemp makes it private)
        try:
            with tarfile.open(tmp, "w") as tar:
                index = json.dumps({"format": 1, "repositories": repos}, indent=2).encode()
                info = tarfile.TarInfo(INDEX)
                info.size = len(index)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(index))
                for rel in repos:
                    # a mirror folder of links (OWNER/NAME.git -> elsewhere): the repository itself
                    tar.add(str((base / rel).resolve()), arcname=rel)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dest.stat().st_size


def is_bundle(path: Path) -> bool:
    """True for a file that is a tar with :data:`INDEX` first (what :func:`write_bundle` writes)."""
    if not path.is_file() or not tarfile.is_tarfile(path):
        return False
    with tarfile.open(path) as tar:
        first = tar.next()
    return first is not None and first.name == INDEX


def cache_root() -> Path:
    """``.mpforge/mirrors/`` of the checkout this command runs in (outside one: the user's cache)."""
    try:
        return find_root() / LOCAL_DIR / CACHE_DIR
    except ConfigError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpforge" / CACHE_DIR


def unpack_bundle(path: Path, cache: Path | None = None) -> Path:
    """The folder ``path`` (a bundle) is unpacked in, unpacking it first when needed."""
    if not is_bundle(path):
        raise ConfigError(f"{path} is not a mirror bundle (a folder, a URL, or a file "
                          "`invoke mirror DIR --bundle FILE` wrote)", "check the --mirror value")
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = cache or cache_root()
    dest = root / f"{path.name}-{key}"
    if (dest / INDEX).is_file():
        return dest
    with disk_errors(f"cannot unpack the mirror bundle {path}"):
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=root))
        try:
            with tarfile.open(path) as tar:
                try:
                    _extract_safely(tar, tmp)  # no absolute paths, links out or devices
                except (tarfile.TarError, EOFError) as exc:
                    raise ConfigError(f"the mirror bundle {path} is damaged or unsafe ({exc})",
                                      "write it again with `invoke mirror DIR --bundle FILE`") from exc
            shutil.rmtree(dest, ignore_errors=True)
            os.replace(tmp, dest)
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


def _extract_safely(tar: tarfile.TarFile, into: Path) -> None:
    """Extract ``tar`` into ``into``, refusing members that would land outside it, links
    that point outside it, and devices: tarfile's ``data`` filter where this Python has it
    (3.11.4 and later), the same rules checked here on older ones (Debian bookworm's 3.11.2)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
        return
    root = into.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if not target.is_relative_to(root):
            raise tarfile.TarError(f"{member.name} would land outside the bundle's folder")
        if member.isdev() or member.ischr() or member.isblk() or member.isfifo():
            raise tarfile.TarError(f"{member.name} is a device")
        if member.issym() or member.islnk():
            pointed = (target.parent / member.linkname) if member.issym() else (root / member.linkname)
            if not pointed.resolve().is_relative_to(root):
                raise tarfile.TarError(f"{member.name} links out of the bundle's folder")
    tar.extractall(into)  # every member checked above
