"""An app folder (``--app DIR``) and its ``mpforge.toml``: loaded, typed and checked.

An app is what a product adds to a port: Python files and packages frozen into the
firmware, C modules, a board folder, make variables. This module only reads and
checks the folder; :mod:`mpforge.firmware.app` turns an :class:`App` into make
variables, staged files and manifest entries.

The app's ``mpforge.toml`` (every key optional; its model, with each key's type and
doc, is :class:`mpforge.core.model.app.AppFile`, read by the one loader of data files:
an unknown key or a wrong type is one line naming file, key, expected and got)::

    name = "thermostat"                  # default: the folder's name
    modules = ["thermostat", "util.py"]  # what to freeze (default: every .py
                                         # file and package in the folder)
    board_dir = "boards/THERMO_V1"       # for ports that take board folders
    c_modules = ["cmodules/crc16"]       # folders of C sources
    [make_vars]                          # more make variables (they replace
    MICROPY_PY_BTREE = "0"               # the port's of the same name)

Every path it names (``modules``, ``c_modules``, ``board_dir``) and every file frozen is
confined to the app folder once symlinks are resolved: an app cannot freeze, compile or
hand make a file from elsewhere (``/etc/...``, ``../other``) and call it its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import ConfigError
from mpforge.core.model.app import AppFile
from mpforge.core.model.loader import load
from mpforge.core.paths import unsafe_path_char

#: the app's own settings file, inside the app folder (never frozen)
APP_FILE = "mpforge.toml"
#: folders never frozen, wherever they are
SKIPPED_DIRS = {"__pycache__"}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: the object a C module NAME defines, and what the symbol check looks for
MODULE_SYMBOL = "mp_module_{name}"


@dataclass(frozen=True)
class FrozenFile:
    """One Python file to freeze: its name in the firmware and the file it comes from."""

    name: str  # "thermostat/__init__.py": what ``import`` looks for
    path: Path
    origin: str = "app"  # or "port": one of the port's own frozen modules (freeze_also)


@dataclass(frozen=True)
class CModule:
    """A C module: a folder of C sources that defines ``mp_module_<name>``."""

    name: str
    folder: Path
    sources: tuple[Path, ...]
    headers: tuple[Path, ...] = ()

    @property
    def symbol(self) -> str:
        return MODULE_SYMBOL.format(name=self.name)


@dataclass(frozen=True)
class App:
    """An app folder, loaded and checked: see the module docstring for its ``mpforge.toml``."""

    name: str
    folder: Path
    frozen: tuple[FrozenFile, ...]
    c_modules: tuple[CModule, ...] = ()
    board_dir: Path | None = None
    make_vars: dict[str, str] = field(default_factory=dict)
    config: Path | None = None  # its mpforge.toml, if it has one


def _fail(where: Path, message: str, hint: str) -> ConfigError:
    return ConfigError(f"{where}: {message}", hint)


def safe_path(path: Path, what: str) -> Path:
    """``path`` if make can take it (see :func:`~mpforge.core.paths.unsafe_path_char`), else a
    :class:`ConfigError` naming ``what``."""
    if _CONTROL.search(str(path)):
        raise ConfigError(f"the {what} path {json.dumps(str(path))} holds a control character "
                          "(a newline, say)", "rename it: letters, digits and / . _ - + only")
    char = unsafe_path_char(path)
    if char:
        raise ConfigError(f"the {what} path '{path}' contains {char}, which make cannot handle "
                          "in a path", "move it to a path of letters, digits and / . _ - + only")
    return path


def inside(folder: Path, entry: str | Path, key: str, config: Path) -> Path:
    """``entry`` (relative to the app ``folder``, which is resolved) resolved, if it stays
    inside the folder; else a :class:`ConfigError` naming the file, the key and the entry."""
    path = (folder / entry).resolve()
    if not path.is_relative_to(folder):
        raise _fail(config, f"{key}: '{entry}' is outside the app folder {folder}",
                    "an app uses only its own files: copy it into the app folder")
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
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in rel.parts):
            continue
        name = f"{prefix}/{rel.as_posix()}"
        files.append(FrozenFile(_module_name(name, path), path))
    return files


def _frozen_entry(folder: Path, entry: Path, config: Path) -> list[FrozenFile]:
    """What one ``modules`` entry (a ``.py`` file or a package folder) freezes."""
    path = inside(folder, entry, "modules", config)
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
        if path.name.startswith(".") or path.name in SKIPPED_DIRS:
            continue
        if path.is_file() and path.suffix == ".py":
            files.append(FrozenFile(_module_name(path.name, path), path))
        elif path.is_dir() and (path / "__init__.py").is_file():
            files += _package_files(path, path.name)
    return files


def _c_module(folder: Path, entry: str, config: Path) -> CModule:
    path = inside(folder, entry, "c_modules", config)
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
        safe_path(source, f"C module '{name}' source")
    return CModule(name, path.resolve(), tuple(p.resolve() for p in sources),
                   tuple(p.resolve() for p in headers))


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
    folder = safe_path(folder.resolve(), "app folder")
    config = folder / APP_FILE
    present = config.exists() or config.is_symlink()  # a FIFO or a dangling link is refused, not skipped
    data = load(AppFile, config, str(config)) if present else AppFile()
    name = data.name or folder.name
    where = config if present else folder
    frozen = ([f for entry in data.modules for f in _frozen_entry(folder, Path(entry), config)]
              if data.modules is not None else _default_frozen(folder))
    seen: dict[str, Path] = {}
    for item in frozen:
        if not item.path.resolve().is_relative_to(folder):
            raise _fail(where, f"{item.name} is a link to {item.path.resolve()}, outside the app folder",
                        "an app freezes only its own files: copy it into the app folder")
        if item.name in seen:
            raise _fail(where, f"two files would be frozen as {item.name}: {seen[item.name]} and {item.path}",
                        "freeze only one of them (modules = [...] in " + APP_FILE + ")")
        seen[item.name] = item.path
    c_modules = tuple(_c_module(folder, entry, config) for entry in data.c_modules)
    for module in c_modules:
        outside = [p for p in (*module.sources, *module.headers) if not p.is_relative_to(folder)]
        if outside:
            raise _fail(config, f"c_modules: {outside[0]} (of C module '{module.name}') is outside the "
                        "app folder", "an app compiles only its own files: copy it into the app folder")
    names = [m.name for m in c_modules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _fail(config, f"C module '{twice[0]}' is listed twice", "list each folder once")
    board_dir = inside(folder, data.board_dir, "board_dir", config) if data.board_dir else None
    return App(name, folder, tuple(frozen), c_modules, board_dir, dict(data.make_vars),
               config if present else None)
