"""``invoke doctor``: what a build really needs, what is here, and how to get the rest.

A program on PATH is not proof that a build will work: libffi's ``autogen.sh``
needs the ``LT_SYS_SYMBOL_USCORE`` macro from ``libltdl-dev``, which has no
program at all and which ``apt-get install --no-install-recommends libtool``
leaves out. So doctor checks four kinds of things, all named in the data:

``toolchain``  each compiler of ``toolchains/`` (found, and its version);
``tool``       each host program of ``toolchains/host-tools.toml``;
``package``    on Debian (``dpkg-query`` present), each Debian package the
               requested ports declare (:meth:`~mpforge.core.config.Catalog.debian_packages`);
``macro``      each autoconf macro a requested port's deplibs declare
               (``aclocal_macros``), looked up in aclocal's folders.

Every check knows which requested ports need it, so a failure is attributed
per port (``pic16bit: xc16``, ``esp8266: esptool``) rather than blamed on all.
``--fix`` installs, with apt-get (as root), the missing packages of the
requested ports.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.config import PortDef
from mpforge.core.errors import MissingTool, MpforgeError
from mpforge.core.project import Project
from mpforge.firmware.toolchain import find_tool, find_toolchain


@dataclass
class Check:
    """One row of doctor's table."""

    kind: str  # toolchain, tool, package or macro
    name: str
    version: str  # what was found ("" when missing): a version, "installed", an .m4 file
    provider: str  # how to get it
    debian: list[str]  # the Debian packages that provide it (empty: not packaged)
    ports: list[str] = field(default_factory=list)  # requested ports that need it
    note: str = ""

    @property
    def found(self) -> bool:
        return bool(self.version)

    @property
    def required(self) -> bool:
        return bool(self.ports)


@dataclass
class Diagnosis:
    """Every check, and per requested port what it lacks."""

    checks: list[Check]
    ports: list[str]

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def missing_by_port(self) -> dict[str, list[str]]:
        """Requested port -> names of its missing pieces (ports lacking nothing left out)."""
        missing: dict[str, list[str]] = {}
        for check in self.checks:
            if check.found:
                continue
            for port in check.ports:
                missing.setdefault(port, []).append(check.name)
        return {p: missing[p] for p in self.ports if p in missing}

    @property
    def ok(self) -> bool:
        return not self.missing_by_port()

    def missing_packages(self) -> list[str]:
        """Debian packages that would provide the missing rows that requested ports need."""
        packages: list[str] = []
        for check in self.checks:
            if check.required and not check.found:
                packages += [p for p in check.debian if p not in packages]
        return packages


def _needs(project: Project, ports: Sequence[PortDef]) -> dict[str, list[tuple[str, str]]]:
    """(kind, name) -> the requested ports that need it (a port also needs its ``needs``)."""
    catalog = project.catalog
    needed: dict[str, list[tuple[str, str]]] = {}
    for requested in ports:
        items: list[tuple[str, str]] = []
        for port in catalog.needed([requested]):
            items.append(("toolchain", port.toolchain))
            items += [("tool", t) for t in catalog.tools_for(port)]
            items += [("macro", m) for d in port.deplibs for m in d.aclocal_macros]
        items += [("package", p) for p in catalog.debian_packages([requested.name])]
        needed[requested.name] = list(dict.fromkeys(items))
    return needed


def _ports_needing(needs: dict[str, list[tuple[str, str]]], kind: str, name: str) -> list[str]:
    return [port for port, items in needs.items() if (kind, name) in items]


def installed_packages(project: Project, packages: Iterable[str]) -> set[str] | None:
    """The subset of ``packages`` dpkg says are installed; None where there is no dpkg."""
    names = list(packages)
    if not names or shutil.which("dpkg-query") is None:
        return None
    result = project.executor.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *names],
                                  check=False, mutates=False)
    installed = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1:4] == ["install", "ok", "installed"]:
            installed.add(fields[0].split(":")[0])
    return installed


def aclocal_dirs(project: Project) -> list[Path]:
    """Where ``aclocal`` looks for macros: its own folder, automake's versioned one,
    ``ACLOCAL_PATH`` and the ``dirlist`` file."""
    if shutil.which("aclocal") is None:
        return []
    acdir = project.executor.query(["aclocal", "--print-ac-dir"])
    if not acdir:  # None: aclocal could not say; "": it has no folder
        return []
    base = Path(acdir)
    dirs = [base, *sorted(base.parent.glob(f"{base.name}-*"))]
    dirs += [Path(p) for p in os.environ.get("ACLOCAL_PATH", "").split(os.pathsep) if p]
    dirlist = base / "dirlist"
    if dirlist.is_file():
        dirs += [Path(line.strip()) for line in dirlist.read_text().splitlines() if line.strip()]
    return [d for d in dirs if d.is_dir()]


def find_macro(macro: str, dirs: list[Path]) -> Path | None:
    """The ``.m4`` file that defines ``macro`` (``AC_DEFUN([NAME], ...)`` and kin), if any."""
    pattern = re.compile(r"(?:AC_DEFUN|AC_DEFUN_ONCE|AU_DEFUN|m4_defun|m4_define)\(\s*\[?"
                         + re.escape(macro) + r"\]?\s*[,)]")
    for folder in dirs:
        for m4 in sorted(folder.glob("*.m4")):
            try:
                if pattern.search(m4.read_text(errors="replace")):
                    return m4
            except OSError:
                continue
    return None


def _macro_packages(ports: Iterable[PortDef]) -> dict[str, str]:
    return {macro: package for port in ports for d in port.deplibs
            for macro, package in d.aclocal_macros.items()}


def diagnose(project: Project, ports: Sequence[PortDef]) -> Diagnosis:
    """Probe everything; attribute what the requested ``ports`` need."""
    catalog = project.catalog
    needs = _needs(project, ports)
    checks: list[Check] = []
    for tc in catalog.toolchains.values():
        try:
            found = find_toolchain(tc, project.executor)
            version, note = found.version, (f"via ${tc.path_env}" if found.extra_path else "")
        except MissingTool:
            version, note = "", ""
        checks.append(Check("toolchain", tc.name, version, tc.install_hint(), tc.debian,
                            _ports_needing(needs, "toolchain", tc.name), note))
    for tool in catalog.tools.values():
        try:
            version = find_tool(tool, project.executor).version
        except MissingTool:
            version = ""
        checks.append(Check("tool", tool.name, version, tool.install_hint(), tool.debian,
                            _ports_needing(needs, "tool", tool.name)))

    wanted = list(dict.fromkeys(p for items in needs.values() for kind, p in items if kind == "package"))
    installed = installed_packages(project, wanted)
    if installed is not None:
        for package in wanted:
            checks.append(Check("package", package, "installed" if package in installed else "",
                                f"apt-get install {package}", [package],
                                _ports_needing(needs, "package", package)))

    macros = _macro_packages(catalog.ports.values())
    wanted_macros = list(dict.fromkeys(m for items in needs.values() for kind, m in items
                                       if kind == "macro"))
    dirs = aclocal_dirs(project) if wanted_macros else []
    for macro in wanted_macros:
        where = find_macro(macro, dirs)
        package = macros[macro]
        checks.append(Check("macro", macro, where.name if where else "",
                            f"apt-get install {package}", [package],
                            _ports_needing(needs, "macro", macro),
                            "" if where or dirs else "aclocal not found"))
    return Diagnosis(checks, [p.name for p in ports])


def fix(project: Project, diagnosis: Diagnosis) -> list[str]:
    """apt-get install the Debian packages of the requested ports' missing rows; returns them."""
    packages = diagnosis.missing_packages()
    if not packages:
        return []
    if os.geteuid() != 0:
        raise MpforgeError("doctor --fix installs with apt-get and needs root",
                           f"run as root, or: sudo apt-get update && sudo apt-get install {' '.join(packages)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    project.executor.run(["apt-get", "update"], env=env, what="apt-get update")
    project.executor.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                         env=env, what="apt-get install")
    return packages
