"""What a firmware is made of, as one list: the inputs its SBOM and its attestation name.

:func:`collect` gathers, when a target has just been built, every component that
went into it, each with where it comes from and the digests that identify it:

* the MicroPython tree at its commit (``micropython/``), with the license its own
  ``LICENSE`` file declares;
* each submodule the port uses, at the commit checked out, and each pinned source
  (``[[sources]]`` of the port, e.g. the esp8266 SDK) at its revision;
* every patch of the series as applied (name, sha256 and sha1 of the file);
* the toolchain's Debian packages with the version ``dpkg-query`` reports (on a
  machine without dpkg: the toolchain's own version, said so in a comment);
* an app's frozen modules and C module sources (``--app``), and a board folder's files.

:mod:`mpforge.firmware.sbom` writes them as SPDX, :mod:`mpforge.firmware.provenance`
as SLSA ``resolvedDependencies``. A license is only ever *declared* from what a
component's top-level license file says (:func:`declared_license`); anything else is
``NOASSERTION``, with the reason.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.project import Target
from mpforge.firmware import app as app_mod
from mpforge.tree.git import Git
from mpforge.tree.prepare import TreeInfo

#: the upstream tree's repository (what ``micropython/`` is a checkout of)
TREE_URL = "https://github.com/micropython/micropython"

#: the supplier of what the builder brings (the firmware, an app, a board folder): whoever
#: runs the build; SPDX wants an organization or person, and mpforge does not know the name
SELF_SUPPLIER = "Organization: the builder of this firmware"

#: the top-level files a project states its license in, first found wins
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING", "COPYING.txt")

#: phrases that, all present, make a license file the MIT (Expat) license's text
_MIT_PHRASES = ("permission is hereby granted, free of charge, to any person obtaining a copy",
                "the above copyright notice and this permission notice shall be included",
                'the software is provided "as is", without warranty of any kind')


@dataclass(frozen=True)
class FileDigest:
    """A file that went into the firmware, by its name and content digests."""

    name: str
    sha256: str
    sha1: str


@dataclass
class Component:
    """One input of a build: a source tree, a patch, a package, an app."""

    kind: str  # "tree", "submodule", "source", "patch", "toolchain", "app", "board"
    name: str
    version: str
    supplier: str  # SPDX form: "Organization: ..." or "NOASSERTION"
    location: str  # where it comes from (a URL, a checkout-relative path)
    license: str = "NOASSERTION"  # declared, see :func:`declared_license`
    license_note: str = ""
    commit: str = ""  # a git commit, when it is one
    sha256: str = ""  # a single file's digest (a patch)
    sha1: str = ""
    purl: str = ""  # package URL (Debian packages)
    comment: str = ""
    files: list[FileDigest] = field(default_factory=list)  # an app's frozen modules, C sources


def digests(path: Path) -> tuple[str, str]:
    """sha256 and sha1 of a file (SPDX files carry both: sha1 is mandatory there)."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()  # noqa: S324 (SPDX requires SHA1)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(chunk)
            sha1.update(chunk)
    return sha256.hexdigest(), sha1.hexdigest()


def declared_license(folder: Path) -> tuple[str, str]:
    """The SPDX license a component's own top-level license file declares, and a note.

    Only the MIT text is recognised (MicroPython's, libffi's); a folder without a
    license file, or with another text, is ``NOASSERTION`` and the note says which."""
    for name in LICENSE_FILES:
        path = folder / name
        if path.is_file():
            text = " ".join(path.read_text(errors="replace").lower().split())
            if all(phrase in text for phrase in _MIT_PHRASES):
                return "MIT", f"the MIT text of its {name}"
            first = next((line.strip() for line in path.read_text(errors="replace").splitlines()
                          if line.strip()), "")
            return "NOASSERTION", f"its {name} is not a license mpforge recognises ({first[:60]!r})"
    return "NOASSERTION", "no top-level license file; its source files carry their own terms"


def collect(target: Target, tree: TreeInfo, toolchain_version: str) -> list[Component]:
    """Every component of ``target``'s build, in a stable order (see the module docstring)."""
    project = target.project
    git = Git(project.executor)
    components: list[Component] = []
    lic, note = declared_license(project.tree)
    components.append(Component("tree", "micropython", tree.describe.removesuffix("-dirty") or tree.commit,
                                "Organization: MicroPython (micropython.org)",
                                f"git+{TREE_URL}.git@{tree.commit}", lic, note, commit=tree.commit))
    for rel in target.port.submodules:
        folder = project.tree / rel
        commit = git.head(folder) if (folder / ".git").exists() else ""
        url = git.query(project.tree, "config", "-f", ".gitmodules", f"submodule.{rel}.url") or ""
        lic, note = declared_license(folder)
        owner = url.rstrip("/").removesuffix(".git").split("/")[-2] if url.count("/") >= 2 else ""
        components.append(Component("submodule", rel, commit or "NOASSERTION",
                                    f"Organization: {owner}" if owner else "NOASSERTION",
                                    f"git+{url.removesuffix('.git')}.git@{commit}" if url else "NOASSERTION",
                                    lic, note, commit=commit))
    for source in target.port.sources:
        folder = project.root / "build" / "sources" / source.name
        lic, note = declared_license(folder)
        owner = source.url.rstrip("/").removesuffix(".git").split("/")[-2]
        components.append(Component("source", source.name, source.rev, f"Organization: {owner}",
                                    f"git+{source.url.removesuffix('.git')}.git@{source.rev}",
                                    lic, note, commit=source.rev))
    for patch in tree.patches:
        path = project.patches_dir / patch["name"]
        sha256, sha1 = digests(path) if path.is_file() else (patch["sha256"], "")
        components.append(Component("patch", patch["name"], sha256[:12], "Organization: mpforge",
                                    f"patches/{patch['name']}", "MIT", "mpforge's own change, "
                                    "under mpforge's license", sha256=patch["sha256"], sha1=sha1))
    components += _toolchain(target, toolchain_version)
    if target.app is not None:
        files = [FileDigest(f"{f.name}", *digests(f.path)) for f in app_mod.frozen_files(target)]
        files += [FileDigest(f"{m.name}/{p.name}", *digests(p))
                  for m in target.app.c_modules for p in (*m.sources, *m.headers)]
        components.append(Component("app", target.app.name, _content_version(files), SELF_SUPPLIER,
                                    "NOASSERTION", comment="the app built in (--app): its frozen "
                                    "modules and its C modules' sources", files=files))
    if target.board_dir is not None:
        files = [FileDigest(p.relative_to(target.board_dir).as_posix(), *digests(p))
                 for p in sorted(target.board_dir.rglob("*")) if p.is_file()]
        components.append(Component("board", target.board_dir.name, _content_version(files),
                                    SELF_SUPPLIER, "NOASSERTION",
                                    comment="the board folder built in (--board-dir)", files=files))
    return components


def _content_version(files: list[FileDigest]) -> str:
    """A version for a folder without one: a digest of its files' names and content."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        digest.update(f"{f.name}\0{f.sha256}\n".encode())
    return "content-" + digest.hexdigest()[:12]


def _toolchain(target: Target, version: str) -> list[Component]:
    """The toolchain's Debian packages, at the versions installed (``dpkg-query``)."""
    toolchain = target.toolchain
    packages = list(toolchain.debian)
    executor = target.project.executor
    have_dpkg = shutil.which("dpkg-query") is not None
    out: list[Component] = []
    for package in packages:
        answer = executor.query(["dpkg-query", "-W", "-f", "${Version} ${Architecture}", package]) \
            if have_dpkg else None
        if answer and len(answer.split()) == 2:
            pkg_version, arch = answer.split()
            out.append(Component("toolchain", package, pkg_version, "Organization: Debian",
                                 f"https://packages.debian.org/{package}",
                                 purl=f"pkg:deb/debian/{package}@{pkg_version}?arch={arch}",
                                 comment=f"toolchain {toolchain.name}"))
        else:
            out.append(Component("toolchain", package, version, "NOASSERTION", "NOASSERTION",
                                 comment=f"toolchain {toolchain.name} {version}: the Debian package "
                                 "is not installed here (no dpkg-query answer); the version is "
                                 "the toolchain's own"))
    if not packages:  # a toolchain outside Debian (XC16): its own name and version
        out.append(Component("toolchain", toolchain.name, version, "NOASSERTION", "NOASSERTION",
                             comment=toolchain.description))
    return out
