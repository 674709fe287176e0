"""``invoke deplibs``: build a port's dependency libraries out of tree.

A port lists its deplibs in ``ports/<port>.toml`` (see
:class:`~mpforge.config.DeplibDef`). Each is built from an export of the
tracked files of its source folder into
``build/deplibs/<port>/<name>/src``, so tools that write into their source
(``autogen.sh`` rewriting ``texinfo.tex``, axtls's ``make oldconfig``) never
dirty the tree. A stamp of the inputs (source commit, steps, compiler version)
makes a rebuild a no-op when nothing changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .config import DeplibDef, expand
from .errors import BuildFailed, ConfigError, GitError
from .git import Git
from .project import Target
from .toolchain import find_tool, find_toolchain


@dataclass
class DeplibResult:
    name: str
    prefix: Path
    rebuilt: bool
    make_vars: dict[str, str]


def _expand_globs(value: str) -> str:
    """Resolve ``*`` in the path part of each word (``-I/x/lib/libffi-*/include``)."""
    words = []
    for word in value.split():
        if "*" in word:
            cut = word.find("/")
            flag, pattern = word[:cut], word[cut:]
            matches = sorted(glob.glob(pattern))
            if len(matches) != 1:
                raise ConfigError(f"deplib path {pattern!r} matched {len(matches)} paths, not one",
                                  "fix the deplib's make_vars or rebuild it with --clean")
            word = flag + matches[0]
        words.append(word)
    return " ".join(words)


def _export(target: Target, git: Git, source: Path, dest: Path) -> None:
    """Copy the tracked files of ``source`` into ``dest``."""
    listing = git.run(source, "ls-files", "-z", mutates=False).stdout
    if target.project.executor.dry_run:
        return
    for rel in filter(None, listing.split("\0")):
        src = source / rel
        if src.is_symlink() or src.is_file():
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out, follow_symlinks=False)


def build_deplib(target: Target, deplib: DeplibDef, clean: bool = False) -> DeplibResult:
    """Build one deplib (or reuse it) and return the make variables it provides."""
    project = target.project
    executor = project.executor
    git = Git(executor)
    source = project.tree / deplib.source
    if not git.is_checkout(source):
        raise GitError(f"{deplib.source} is not checked out (needed by {deplib.name})",
                       f"run `invoke fetch --port {target.port.name}`")
    for tool in deplib.tools:
        find_tool(project.catalog.tools[tool], executor)
    compiler = find_toolchain(target.toolchain, executor)

    work = project.deplibs_root / target.port.name / deplib.name
    prefix = work / "prefix"
    values = {**target.placeholders(), "prefix": str(prefix)}
    inputs = {
        "source_commit": git.head(source),
        "steps": [[sub, *argv] for sub, argv in deplib.steps],
        "toolchain": [compiler.name, compiler.version],
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    stamp = work / "stamp.json"
    outputs = [Path(expand(o, values)) for o in deplib.outputs]
    fresh = (not clean and stamp.exists()
             and json.loads(stamp.read_text()).get("key") == key
             and all(o.exists() for o in outputs))
    if not fresh:
        if work.exists() and not executor.dry_run:
            shutil.rmtree(work)
        src = work / "src"
        _export(target, git, source, src)
        log = work / "build.log"
        for sub, step in deplib.steps:
            argv = [expand(a, values) for a in step]
            cwd = src / sub
            if not executor.dry_run:
                cwd.mkdir(parents=True, exist_ok=True)
            executor.run(argv, cwd=cwd if not executor.dry_run else None, log_file=log,
                         what=f"deplib {deplib.name}",
                         hint=f"full log: {log.relative_to(project.root)}")
        missing = [str(o) for o in outputs if not o.exists()]
        if missing and not executor.dry_run:
            raise BuildFailed(f"deplib {deplib.name} did not produce {', '.join(missing)}",
                              f"see {log.relative_to(project.root)}")
        if not executor.dry_run:
            stamp.write_text(json.dumps({"key": key, **inputs}, indent=2))
    make_vars = {k: (_expand_globs(expand(v, values)) if not executor.dry_run else expand(v, values))
                 for k, v in deplib.make_vars.items()}
    return DeplibResult(deplib.name, prefix, not fresh, make_vars)


def build_deplibs(target: Target, clean: bool = False) -> list[DeplibResult]:
    """Build every deplib of the target's port, in the order the port lists them."""
    results = []
    for deplib in target.port.deplibs:
        console = target.project.console
        with console.status(f"deplib {deplib.name}"):
            result = build_deplib(target, deplib, clean)
        console.info(f"deplib {deplib.name}: {'built' if result.rebuilt else 'up to date'}")
        results.append(result)
    return results


def merged_make_vars(results: list[DeplibResult]) -> dict[str, str]:
    """Make variables from all deplibs; values for the same name are joined with spaces."""
    merged: dict[str, str] = {}
    for result in results:
        for key, value in result.make_vars.items():
            merged[key] = f"{merged[key]} {value}" if key in merged else value
    return merged
