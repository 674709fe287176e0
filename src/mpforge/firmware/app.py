"""Firmware for a product: the user's Python frozen in, their board, their C modules.

A product's firmware is the tree's port plus three things of the user's own,
all outside the checkout:

* **an app folder** (``--app DIR``): its ``.py`` files and packages are frozen
  into the firmware as they are, so ``import mymodule`` works without a file
  system. How a port freezes is data (``[app]`` in ``ports/<port>.toml``):
  ``freeze = "mpy"`` compiles each file with the tree's ``mpy-cross`` (built
  first, as ``needs`` says, with the port's ``mpy_cross_flags``), ``"str"``
  freezes the source text; either way the files are staged into
  ``build/<target>/app/frozen`` and that folder is handed to the port's own
  make variable (``freeze_var``, e.g. ``FROZEN_MPY_DIR``). ``freeze_also`` names
  folders of the port's own frozen modules that the variable would otherwise
  replace (esp8266's ``modules/``).
* **a board folder** (``--board-dir PATH``, or ``board_dir`` in the app's
  ``mpforge.toml``): a board described outside the tree, built as
  ``<port>-<folder name>``, for ports whose Makefile takes its folder in a
  variable (``[boards] dir_var``; stmhal through ``patches/0013``).
* **C modules** (``c_modules`` in ``mpforge.toml``): each a folder of ``.c``
  files defining ``const mp_obj_module_t mp_module_<folder name>``; the tree's
  generic hook (``patches/0014``: ``EXTRA_MOD_SRC``, ``EXTRA_MOD_NAMES``)
  compiles them and adds them to the builtin modules. After the link, the
  firmware's symbol table (the toolchain's ``nm``) must hold every declared
  module: one left out fails the build with a line naming it, rather than
  giving a firmware that silently lacks it.

This module only computes: the make variables, the build inputs and the
manifest entries of a :class:`~mpforge.core.project.Target` that carries an app or
a board folder. :mod:`mpforge.firmware.target` calls it at four points (make variables,
inputs, staging after the build folder is made, the check after the link).

The app folder and its ``mpforge.toml`` are loaded and checked by
:mod:`mpforge.core.appfile`; the boards a target may take are resolved by
:mod:`mpforge.firmware.selection`.
"""

from __future__ import annotations

import difflib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpforge.core.appfile import SKIPPED_DIRS, FrozenFile
from mpforge.core.config import PortDef, expand
from mpforge.core.errors import BuildFailed, ConfigError
from mpforge.firmware.manifest import sha256_file

if TYPE_CHECKING:
    from mpforge.core.project import Project, Target

#: the tree's hook for C modules (patches/0014), the same for every port
EXTRA_SRC_VAR = "EXTRA_MOD_SRC"
EXTRA_NAMES_VAR = "EXTRA_MOD_NAMES"
FREEZE_KINDS = ("mpy", "str")



# --- how a port freezes ----------------------------------------------------------------

@dataclass(frozen=True)
class FreezeMethod:
    """A port's ``[app]`` table: how it freezes Python files, typed.

    ``kind`` is "" for a port that does not say (an app with Python files is then
    refused for it; C modules alone still build).
    """

    kind: str = ""
    var: str = ""
    also: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    mpy_cross: str = ""
    mpy_cross_var: str = ""
    mpy_cross_flags: tuple[str, ...] = ()
    keep_symbols_var: str = ""
    keep_symbols_flag: str = ""

    @classmethod
    def of(cls, port: PortDef) -> FreezeMethod:
        raw, where = port.app, f"{port.name}.toml [app]"

        def text(key: str) -> str:
            value = raw.get(key, "")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: '{key}' must be a string", f"fix ports/{port.name}.toml")
            return value

        def texts(key: str) -> tuple[str, ...]:
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: '{key}' must be a list of strings",
                                  f"fix ports/{port.name}.toml")
            return tuple(value)

        kind = text("freeze")
        if kind and kind not in FREEZE_KINDS:
            near = difflib.get_close_matches(kind, FREEZE_KINDS, n=1)
            raise ConfigError(f"{where}: freeze = '{kind}' is not a way to freeze",
                              f"did you mean '{near[0]}'?" if near else "use 'mpy' or 'str'")
        method = cls(kind, text("freeze_var"), texts("freeze_also"), texts("needs"),
                     text("mpy_cross"), text("mpy_cross_var"), texts("mpy_cross_flags"),
                     text("keep_symbols_var"), text("keep_symbols_flag"))
        if kind and not method.var:
            raise ConfigError(f"{where}: freeze needs freeze_var (the make variable naming "
                              "the folder to freeze)", f"fix ports/{port.name}.toml")
        if kind == "mpy" and not (method.mpy_cross and method.mpy_cross_var):
            raise ConfigError(f"{where}: freeze = 'mpy' needs mpy_cross and mpy_cross_var",
                              f"fix ports/{port.name}.toml")
        return method


# --- what a build takes from it --------------------------------------------------------

def staging_dir(target: Target) -> Path:
    """Where the files to freeze are gathered for make (``build/<target>/app/frozen``)."""
    return target.build_dir / "app" / "frozen"


def frozen_files(target: Target) -> list[FrozenFile]:
    """Everything the firmware freezes: the port's own modules (``freeze_also``) and the
    app's files; an app file replaces a port module of the same name."""
    app = target.app
    if app is None or not app.frozen:
        return []
    method = FreezeMethod.of(target.port)
    values = target.placeholders()
    files: dict[str, FrozenFile] = {}
    for folder in method.also:
        root = Path(expand(folder, values))
        if root.is_dir():
            for path in sorted(root.rglob("*.py")):
                rel = path.relative_to(root).as_posix()
                if not any(p.startswith(".") or p in SKIPPED_DIRS for p in Path(rel).parts):
                    files[rel] = FrozenFile(rel, path, "port")
    for item in app.frozen:
        files[item.name] = item
    return [files[name] for name in sorted(files)]


def make_vars(target: Target) -> dict[str, str]:
    """The make variables a board folder and an app add (empty for a plain target).

    The board folder goes to the port's ``dir_var``; the staged files to its
    ``freeze_var`` (with ``mpy-cross`` and its flags for ``"mpy"``); the C modules to
    the tree's hook (``EXTRA_MOD_SRC``, ``EXTRA_MOD_NAMES``), with their symbols kept
    where make strips the program (``keep_symbols_var``); then the app's own
    ``make_vars``, which replace any of the same name.
    """
    variables: dict[str, str] = {}
    if target.board_dir is not None and target.port.board_dir_var:
        variables[target.port.board_dir_var] = str(target.board_dir)
    app = target.app
    if app is None:
        return variables
    method = FreezeMethod.of(target.port)
    if app.frozen and method.kind:
        variables[method.var] = str(staging_dir(target))
        if method.kind == "mpy":
            tool = expand(method.mpy_cross, target.placeholders())
            variables[method.mpy_cross_var] = " ".join([tool, *method.mpy_cross_flags])
    if app.c_modules:
        variables[EXTRA_SRC_VAR] = " ".join(str(s) for m in app.c_modules for s in m.sources)
        variables[EXTRA_NAMES_VAR] = " ".join(m.name for m in app.c_modules)
        if method.keep_symbols_var:
            variables[method.keep_symbols_var] = " ".join(
                f"{method.keep_symbols_flag}{m.symbol}" if method.keep_symbols_flag.endswith("=")
                else f"{method.keep_symbols_flag} {m.symbol}".strip() for m in app.c_modules)
    variables.update(app.make_vars)
    return variables


def below_build_vars(target: Target) -> set[str]:
    """The make variables of :func:`make_vars` whose paths the port's makefile puts below
    ``$(BUILD)/`` (the board folder's ``*.c``, the folder to freeze, the C modules'
    sources): they keep their absolute paths (see :mod:`mpforge.firmware.make_paths`)."""
    names = {EXTRA_SRC_VAR}
    if target.port.board_dir_var:
        names.add(target.port.board_dir_var)
    if target.app is not None and target.app.frozen:
        names.add(FreezeMethod.of(target.port).var)
    return names


def needs(target: Target) -> list[str]:
    """The ports to build before this target because of its app (``mpy-cross`` to freeze)."""
    if target.app is None or not target.app.frozen:
        return []
    return list(FreezeMethod.of(target.port).needs)


def _board_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def inputs(target: Target) -> dict[str, Any]:
    """What the app and board folder add to the build's inputs (empty for a plain target).

    ``app`` is what needs a fresh build folder when it changes: what is frozen and
    how, the C modules' files, and the content of every header and board file.
    The tree's makefiles cannot notice a file that went away, and a header's change
    reaches make only through its dependency files, which name objects by paths
    relative to the checkout (ccache's base folder) and so never match. ``app_files``
    is the content of the files make does see, as direct prerequisites: the frozen
    ``.py`` files (staged, see :func:`stage`) and the C sources. A change there
    re-runs make in the same build folder, and make rebuilds what depends on them.
    """
    shape: dict[str, Any] = {}
    content: dict[str, str] = {}
    if target.board_dir is not None:
        shape["board_dir"] = {"path": str(target.board_dir),
                              "files": {p.relative_to(target.board_dir).as_posix(): sha256_file(p)
                                        for p in _board_files(target.board_dir)}}
    app = target.app
    if app is not None:
        frozen = frozen_files(target)
        shape.update({"name": app.name, "folder": str(app.folder),
                      "freeze": FreezeMethod.of(target.port).kind if frozen else "",
                      "frozen": [f.name for f in frozen],
                      "c_modules": {m.name: {"sources": [str(p) for p in m.sources],
                                             "headers": {p.name: sha256_file(p) for p in m.headers}}
                                    for m in app.c_modules}})
        content.update({f"frozen:{f.name}": sha256_file(f.path) for f in frozen})
        content.update({f"c:{m.name}:{p.name}": sha256_file(p) for m in app.c_modules for p in m.sources})
    if not shape:
        return {}
    return {"app": shape, "app_files": content}


def stage(target: Target) -> None:
    """Gather the files to freeze into :func:`staging_dir`, as make should see them.

    A file is written only when its content differs (so make rebuilds only what
    changed); files no longer frozen are removed.
    """
    files = frozen_files(target)
    if not files:
        return
    root = staging_dir(target)
    root.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for item in files:
        dest = root / item.name
        wanted.add(dest)
        data = item.path.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


#: where a compiler names the failing line: ``File "app/broken.py", line 1`` (mpy-cross and
#: CPython alike)
_FILE_LINE = re.compile(r'File "(?P<file>[^"]*)", line (?P<line>\d+)')


def check_sources(target: Target) -> None:
    """Compile every Python file of the app before make runs, so that a mistake is named
    in the user's own terms: ``thermostat/broken.py:1: SyntaxError: invalid syntax``,
    not ``make: *** [...broken.mpy] Error 1`` and the staged copy's path.

    A port that freezes ``.mpy`` files is checked with the tree's own ``mpy-cross`` (built
    first, as ``needs`` says) and the port's flags: the compiler make will use, so what
    passes here compiles there. A port that freezes source text (``"str"``) compiles
    nothing at build time; CPython's compiler checks those files' syntax instead (the 2016
    MicroPython grammar is a subset of today's Python, so it refuses what CPython refuses).
    Raises :class:`BuildFailed` for the first file that does not compile.
    """
    app = target.app
    if app is None or not app.frozen:
        return
    method = FreezeMethod.of(target.port)
    own = [f for f in app.frozen if f.origin == "app"]
    shown = {f.name: _shown(f.path, target.project) for f in own}
    for item in own:
        where = shown[item.name]
        if method.kind == "mpy":
            tool = expand(method.mpy_cross, target.placeholders())
            with tempfile.TemporaryDirectory(prefix="mpforge-check-") as scratch:
                result = target.project.executor.run(
                    [tool, *method.mpy_cross_flags, "-o", str(Path(scratch) / "check.mpy"), "-s", where,
                     str(item.path)], check=False, mutates=False, what="mpy-cross (app check)")
            if result.ok:
                continue
            found = _FILE_LINE.search(result.stdout)
            line = found.group("line") if found else "?"
            last = [t for t in result.stdout.strip().splitlines() if t.strip()]
            error = last[-1].strip() if last else f"mpy-cross exited with status {result.returncode}"
            details = ""  # the message already says all the compiler said that matters
        else:
            try:
                compile(item.path.read_bytes(), where, "exec", dont_inherit=True)
                continue
            except SyntaxError as exc:
                line, error = str(exc.lineno or "?"), f"SyntaxError: {exc.msg}"
                details = ""
        raise BuildFailed(f"{where}:{line}: {error}",
                          f"fix the file; it is frozen into {target.name} as {item.name}", details)


def check_linked(target: Target, values: dict[str, str]) -> None:
    """Every C module of the app must be in the linked firmware: its ``mp_module_NAME`` in
    the symbol table of the port's ELF (``size_elf``, with the placeholders ``values``),
    read with the toolchain's ``nm``. A module left out (a port whose make ignores the
    hook, a tree without ``patches/0014``) fails the build here, with a line naming it,
    instead of publishing a firmware that lacks it."""
    app = target.app
    if app is None or not app.c_modules:
        return
    if not target.port.size_elf:
        raise ConfigError(f"port '{target.port.name}' names no ELF (size_elf) in which to check "
                          "that its C modules were linked", f"add size_elf to ports/{target.port.name}.toml")
    elf = Path(expand(target.port.size_elf, values))
    nm = f"{target.toolchain.cross_compile}nm"
    result = target.project.executor.run([nm, "--defined-only", str(elf)], check=False,
                                         what=f"{nm} (C modules)", mutates=False)
    defined = {fields[-1] for fields in (line.split() for line in result.stdout.splitlines())
               if len(fields) >= 2}
    for module in app.c_modules:
        if module.symbol not in defined:
            rel = module.folder.relative_to(app.folder) if module.folder.is_relative_to(app.folder) \
                else module.folder
            raise BuildFailed(
                f"C module '{module.name}' ({rel}) is not in the linked {elf.name}: "
                f"no {module.symbol} in its symbol table",
                f"does {target.port.name}'s make take {EXTRA_SRC_VAR}/{EXTRA_NAMES_VAR} "
                "(patches/0014-py-extra-c-modules)? does the module define "
                f"const mp_obj_module_t {module.symbol}?")


def _shown(path: Path, project: Project) -> str:
    """A path as the manifest shows it: relative to the checkout when inside it."""
    return path.relative_to(project.root).as_posix() if path.is_relative_to(project.root) \
        else str(path)


def manifest_entries(target: Target) -> dict[str, Any]:
    """The manifest's account of the app and the board folder (empty for a plain target):
    the app's name and folder, how it was frozen, every frozen file with its sha256, the
    C modules with their sources' sha256, the board folder's files with theirs."""
    project = target.project
    entries: dict[str, Any] = {}
    if target.board_dir is not None:
        entries["board_dir"] = {
            "path": _shown(target.board_dir, project),
            "files": [{"name": p.relative_to(target.board_dir).as_posix(), "sha256": sha256_file(p)}
                      for p in _board_files(target.board_dir)]}
    app = target.app
    if app is not None:
        method = FreezeMethod.of(target.port)
        frozen = frozen_files(target)
        entries["app"] = {
            "name": app.name,
            "path": _shown(app.folder, project),
            "freeze": method.kind if frozen else "",
            "mpy_cross_flags": list(method.mpy_cross_flags) if frozen and method.kind == "mpy" else [],
            "frozen": [{"name": f.name, "from": f.origin, "sha256": sha256_file(f.path),
                        "size": f.path.stat().st_size} for f in frozen],
            "c_modules": [{"name": m.name, "symbol": m.symbol,
                           "sources": [{"name": p.name, "sha256": sha256_file(p)}
                                       for p in (*m.sources, *m.headers)]}
                          for m in app.c_modules],
            "make_vars": dict(app.make_vars),
        }
    return entries

