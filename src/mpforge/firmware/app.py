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

The app's ``mpforge.toml`` (every key optional; unknown keys are refused by
name, like the port data)::

    name = "thermostat"                  # default: the folder's name
    modules = ["thermostat", "util.py"]  # what to freeze (default: every .py
                                         # file and package in the folder)
    board_dir = "boards/THERMO_V1"       # for ports that take board folders
    c_modules = ["cmodules/crc16"]       # folders of C sources
    [make_vars]                          # more make variables (they replace
    MICROPY_PY_BTREE = "0"               # the port's of the same name)
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpforge.core.config import MODULE_SYMBOL, App, CModule, FrozenFile, PortDef, check_keys, expand
from mpforge.core.errors import BuildFailed, ConfigError, UnknownTarget
from mpforge.core.project import unsafe_path_char
from mpforge.firmware.manifest import sha256_file

if TYPE_CHECKING:
    from mpforge.core.project import Project, Target

#: the app's own settings file, inside the app folder (never frozen)
APP_FILE = "mpforge.toml"
APP_SCHEMA = {"name": None, "modules": None, "board_dir": None, "c_modules": None,
              "make_vars": {"*": None}}
#: the tree's hook for C modules (patches/0014), the same for every port
EXTRA_SRC_VAR = "EXTRA_MOD_SRC"
EXTRA_NAMES_VAR = "EXTRA_MOD_NAMES"
FREEZE_KINDS = ("mpy", "str")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SKIPPED_DIRS = {"__pycache__"}


# --- the app ---------------------------------------------------------------------------

def _fail(where: Path, message: str, hint: str) -> ConfigError:
    return ConfigError(f"{where}: {message}", hint)


def _safe_path(path: Path, what: str) -> Path:
    char = unsafe_path_char(path)
    if char:
        raise ConfigError(f"the {what} path '{path}' contains {char}, which make cannot handle "
                          "in a path", "move it to a path of letters, digits and / . _ - + only")
    return path


def _module_name(name: str, source: Path) -> str:
    """``name`` (a frozen file's name in the firmware) if ``import`` can reach it."""
    parts = name[:-3].split("/")
    bad = next((p for p in parts if not _IDENTIFIER.fullmatch(p)), None)
    if bad is not None:
        raise ConfigError(f"{source} cannot be frozen: '{bad}' is not a Python module name",
                          "rename it (letters, digits, _), or list what to freeze in "
                          f"{APP_FILE}: modules = [...]")
    return name


def _package_files(package: Path, prefix: str) -> list[FrozenFile]:
    """Every ``.py`` file of a package folder, named ``prefix/...`` (sub-packages included)."""
    files = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if any(p.startswith(".") or p in _SKIPPED_DIRS for p in rel.parts):
            continue
        name = f"{prefix}/{rel.as_posix()}"
        files.append(FrozenFile(_module_name(name, path), path))
    return files


def _frozen_entry(folder: Path, entry: Path, config: Path) -> list[FrozenFile]:
    """What one ``modules`` entry (a ``.py`` file or a package folder) freezes."""
    path = entry if entry.is_absolute() else folder / entry
    if path.is_file() and path.suffix == ".py":
        return [FrozenFile(_module_name(path.name, path), path)]
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise _fail(config, f"modules: '{entry}' is not a package (no __init__.py)",
                        "add an __init__.py, or name its .py files one by one")
        return _package_files(path, path.name)
    raise _fail(config, f"modules: '{entry}' is neither a .py file nor a package folder",
                "fix the path (relative to the app folder)")


def _default_frozen(folder: Path) -> list[FrozenFile]:
    """The app folder's top-level ``.py`` files and packages (folders with ``__init__.py``)."""
    files: list[FrozenFile] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in _SKIPPED_DIRS:
            continue
        if path.is_file() and path.suffix == ".py":
            files.append(FrozenFile(_module_name(path.name, path), path))
        elif path.is_dir() and (path / "__init__.py").is_file():
            files += _package_files(path, path.name)
    return files


def _c_module(folder: Path, entry: str, config: Path) -> CModule:
    path = Path(entry) if Path(entry).is_absolute() else folder / entry
    name = path.name
    if not path.is_dir():
        raise _fail(config, f"C module '{name}': no folder {path}",
                    "c_modules lists folders of C sources, relative to the app folder")
    if not _IDENTIFIER.fullmatch(name):
        raise _fail(config, f"C module folder '{name}' is not a module name",
                    "name the folder as the module: letters, digits, _")
    sources = tuple(sorted(p for p in path.glob("*.c") if p.is_file()))
    if not sources:
        raise _fail(config, f"C module '{name}' has no C source in {path}",
                    f"put the .c file(s) defining {MODULE_SYMBOL.format(name=name)} there, "
                    f"or drop '{entry}' from c_modules")
    headers = tuple(sorted(p for p in path.glob("*.h") if p.is_file()))
    for source in sources:
        _safe_path(source, f"C module '{name}' source")
    return CModule(name, path.resolve(), tuple(p.resolve() for p in sources),
                   tuple(p.resolve() for p in headers))


def _typed(data: dict[str, Any], key: str, kind: type, config: Path, example: str) -> Any:
    """``data[key]`` if it has the type asked for (a list or table: of strings), else a
    :class:`ConfigError` naming the file and the key, with an example as the hint."""
    value = data.get(key)
    if value is None:
        return None
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(config, f"'{key}' must be a list of strings", example)
    elif kind is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _fail(config, f"'{key}' must be a table of strings", example)
    elif not isinstance(value, kind):
        raise _fail(config, f"'{key}' must be a {kind.__name__}", example)
    return value


def load_app(folder: Path) -> App:
    """Load an app folder: what to freeze, its C modules, its board folder, its make variables.

    Every problem is a :class:`ConfigError` naming the file and the key: an unknown
    key (with the nearest valid one), a value of the wrong type, a module that is
    not there, a file name ``import`` could not reach, two files frozen under one name.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no app folder at {folder}", "--app takes a folder of .py files "
                          f"(and optionally an {APP_FILE})")
    folder = _safe_path(folder.resolve(), "app folder")
    config = folder / APP_FILE
    data: dict[str, Any] = {}
    if config.is_file():
        try:
            with config.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise _fail(config, f"invalid TOML: {exc}", "fix the file") from exc
        check_keys(data, APP_SCHEMA, config)
    name = _typed(data, "name", str, config, "the app's name, e.g. name = \"thermostat\"") \
        or folder.name
    modules = _typed(data, "modules", list, config, "e.g. modules = [\"mypkg\", \"util.py\"]")
    frozen = ([f for entry in modules for f in _frozen_entry(folder, Path(entry), config)]
              if modules is not None else _default_frozen(folder))
    seen: dict[str, Path] = {}
    for item in frozen:
        if item.name in seen:
            raise _fail(config if config.is_file() else folder,
                        f"two files would be frozen as {item.name}: {seen[item.name]} and {item.path}",
                        "freeze only one of them (modules = [...] in " + APP_FILE + ")")
        seen[item.name] = item.path
    c_modules = tuple(_c_module(folder, entry, config) for entry in
                      (_typed(data, "c_modules", list, config, "e.g. c_modules = [\"cmodules/crc16\"]")
                       or []))
    names = [m.name for m in c_modules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _fail(config, f"C module '{twice[0]}' is listed twice", "list each folder once")
    board = _typed(data, "board_dir", str, config, "e.g. board_dir = \"boards/MYBOARD\"")
    board_dir = (folder / board).resolve() if board else None
    make_vars = _typed(data, "make_vars", dict, config, "e.g. [make_vars] MICROPY_PY_BTREE = \"0\"") or {}
    return App(name, folder, tuple(frozen), c_modules, board_dir, dict(make_vars),
               config if config.is_file() else None)


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


# --- targets ---------------------------------------------------------------------------

def board_from_dir(project: Project, port: PortDef, folder: Path) -> tuple[str, Path]:
    """The name and folder of a board described outside the tree, checked.

    The port must take a board folder (``[boards] dir_var``); the folder must hold
    the port's marker file (``mpconfigboard.h``); its name becomes the board's
    (``dist/<port>-<NAME>/``) and may not be the name of a board of the tree,
    whose build it would replace.
    """
    if not port.has_boards or not port.board_dir_var:
        able = sorted(p.name for p in project.catalog.ports.values() if p.board_dir_var)
        raise UnknownTarget(f"port '{port.name}' cannot build a board from a folder outside the tree",
                            f"ports that can: {', '.join(able) or 'none'}")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no board folder at {folder}", "--board-dir takes the board's folder")
    folder = _safe_path(folder.resolve(), "board folder")
    if not (folder / port.board_marker).is_file():
        raise ConfigError(f"{folder} is not a {port.name} board folder: it has no {port.board_marker}",
                          f"a board folder holds {port.board_marker} and mpconfigboard.mk "
                          f"(see `invoke build --port {port.name} --board list`)")
    name = folder.name
    tree_board = project.tree / port.make_dir / port.boards_dir / name
    if tree_board.is_dir() and tree_board.resolve() != folder:
        raise ConfigError(f"the board folder {folder} has the name of a board of the tree ({name})",
                          "rename the folder: its name is the board's, and names its build "
                          f"(dist/{port.target_name(name)}/)")
    return name, folder


def resolve_target(project: Project, port: PortDef, board: str | None = None,
                   board_dir: str | Path | None = None, app_dir: str | Path | None = None) -> Target:
    """The target ``invoke build`` and ``invoke deploy`` build: a port, a board, an app.

    The board: ``--board-dir`` (a folder outside the tree), else ``--board`` (one
    of the tree's), else the app's ``board_dir`` for a port that takes board
    folders, else the port's default board.
    """
    if board and board_dir:
        raise ConfigError("--board names a board of the tree and --board-dir one outside it",
                          "give one of them")
    app = load_app(Path(app_dir)) if app_dir else None
    folder = Path(board_dir) if board_dir else None
    if folder is None and not board and app is not None and app.board_dir is not None \
            and port.board_dir_var:
        folder = app.board_dir
    if folder is not None:
        name, folder = board_from_dir(project, port, folder)
        target = replace(project.target(port.name), board=name, board_dir=folder)
    else:
        target = project.target(port.name, board)
    if app is not None:
        target = replace(target, app=app)
        method = FreezeMethod.of(port)
        if app.frozen and not method.kind:
            raise ConfigError(f"port '{port.name}' does not say how to freeze Python modules",
                              f"add [app] freeze = 'mpy' or 'str' to ports/{port.name}.toml, "
                              "or build an app without .py files")
    return target


def list_boards(project: Project, port: PortDef, board_dir: str | Path | None = None,
                app_dir: str | Path | None = None) -> list[tuple[str, str, str]]:
    """``invoke build --board list``: (board, folder, note) for the tree's boards of a port,
    and the board folder given (``--board-dir`` or the app's), if any."""
    if not port.has_boards:
        raise UnknownTarget(f"port '{port.name}' has no boards", "drop --board")
    rows = [(name, str(Path(port.make_dir) / port.boards_dir / name),
             "default" if name == port.default_board else "")
            for name in port.boards(project.tree)]
    folder = Path(board_dir) if board_dir else None
    if folder is None and app_dir:
        app = load_app(Path(app_dir))
        folder = app.board_dir if port.board_dir_var else None
    if folder is not None:
        name, resolved = board_from_dir(project, port, folder)
        rows.append((name, str(resolved), f"outside the tree: dist/{port.target_name(name)}/"))
    return rows


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
                if not any(p.startswith(".") or p in _SKIPPED_DIRS for p in Path(rel).parts):
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

