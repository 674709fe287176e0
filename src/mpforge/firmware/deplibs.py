"""``invoke deplibs``: build a port's dependency libraries out of tree.

A port lists its deplibs in ``ports/<port>.toml`` (see
:class:`~mpforge.core.config.DeplibDef`). Each is built from an export of the
tracked files of its source folder into
``build/deplibs/<port>/<name>/src``, so tools that write into their source
(``autogen.sh`` rewriting ``texinfo.tex``, axtls's ``make oldconfig``) never
dirty the tree. A stamp of the inputs (source commit, steps, compiler version)
makes a rebuild a no-op when nothing changed.

Steps are argv lists run through the executor, except a few built-ins, whose
first word starts with ``@`` (no shell is ever involved):

``["@copy", SRC, DST]``          copy a file or a folder (without ``.git``)
``["@ar-merge", DEST, SRC]``     add every member of archive SRC to archive DEST
``["@patch", FILE]``             apply a patch (``-p1``) to the step's folder
``["@render", TEMPLATE, DEST, "k=v"...]``  write a jinja2 template of
                                 ``mpforge/firmware/templates``; its variables are the
                                 placeholders (``-`` becomes ``_``) and any ``k=v``
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mpforge.core.config import DeplibDef, expand
from mpforge.core.errors import BuildFailed, ConfigError, GitError
from mpforge.core.project import Target, check_build_paths
from mpforge.core.state import read_json, write_json
from mpforge.firmware.manifest import sha256_file
from mpforge.firmware.toolchain import find_tool, find_toolchain
from mpforge.tree.git import Git


@dataclass
class DeplibResult:
    name: str
    prefix: Path
    rebuilt: bool
    make_vars: dict[str, str]
    key: str = ""


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


TEMPLATES = Path(__file__).resolve().parent / "templates"


def _builtin(target: Target, argv: list[str], cwd: Path, log: Path) -> None:
    """Run one ``@`` step (see the module docstring)."""
    executor = target.project.executor
    executor.log(f"$ {' '.join(argv)} (built-in, in {cwd})")
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
    if executor.dry_run:
        return
    name, args = argv[0], argv[1:]
    if name == "@copy" and len(args) == 2:
        src, dst = cwd / args[0], cwd / args[1]
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True,
                            ignore=shutil.ignore_patterns(".git"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    elif name == "@ar-merge" and len(args) == 2:
        ar = f"{target.toolchain.cross_compile}ar"
        dest, src = cwd / args[0], cwd / args[1]
        members = executor.output([ar, "t", str(src)]).split()
        scratch = cwd / f".ar-merge-{src.stem}"
        scratch.mkdir(exist_ok=True)
        executor.run([ar, "x", str(src)], cwd=scratch, log_file=log)
        executor.run([ar, "r", str(dest), *sorted(set(members))], cwd=scratch, log_file=log)
        shutil.rmtree(scratch)
    elif name == "@patch" and len(args) == 1:
        # git apply outside any repository: the export lives inside the
        # project's own checkout, which git must not take for the target
        executor.run(["git", "apply", "-p1", "--whitespace=nowarn", args[0]], cwd=cwd,
                     env={"GIT_CEILING_DIRECTORIES": str(cwd.parent)}, log_file=log,
                     what=f"patch {Path(args[0]).name}")
    elif name == "@render" and len(args) >= 2 and all("=" in a for a in args[2:]):
        template = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                               keep_trailing_newline=True).get_template(args[0])
        dest = cwd / args[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        context = {k.replace("-", "_"): v for k, v in target.placeholders().items()}
        context.update(dict(a.split("=", 1) for a in args[2:]))
        dest.write_text(template.render(**context))
    else:
        raise ConfigError(f"unknown built-in deplib step {argv!r}",
                          "use @copy SRC DST, @ar-merge DEST SRC, @patch FILE or @render TEMPLATE DEST [k=v ...]")


def _source_dir(target: Target, deplib: DeplibDef) -> Path | None:
    if not deplib.source:
        return None
    if deplib.source.startswith("@"):
        return target.project.source_dir(deplib.source[1:])
    return target.project.tree / deplib.source


def _referenced_files(args: list[str], root: Path) -> dict[str, str]:
    """sha256 of project files a step names (patches, say), so editing them rebuilds the deplib."""
    digests = {}
    for arg in args:
        path = Path(arg)
        if path.is_absolute() and path.is_file() and path.is_relative_to(root) \
                and not path.is_relative_to(root / "build"):
            digests[str(path.relative_to(root))] = sha256_file(path)
    return digests


def build_deplib(target: Target, deplib: DeplibDef, clean: bool = False,
                 after: list[str] | None = None) -> DeplibResult:
    """Build one deplib (or reuse it) and return the make variables it provides.

    ``after`` holds the keys of the deplibs built before it: a rebuilt
    predecessor rebuilds its successors.
    """
    project = target.project
    executor = project.executor
    git = Git(executor)
    source = _source_dir(target, deplib)
    if source is not None and not git.is_checkout(source):
        raise GitError(f"{deplib.source.lstrip('@')} is not checked out (needed by {deplib.name})",
                       f"run `invoke fetch --port {target.port.name}`")
    for tool in deplib.tools:
        find_tool(project.catalog.tools[tool], executor)
    compiler = find_toolchain(target.toolchain, executor)

    work = project.deplibs_root / target.port.name / deplib.name
    prefix = work / "prefix"
    values = {**target.placeholders(), "prefix": str(prefix)}
    expanded = [(sub, [expand(a, values) for a in step]) for sub, step in deplib.steps]
    inputs = {
        "source_commit": git.head(source) if source is not None else "",
        "pinned_sources": {s.name: s.rev for s in target.port.sources},
        "steps": [[sub, *step] for sub, step in deplib.steps],
        "files": _referenced_files([a for _, argv in expanded for a in argv], project.root),
        "templates": {a: sha256_file(TEMPLATES / a)
                      for _, argv in expanded if argv[0] == "@render" for a in argv[1:2]},
        "after": after or [],
        "toolchain": [compiler.name, compiler.version],
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    stamp = work / "stamp.json"
    outputs = [Path(expand(o, values)) for o in deplib.outputs]
    last = read_json(stamp, project.console.warn)  # damaged: a warning, then a rebuild
    fresh = (not clean and last is not None and last.get("key") == key
             and all(o.exists() for o in outputs))
    if not fresh:
        if work.exists() and not executor.dry_run:
            shutil.rmtree(work)
        src = work / "src"
        if source is not None:
            _export(target, git, source, src)
        log = work / "build.log"
        if not executor.dry_run:
            src.mkdir(parents=True, exist_ok=True)
            log.touch()
        for sub, argv in expanded:
            cwd = src / sub
            if not executor.dry_run:
                cwd.mkdir(parents=True, exist_ok=True)
            if argv[0].startswith("@"):
                _builtin(target, argv, cwd, log)
                continue
            executor.run(argv, cwd=cwd if not executor.dry_run else None, log_file=log,
                         what=f"deplib {deplib.name}",
                         hint=f"full log: {log.relative_to(project.root)}")
        missing = [str(o) for o in outputs if not o.exists()]
        if missing and not executor.dry_run:
            raise BuildFailed(f"deplib {deplib.name} did not produce {', '.join(missing)}",
                              f"see {log.relative_to(project.root)}")
        if not executor.dry_run:
            write_json(stamp, {"key": key, **inputs})
    make_vars = {k: (_expand_globs(expand(v, values)) if not executor.dry_run else expand(v, values))
                 for k, v in deplib.make_vars.items()}
    return DeplibResult(deplib.name, prefix, not fresh, make_vars, key)


def build_deplibs(target: Target, clean: bool = False) -> list[DeplibResult]:
    """Build every deplib of the target's port, in the order the port lists them."""
    check_build_paths(target.project)
    results: list[DeplibResult] = []
    for deplib in target.port.deplibs:
        console = target.project.console
        with console.status(f"deplib {deplib.name}"):
            result = build_deplib(target, deplib, clean, [r.key for r in results])
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
