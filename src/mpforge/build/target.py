"""``invoke build``: one target from tree to ``dist/<target>/`` with a manifest.

The steps, each a no-op when already done:

1. fetch the tree and the port's submodules (:mod:`mpforge.tree.fetch`);
2. apply the patch series (:mod:`mpforge.tree.patches`);
3. build the port's deplibs (:mod:`mpforge.build.deplibs`);
4. run ``make`` in the port folder with an out-of-tree build directory
   (``build/<target>/``), the toolchain's and port's make variables, and the
   full output in ``build/<target>/build.log``;
5. copy the artifacts into ``dist/<target>/`` atomically, with
   ``manifest.json`` (sha256 and size of each artifact, tree commit, applied
   patches, toolchain, make variables, build time).

The tree's makefiles do not notice changed flags, so the inputs that make
cannot see (tree commit, patches, toolchain version, make variables) are
hashed into ``build/<target>/inputs.json``; when they change, the build
directory is started afresh rather than mixing old and new objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from mpforge import __version__
from mpforge.build import app as app_mod
from mpforge.build.ccache import Ccache, CcacheStats
from mpforge.core.config import MakePass, expand
from mpforge.build.deplibs import build_deplibs, merged_make_vars
from mpforge.core.errors import BuildFailed, CommandFailed, ConfigError, MpforgeError
from mpforge.tree.fetch import fetch
from mpforge.tree.git import Git
from mpforge.tree.patches import PatchQueue, TreeFingerprint
from mpforge.core.project import TREE_DIR, Project, Target
from mpforge.core.state import (
    deferred_signals,
    disk_errors,
    fault_point,
    fsync_dir,
    move_file,
    pid_alive,
    read_json,
    write_json,
)
from mpforge.build.toolchain import find_tool, find_toolchain

_COMPILER_ERROR = re.compile(r"^(?P<loc>[^\s:]+:\d+(?::\d+)?): (?:fatal )?error: .*$", re.MULTILINE)
# otherwise: a tool's "error:" (not -Werror=... in a command line), or make giving up
_ANY_ERROR = re.compile(r"^(?:.*\berror:.*|make(?:\[\d+\])?: \*\*\*.*|.*No such file.*)$", re.MULTILINE)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: lines that look like errors but never are the cause of a failed build: the 2016
#: makefiles probe for optional things (``$(shell ls ...libffi-*/include)``, ``find`` of
#: frozen folders, ``cat`` of a saved configuration, ``git describe`` in a tree without tags)
#: and those tools complain on stderr while make goes on.
_HARMLESS = re.compile(r"^(?:ls: cannot access |(?:cat|find|stat): .*: No such file or directory$"
                       r"|fatal: (?:not a git repository|No names found|No tags can describe)"
                       r"|which: no |.*\(ignored\)$)")


#: the linker's own words come before collect2's summary ("ld returned 1 exit status")
_LINK_ERROR = re.compile(r"^.*(?:undefined reference to|multiple definition of) .*$", re.MULTILINE)


def first_error(output: str) -> str:
    """The first compiler error of a make log and the two lines after it.

    Without a compiler error: the first line that looks like one (a tool's ``error:``,
    make giving up, a missing file), skipping the known-harmless lines (:data:`_HARMLESS`);
    without any: the last ten lines.
    """
    match = _COMPILER_ERROR.search(output) or _LINK_ERROR.search(output)
    if not match:
        match = next((m for m in _ANY_ERROR.finditer(output) if not _HARMLESS.match(m.group(0))), None)
    if not match:
        return "\n".join(output.rstrip().splitlines()[-10:])
    lines = output[match.start():].splitlines()
    return "\n".join(lines[:3])


def make_argvs(target: Target, extra_vars: dict[str, str], jobs: int | None,
               cc_prefix: list[str] | None = None) -> list[list[str]]:
    """The ``make`` commands for a target, one per make pass (deterministic: they feed the input hash).

    Variables come, later ones winning, from the toolchain, the port, the board,
    the deplibs (appended to a port variable of the same name), the pass, and
    mpforge itself (the build directory, and ``CC``
    when the toolchain or port adds compiler flags). ``jobs=None`` leaves
    ``-j`` out, for a make that takes its job slots from a jobserver.
    """
    port, values = target.port, target.placeholders()
    variables: dict[str, str] = {}
    variables.update(target.toolchain.make_vars)
    variables.update(port.make_vars)
    if target.board:
        variables[port.board_var] = target.board
        variables.update(port.board_make_vars.get(target.board, {}))
    variables.update(app_mod.make_vars(target))  # a board folder, an app (mpforge.build.app)
    for name, value in extra_vars.items():  # deplib flags add to the port's own
        variables[name] = f"{variables[name]} {value}" if name in variables else value
    flags = target.toolchain.cc_flags + port.cc_flags
    if flags or cc_prefix:
        variables["CC"] = " ".join([*(cc_prefix or []), "{cc}", *flags])
    passes = port.make_passes or [MakePass("", {}, [])]
    argvs = []
    for make_pass in passes:
        pass_vars = {**variables, **make_pass.vars}
        pass_vars[port.build_var] = "{obj}/" + make_pass.name if make_pass.name else "{obj}"
        argv = ["make", "-C", str(target.port_dir), *([f"-j{jobs}"] if jobs else []), "V=1"]
        argv += [f"{k}={expand(v, values)}" for k, v in pass_vars.items()]
        argv += [expand(t, values) for t in (make_pass.targets or port.make_targets)]
        argvs.append(argv)
    return argvs


#: characters make (and the 2016 makefiles' unquoted shell recipes) cannot take in a path
_UNSAFE_PATH = re.compile(r"[\s#$:;%'\"\\*?\[\](){}<>|&=]")


def check_build_paths(project: Project) -> None:
    """Refuse, before anything is fetched or built, a checkout whose path make cannot handle.

    make splits words at spaces (``-ffile-prefix-map=/my proj=.`` becomes two
    arguments, ``BUILD=/my proj/build`` two targets) and the tree's recipes pass
    paths to the shell unquoted, so such a path fails somewhere deep in a deplib
    or a port's build; better one clear line first.
    """
    for what, path in (("checkout", project.root), ("tree", project.tree),
                       ("build folder", project.build_root), ("dist folder", project.dist_root)):
        bad = _UNSAFE_PATH.search(str(path))
        if bad:
            char = {" ": "a space", "\t": "a tab"}.get(bad.group(0), f"'{bad.group(0)}'")
            raise ConfigError(f"the {what} path '{path}' contains {char}, which make and the 2016 "
                              "makefiles cannot handle in a path",
                              "move or clone the checkout to a path of letters, digits and / . _ - + only")


def tidy_dist(dist_root: Path) -> list[str]:
    """Remove what interrupted publishes left in ``dist/``; returns what was done.

    ``.<target>.tmp-PID`` is a staging folder (incomplete: removed);
    ``.<target>.old-PID`` is the previous complete build, moved aside just before
    the new one was renamed in: put back if the new one never arrived, else removed.
    Only leftovers of processes that are gone are touched.
    """
    done: list[str] = []
    if not dist_root.is_dir():
        return done
    for entry in sorted(dist_root.iterdir()):
        match = re.fullmatch(r"\.(.+)\.(tmp|old)-(\d+)", entry.name)
        if not match or pid_alive(int(match.group(3))):
            continue
        final = dist_root / match.group(1)
        if match.group(2) == "old" and not final.exists():
            entry.rename(final)
            done.append(f"restored dist/{final.name} (its replacement was interrupted)")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed dist/{entry.name} (left by an interrupted build)")
    return done


#: the targets this process published (a stop message says whether anything was)
published: list[str] = []


def _publish(target: Target, artifacts: list[tuple[str, Path]], manifest: dict) -> None:
    """Replace ``dist/<target>/`` with the new artifacts; it never holds half a build.

    The artifacts are copied (from any file system: ``build/`` may be on another
    disk) into a staging folder inside ``dist/`` with the manifest, and flushed to
    disk; two renames within ``dist/`` then swap it in (the old folder aside, the
    new one in place), with Ctrl-C and SIGTERM held back between them. A process
    killed between the two leaves the old build aside, which :func:`tidy_dist`
    puts back. A full disk or another OSError is one :class:`StateError` line.
    """
    dist_root = target.project.dist_root
    with disk_errors(f"cannot publish {target.name} to {dist_root}"):
        dist_root.mkdir(parents=True, exist_ok=True)
        for line in tidy_dist(dist_root):
            target.project.console.info(line)
        staging = dist_root / f".{target.name}.tmp-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            for name, path in artifacts:
                shutil.copy2(path, staging / name)
                with open(staging / name, "rb+") as fh:
                    os.fsync(fh.fileno())
                fault_point("publish.copy")
            write_json(staging / "manifest.json", manifest)
            final = target.dist_dir
            old = dist_root / f".{target.name}.old-{os.getpid()}"
            with deferred_signals():
                if final.exists():
                    final.rename(old)
                fault_point("publish.swap")
                staging.rename(final)
                fsync_dir(dist_root)
                published.append(target.name)
            if old.exists():
                shutil.rmtree(old)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


@dataclass
class TreeInfo:
    """The tree as prepared for building: what every target's inputs share."""

    commit: str
    describe: str
    state: str
    patches: list[dict[str, str]]
    #: port -> why its own sources could not be fetched (``keep_going`` only)
    failed_ports: dict[str, MpforgeError] = field(default_factory=dict)
    #: the tree's content against pin + series (None: not computed, e.g. a dry run)
    fingerprint: TreeFingerprint | None = None


def prepare_tree(project: Project, ports: list[str], mirror: str | None, *,
                 keep_going: bool = False) -> TreeInfo:
    """Fetch the tree and the submodules of ``ports``, and apply the patch series.

    ``keep_going``: a port whose pinned sources cannot be fetched is listed in
    ``failed_ports`` rather than failing the preparation of every port.
    """
    console, executor = project.console, project.executor
    check_build_paths(project)
    console.step(f"fetch ({', '.join(ports)})")
    fetched = fetch(project, ports, mirror, keep_going=keep_going)
    console.step("patch")
    queue = PatchQueue(project.patches_dir, project.tree, executor)
    try:
        newly = queue.apply()  # finishes an interrupted or half-applied series first, or fails
    finally:
        for note in queue.notes:
            console.warn(note)
    console.info(f"applied {len(newly)} patch(es)" if newly else "patch series up to date")
    git = Git(executor)
    pin = git.gitlink(project.root, TREE_DIR) if project.tree_is_submodule else git.head(project.tree)
    fingerprint = queue.fingerprint(pin)
    if fingerprint.differing:
        shown = ", ".join(fingerprint.differing[:5]) + (" ..." if len(fingerprint.differing) > 5 else "")
        console.warn(f"micropython/ is not the pin plus the series: {len(fingerprint.differing)} "
                     f"difference(s) ({shown}); building it as it is, the manifest lists them")
    return TreeInfo(git.head(project.tree),
                    git.query(project.tree, "describe", "--tags", "--always", "--dirty"),
                    fingerprint.digest, queue.applied(), fetched.failed_ports, fingerprint)


def source_date_epoch(project: Project) -> int:
    """The tree commit's time: a build date that is the same on every rebuild."""
    out = Git(project.executor).query(project.tree, "log", "-1", "--format=%ct")
    return int(out) if out.isdigit() else 0


def elf_size(target: Target, elf: Path) -> dict[str, int]:
    """text/data/bss of an ELF, from the toolchain's ``size``, plus the port's size regions
    (``<region>`` used and ``<region>_limit``)."""
    size_tool = f"{target.toolchain.cross_compile}size"
    out = target.project.executor.output([size_tool, str(elf)], check=False)
    lines = out.splitlines()
    if len(lines) < 2:
        return {}
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    sizes = {"text": text, "data": data, "bss": bss}
    if target.port.size_regions:
        sections: dict[str, int] = {}
        for line in target.project.executor.output([size_tool, "-A", str(elf)]).splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                sections[fields[0]] = int(fields[1])
        for region in target.port.size_regions:
            sizes[region.name] = sum(sections.get(s, 0) for s in region.sections)
            if region.limit:
                sizes[f"{region.name}_limit"] = region.limit
    return sizes


def regions_note(size: dict[str, int]) -> str:
    """``iram 32452/32768 (316 left)`` for every region with a limit."""
    return ", ".join(f"{name[:-6]} {size[name[:-6]]}/{limit} ({limit - size[name[:-6]]} left)"
                     for name, limit in size.items() if name.endswith("_limit"))


@dataclass
class BuildResult:
    """One target's outcome; ``manifest`` is what ``dist/<target>/manifest.json`` holds."""

    target: str
    dist_dir: Path
    manifest: dict
    changed: bool
    duration: float
    cached: bool = False
    cpu_seconds: float = 0.0  # of make and everything it ran (0 when cached)
    #: ccache's hits and misses during :func:`build` (None: compiled without ccache)
    ccache: CcacheStats | None = None
    #: where the tree built was not the pin plus the series (also in the manifest)
    tree_differs: list[str] = field(default_factory=list)


def build_target(target: Target, tree: TreeInfo, deplib_vars: dict[str, str], *,
                 jobs: int | None, clean: bool = False, make_env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = (), ccache: bool | None = None) -> BuildResult:
    """Build one target of a prepared tree (see :func:`prepare_tree`) into ``dist/``.

    ``make_env``/``pass_fds`` hand make a jobserver (see :mod:`mpforge.build.matrix`),
    in which case ``jobs`` is None. Every build path ends here, so this is where
    ccache is decided (:meth:`~mpforge.build.ccache.Ccache.for_build`: ``ccache`` is an
    explicit choice, None the project's setting): its prefix goes in front of the
    compiler in ``CC``, and its environment into make's.
    """
    project = target.project
    console, executor = project.console, project.executor
    started = time.monotonic()
    found = find_toolchain(target.toolchain, executor)
    for tool in target.port.tools:
        find_tool(project.catalog.tools[tool], executor)

    cache = Ccache.for_build(project, ccache)
    argvs = make_argvs(target, deplib_vars, jobs, cache.prefix if cache else None)
    epoch = source_date_epoch(project)
    inputs = {
        "tree_commit": tree.commit,
        "tree_state": tree.state,
        "patches": tree.patches,
        "toolchain": [target.toolchain.name, found.version],
        "source_date_epoch": epoch,
        # build folders made while CCACHE_BASEDIR was set hold dependency files whose
        # relative targets make never matches (header edits rebuilt nothing): the
        # dependency layout is an input, so those folders start afresh once
        "dependency_paths": "absolute",
        # artifacts, sizes...: a change re-runs make and republishes (no fresh build dir)
        "port_data": _file_digest([target.port.source, target.toolchain.source]),
        # neither -j nor a ccache prefix changes what is built
        "make": [[a for a in argv if not a.startswith("-j")] for argv in
                 make_argvs(target, deplib_vars, None)],
        # the app's shape ("app") and its files' content ("app_files", seen by make)
        **app_mod.inputs(target),
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    differs = tree.fingerprint.differing if tree.fingerprint else []
    previous = target.dist_dir / "manifest.json"
    if not executor.dry_run:
        for line in tidy_dist(project.dist_root):
            console.info(line)
    # damaged (truncated by an older mpforge, edited): a warning, then rebuilt and replaced
    old = read_json(previous, console.warn) if not executor.dry_run else None
    if not clean and old is not None:
        if old.get("inputs_key") == key and all(
                (target.dist_dir / a.get("name", "")).is_file() for a in old.get("artifacts", [])):
            return BuildResult(target.name, target.dist_dir, old, False,
                               time.monotonic() - started, cached=True, tree_differs=differs)

    build_dir = target.build_dir
    stamp = build_dir / "inputs.json"
    make_key = hashlib.sha256(json.dumps(
        {k: v for k, v in inputs.items() if k not in ("tree_state", "port_data", "app_files")},
        sort_keys=True).encode()).hexdigest()
    last = read_json(stamp, console.warn)
    damaged = last is None and stamp.exists()  # nothing can be trusted: start over
    last = last or {}
    stale = bool(last) and last.get("make_key") != make_key
    # make was stopped mid-build (Ctrl-C, killed): the tree's makefiles cannot
    # always recover from half-written intermediates (qstr headers), so start over
    interrupted = last.get("state") == "building"
    if (clean or stale or interrupted or damaged) and build_dir.exists() and not executor.dry_run:
        reason = ("clean build" if clean else "inputs changed" if stale
                  else "its inputs.json was damaged" if damaged
                  else "the last build was interrupted")
        console.info(f"{target.name}: {reason}: starting a fresh build directory")
        shutil.rmtree(build_dir)
    values = target.placeholders()
    if not executor.dry_run:
        build_dir.mkdir(parents=True, exist_ok=True)
        _write_stamp(stamp, make_key, inputs, "building")
        app_mod.stage(target)  # the files to freeze, where the port's make takes them
        # whatever another build left in the tree must not be taken for ours
        for art in target.port.artifacts:
            if art.in_tree:
                Path(expand(art.path, values)).unlink(missing_ok=True)

    log = build_dir / "build.log"
    if not executor.dry_run:
        log.write_text("")
    env = {"SOURCE_DATE_EPOCH": str(epoch), **(cache.env if cache else {}), **(make_env or {})}
    if found.extra_path:
        env["PATH"] = os.pathsep.join([found.extra_path, os.environ.get("PATH", "")])
    make_started = time.monotonic()
    cpu = 0.0
    for argv in argvs:
        try:
            cpu += executor.run(argv, env=env, log_file=log, what=f"make ({target.name})",
                                pass_fds=pass_fds, measure=True).cpu_seconds
        except CommandFailed as exc:
            _write_stamp(stamp, make_key, inputs, "failed")  # make can resume from a failed build
            rel_log = log.relative_to(project.root) if log.is_relative_to(project.root) else log
            raise BuildFailed(f"build of {target.name} failed", f"full log: {rel_log}",
                              first_error(log.read_text()), exc.returncode) from exc
    for step in target.port.post_steps:
        executor.run([expand(a, values) for a in step], env=env, log_file=log,
                     what=f"post-build step ({target.name})")
    make_seconds = time.monotonic() - make_started
    if not executor.dry_run:
        _write_stamp(stamp, make_key, inputs, "done")
    if executor.dry_run:
        return BuildResult(target.name, target.dist_dir, {}, False, time.monotonic() - started)
    build_cpu = cpu

    artifacts: list[tuple[str, Path]] = []
    for art in target.port.artifacts:
        path = Path(expand(art.path, values))
        if art.in_tree:
            kept = build_dir / "out" / art.name
            kept.parent.mkdir(exist_ok=True)
            if path.exists():
                move_file(path, kept)  # build/ may be on another file system than the tree
            path = kept
        if not path.exists():
            raise BuildFailed(f"make succeeded but {path.name} was not produced",
                              f"check the artifacts of ports/{target.port.name}.toml; log: {log}")
        if art.dist:
            artifacts.append((art.name, path))
    app_mod.check_linked(target, values)  # every declared C module is in the firmware

    manifest = {
        "target": target.name,
        "port": target.port.name,
        "board": target.board or None,
        "artifacts": [{"name": name, "sha256": sha256_file(path), "size": path.stat().st_size}
                      for name, path in artifacts],
        "size": elf_size(target, Path(expand(target.port.size_elf, values)))
        if target.port.size_elf else {},
        "tree": {"commit": tree.commit, "describe": tree.describe, **_tree_facts(tree)},
        "patches": tree.patches,
        "toolchain": {"name": found.name, "version": found.version},
        "make": [dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
                 for argv in argvs],
        "make_targets": [[a for a in argv[3:] if "=" not in a and not a.startswith("-")]
                         for argv in argvs],
        "source_date_epoch": epoch,
        "inputs_key": key,
        "build_seconds": round(make_seconds, 3),
        "build_cpu_seconds": round(build_cpu, 3),
        **app_mod.manifest_entries(target),
        "mpforge": __version__,
    }
    changed = old is None or old.get("artifacts") != manifest["artifacts"] \
        or old.get("inputs_key") != key or not target.dist_dir.is_dir()
    if changed or old is None:
        _publish(target, artifacts, manifest)
    else:
        manifest = old
    return BuildResult(target.name, target.dist_dir, manifest, changed, time.monotonic() - started,
                       cpu_seconds=build_cpu, tree_differs=differs)


def _file_digest(paths: list[Path | None]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None and path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _write_stamp(stamp: Path, make_key: str, inputs: dict, state: str) -> None:
    write_json(stamp, {"make_key": make_key, "state": state, **inputs})


def _tree_facts(tree: TreeInfo) -> dict:
    """The manifest's account of the tree: its content fingerprint, and whether (and where)
    it differs from the pin plus the series. Reported, never refused."""
    fp = tree.fingerprint
    if fp is None:
        return {}
    return {"pin": fp.pin, "fingerprint": fp.digest, "pin_plus_series": fp.expected,
            "is_pin_plus_series": fp.matches, "differing": fp.differing}


def port_deplibs(target: Target, clean: bool = False) -> dict[str, str]:
    """Build the port's deplibs (if any) and return the make variables they provide."""
    if not target.port.deplibs:
        return {}
    target.project.console.step(f"deplibs ({target.port.name})")
    return merged_make_vars(build_deplibs(target, clean))


def with_needs(project: Project, ports: list[str]) -> list[str]:
    """``ports`` preceded by the ports they need (``needs``), each once."""
    return project.catalog.with_needs(ports)


def build_needs(project: Project, ports: list[str], tree: TreeInfo, jobs: int | None,
                ccache: bool | None = None) -> None:
    """Build (or find cached) the default target of every port that ``ports`` need.

    Also when a needed port is among ``ports``: its artifact must exist before
    the targets that need it start, not merely somewhere in the same run.
    """
    needed = [p for p in with_needs(project, ports)
              if any(p in project.catalog.port(q).needs for q in with_needs(project, ports))]
    for name in needed:
        target = project.target(name)
        project.console.step(f"needed first: {target.name}")
        build_target(target, tree, port_deplibs(target), jobs=jobs or os.cpu_count() or 1,
                     ccache=ccache)


def build(target: Target, *, jobs: int | None = None, clean: bool = False,
          mirror: str | None = None, ccache: bool | None = None) -> BuildResult:
    """Build ``target`` end to end; see the module docstring.

    ``ccache``: True/False to force it on or off, None for the project's setting
    (see :mod:`mpforge.build.ccache`); the result carries its hits and misses.
    """
    project = target.project
    find_toolchain(target.toolchain, project.executor)  # fail fast, before fetching anything
    cache = Ccache.for_build(project, ccache)
    before = cache.counters() if cache else {}
    tree = prepare_tree(project, with_needs(project, [target.port.name]), mirror)
    build_needs(project, [target.port.name], tree, jobs, ccache)
    app_mod.build_needs(target, tree, jobs, ccache)  # mpy-cross, to freeze an app
    deplib_vars = port_deplibs(target, clean)
    project.console.step(f"make {target.name}")
    result = build_target(target, tree, deplib_vars, jobs=jobs or os.cpu_count() or 1, clean=clean,
                          ccache=ccache)
    if cache:
        result.ccache = cache.stats_since(before)
    return result
