"""An app folder (``--app DIR``) and its ``mpforge.toml``: loaded, typed and checked.

An app is what a product adds to a port: Python files and packages frozen into the
firmware, C modules, a board folder, make variables. This module only reads and
checks the folder; :mod:`mpforge.firmware.app` turns an :class:`App` into make
variables, staged files and manifest entries.

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

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpforge.core.config import check_keys
from mpforge.core.errors import ConfigError
from mpforge.core.project import unsafe_path_char

#: the app's own settings file, inside the app folder (never frozen)
APP_FILE = "mpforge.toml"
APP_SCHEMA = {"name": None, "modules": None, "board_dir": None, "c_modules": None,
              "make_vars": {"*": None}}
#: folders never frozen, wherever they are
SKIPPED_DIRS = {"__pycache__"}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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
    """``path`` if make can take it (see :func:`~mpforge.core.project.unsafe_path_char`), else a
    :class:`ConfigError` naming ``what``."""
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
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in rel.parts):
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
        if path.name.startswith(".") or path.name in SKIPPED_DIRS:
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
        safe_path(source, f"C module '{name}' source")
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
    folder = safe_path(folder.resolve(), "app folder")
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
