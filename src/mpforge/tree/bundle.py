"""A mirror in one file, for machines without network: write it, and unpack it to use it.

``invoke mirror DIR --bundle FILE`` (:func:`write_bundle`) puts the bare
repositories of a mirror (``OWNER/NAME.git``, see :mod:`mpforge.tree.mirror`)
into one uncompressed tar (git's packs are compressed already), with
:data:`INDEX` listing them. Carry it to the other machine; there, ``--mirror
FILE`` on any task (:func:`mpforge.tree.git.normalise_mirror`) unpacks it once
(:func:`unpack_bundle`) into a cache folder, ``.mpforge/mirrors/`` of the
checkout, and uses that folder as the mirror.

The cache holds one folder per bundle *content* (its sha256): the same bundle at two
paths is unpacked once, and when the file at a path is replaced, the folder unpacked
from its old content is removed after the new one is in place. Finding the digest of
an unchanged file costs nothing: it is remembered under the file's path, size and
modification time. An unpack is made in a temporary folder and renamed into place, so
a stopped one is never taken for a mirror.

A bundle is untrusted input. :func:`extract` is mpforge's own extraction, the same on
every Python (tarfile's ``data`` filter came only in 3.11.4; Debian bookworm has
3.11.2): only folders and regular files are accepted (a bare git repository holds
nothing else), never a link of any kind, a device or a FIFO; every name is a relative
path of plain components (no ``..``, no absolute path); each file is created anew
(``O_EXCL``, ``O_NOFOLLOW``) inside folders this unpack made, so nothing can lead a
write out of the unpack folder; and the member count and the bytes written are capped
(:data:`MAX_MEMBERS`, :data:`MAX_BYTES`).

This module does not run git: a tar is written and read with :mod:`tarfile`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import IO

from mpforge.core.errors import ConfigError
from mpforge.core.project import find_root
from mpforge.core.settings import LOCAL_DIR
from mpforge.core.state import atomic_write_bytes, disk_errors, fsync_dir, write_json

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
    root = cache or cache_root()
    source = str(path.resolve())
    with disk_errors(f"cannot unpack the mirror bundle {path}"):
        digest = _content_digest(path, root)
        dest = root / digest[:32]
        if not (dest / INDEX).is_file():
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
            try:
                with tarfile.open(path) as tar:
                    try:
                        extract(tar, tmp)
                    except (tarfile.TarError, EOFError, UnsafeMember) as exc:
                        raise ConfigError(f"the mirror bundle {path} is damaged or unsafe ({exc})",
                                          "write it again with `invoke mirror DIR --bundle FILE`") from exc
                shutil.rmtree(dest, ignore_errors=True)
                os.replace(tmp, dest)
                fsync_dir(root)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        _remember_source(dest, source)
        _forget_older_unpacks(root, dest, source)
    return dest


#: the most members a bundle may have (the mirror of every port has about 2,000 files)
MAX_MEMBERS = 200_000
#: the most bytes a bundle may unpack to (the mirror of every port is 40 MB)
MAX_BYTES = 8 << 30
#: the name of the file, in an unpacked folder, that lists the bundle paths it serves
SOURCES = ".mpforge-sources.json"


class UnsafeMember(Exception):
    """A member :func:`extract` refuses; the message names it."""


def _content_digest(path: Path, root: Path) -> str:
    """The sha256 of ``path``'s bytes, remembered under its path, size and mtime in
    ``root/.digests/`` (a replaced file is hashed again; an unchanged one is not)."""
    info = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = root / ".digests" / key
    with contextlib.suppress(OSError, ValueError):
        known = memo.read_text().strip()
        if len(known) == 64 and all(c in "0123456789abcdef" for c in known):
            return known
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(memo, digest.hexdigest().encode())
    return digest.hexdigest()


def _sources(folder: Path) -> list[str]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((folder / SOURCES).read_text())
        if isinstance(data, list):
            return [s for s in data if isinstance(s, str)]
    return []


def _remember_source(dest: Path, source: str) -> None:
    known = _sources(dest)
    if source not in known:
        write_json(dest / SOURCES, sorted({*known, source}))


def _forget_older_unpacks(root: Path, current: Path, source: str) -> None:
    """Remove what older contents of the bundle at ``source`` were unpacked to (a folder
    that still serves another bundle path only forgets this one)."""
    for folder in root.iterdir():
        if folder == current or folder.name.startswith(".") or not folder.is_dir():
            continue
        known = _sources(folder)
        if source not in known:
            continue
        rest = [s for s in known if s != source]
        if rest:
            write_json(folder / SOURCES, rest)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    for memo in (root / ".digests").glob("*"):  # digests of files no folder holds any more
        with contextlib.suppress(OSError):
            if not (root / memo.read_text().strip()[:32]).is_dir():
                memo.unlink()


def _plain_parts(name: str) -> list[str]:
    """The components of a member name, refused unless each is a plain name."""
    if not name or name.startswith("/") or "\0" in name or "\\" in name:
        raise UnsafeMember(f"{name!r} is not a relative path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise UnsafeMember(f"{name!r} would land outside the bundle's folder")
    return parts


def extract(tar: tarfile.TarFile, into: Path) -> None:
    """Unpack ``tar`` into the empty folder ``into`` under the rules of the module docstring;
    :class:`UnsafeMember` names the first member refused (``into`` may then hold part of it:
    the caller removes it)."""
    written = 0
    made: set[tuple[str, ...]] = {()}
    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise UnsafeMember(f"more than {MAX_MEMBERS} members")
        parts = tuple(_plain_parts(member.name))
        if member.issym() or member.islnk():
            raise UnsafeMember(f"{member.name} is a link (a mirror bundle holds none)")
        if not (member.isdir() or member.isreg()):
            raise UnsafeMember(f"{member.name} is not a file or a folder")
        folders = parts if member.isdir() else parts[:-1]
        for depth in range(1, len(folders) + 1):
            if folders[:depth] not in made:
                _make_folder(into, folders[:depth])
                made.add(folders[:depth])
        if member.isreg():
            written += member.size
            if written > MAX_BYTES:
                raise UnsafeMember(f"more than {MAX_BYTES} bytes")
            source = tar.extractfile(member)
            if source is None:
                raise UnsafeMember(f"{member.name} has no data")
            _write_file(into, parts, source, member.size, member.mode)


def _make_folder(into: Path, parts: tuple[str, ...]) -> None:
    target = into.joinpath(*parts)
    try:
        os.mkdir(target, 0o755)
    except FileExistsError:
        # only a folder this unpack made may hold members: a file of that name is refused
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            raise UnsafeMember(f"{'/'.join(parts)} is a file and a folder") from None


def _write_file(into: Path, parts: tuple[str, ...], source: IO[bytes], size: int, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(into.joinpath(*parts), flags, 0o755 if mode & 0o111 else 0o644)
    except FileExistsError:
        raise UnsafeMember(f"{'/'.join(parts)} is in the bundle twice") from None
    with os.fdopen(fd, "wb") as out:
        left = size
        while left > 0:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise tarfile.ReadError(f"{'/'.join(parts)} is cut short")
            out.write(chunk)
            left -= len(chunk)
