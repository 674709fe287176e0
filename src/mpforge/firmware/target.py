"""One target's make, from a prepared tree to ``dist/<target>/`` with a manifest.

:func:`build_target` is where every build ends (:mod:`mpforge.firmware.pipeline` has
fetched and patched the tree, probed the toolchain and built the deplibs). Its
steps, each a no-op when already done:

1. the inputs make cannot see (tree commit and state, patches, toolchain version,
   make variables, port data, the app) are hashed (:mod:`mpforge.firmware.manifest`);
   a published build with the same key and all its artifacts is reused;
2. ``build/<target>/`` starts afresh when those inputs changed, the last make was
   interrupted, or its stamp (``inputs.json``) is damaged: the tree's makefiles do
   not notice changed flags, and mixing old and new objects is how wrong firmware
   gets built;
3. ``make`` runs in the port folder with the out-of-tree build directory, the
   toolchain's, port's, board's and app's make variables (:func:`make_argvs`), its
   output in ``build/<target>/build.log``; a failure shows the first error
   (:func:`first_error`);
4. the artifacts are published to ``dist/<target>/`` atomically
   (:mod:`mpforge.firmware.dist`) with ``manifest.json``: each artifact's sha256 and
   size, the tree, the patches, the toolchain, the make variables, the sizes, the
   version string; with ``sbom.spdx.json`` (:mod:`mpforge.firmware.sbom`) and
   ``provenance.intoto.json`` (:mod:`mpforge.firmware.provenance`) next to it.

The version the firmware shows (banner, ``os.uname()``) is
:func:`~mpforge.firmware.manifest.version_string`: make gets its suffix (the series
id, ``.dirty``) as ``MPFORGE_VERSION_SUFFIX``, which the tree's
``py/makeversionhdr.py`` appends (patch 0017), and the manifest names the same string.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mpforge import __version__
from mpforge.core.config import MakePass, expand
from mpforge.core.errors import BuildFailed, CommandFailed
from mpforge.core.model import documents
from mpforge.core.project import Target
from mpforge.core.state import move_file, read_json, write_json
from mpforge.firmware import app as app_mod
from mpforge.firmware import materials as materials_mod
from mpforge.firmware.ccache import Ccache, CcacheStats
from mpforge.firmware.dist import publish
from mpforge.firmware.make_paths import from_make_dir, hash_dir_mapped
from mpforge.firmware.manifest import (
    files_digest,
    inputs_key,
    sha256_file,
    source_date_epoch,
    tree_facts,
    version_string,
    version_suffix,
)
from mpforge.firmware.provenance import PROVENANCE_NAME, statement
from mpforge.firmware.sbom import SBOM_NAME, sbom_document
from mpforge.firmware.size import elf_size
from mpforge.firmware.toolchain import Found, find_tool, find_toolchain
from mpforge.firmware.verify import SHAPES, plain_name
from mpforge.tree.prepare import TreeInfo

#: ccache's stats log of a build, in its build folder (CCACHE_STATSLOG)
STATS_LOG = "ccache-stats.log"

_COMPILER_ERROR = re.compile(r"^(?P<loc>[^\s:]+:\d+(?::\d+)?): (?:fatal )?error: .*$", re.MULTILINE)
# otherwise: a tool's "error:" (not -Werror=... in a command line), or make giving up
_ANY_ERROR = re.compile(r"^(?:.*\berror:.*|make(?:\[\d+\])?: \*\*\*.*|.*No such file.*)$", re.MULTILINE)


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
    the app, the variant (``make_vars``), the deplibs and the variant's ``append_vars``
    (appended to a variable of the same name), the pass, and
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
    variables.update(app_mod.make_vars(target))  # a board folder, an app (mpforge.firmware.app)
    variant = port.variant(target.variant) if target.variant else None
    if variant is not None:
        variables.update(variant.make_vars)
    for name, value in [*extra_vars.items(), *(variant.append_vars.items() if variant else ())]:
        # deplib flags and a variant's added flags add to the port's own
        variables[name] = f"{variables[name]} {value}" if name in variables else value
    flags = with_assembler_prefix_maps(target.toolchain.cc_flags + port.cc_flags)
    if flags or cc_prefix:
        variables["CC"] = " ".join([*(cc_prefix or []), "{cc}", *flags])
    # checkout paths relative to the make folder, so that the command lines ccache hashes
    # are the same in every checkout (mpforge.firmware.make_paths); CC keeps its prefix
    # maps absolute, and what the makefile puts below $(BUILD)/ stays absolute
    absolute = {"CC", *app_mod.below_build_vars(target)}
    passes = port.make_passes or [MakePass("", {}, [])]
    argvs = []
    for make_pass in passes:
        pass_vars = {**variables, **make_pass.vars}
        pass_vars[port.build_var] = "{obj}/" + make_pass.name if make_pass.name else "{obj}"
        argv = ["make", "-C", str(target.port_dir), *([f"-j{jobs}"] if jobs else []), "V=1"]
        argv += [f"{k}={expand(v, values) if k in absolute else from_make_dir_of(target, expand(v, values))}"
                 for k, v in pass_vars.items()]
        argv += [from_make_dir_of(target, expand(t, values)) for t in (make_pass.targets or port.make_targets)]
        argvs.append(argv)
    return argvs


def from_make_dir_of(target: Target, value: str) -> str:
    """``value`` (a make variable's value or a make target) with the checkout's paths
    relative to the target's make folder (:func:`mpforge.firmware.make_paths.from_make_dir`)."""
    project = target.project
    return from_make_dir(value, target.port_dir, [project.root, project.tree, project.build_root,
                                                  project.dist_root, project.deplibs_root])


def _debug_mapped(target: Target) -> bool:
    """Whether the compiler's prefix maps cover the make folder (then ccache's ``hash_dir``
    can be off: the debug information names the mapped folder in every checkout)."""
    flags = [expand(f, target.placeholders()) for f in target.toolchain.cc_flags + target.port.cc_flags]
    return hash_dir_mapped(flags, target.port_dir)


def with_assembler_prefix_maps(flags: list[str]) -> list[str]:
    """``flags`` with a ``-fdebug-prefix-map`` for each ``-ffile-prefix-map``.

    gcc (12) hands the assembler (``as --debug-prefix-map``) the debug map only: a ``.S``
    file built with ``-g`` (stmhal's ``startup_stm32.S``) otherwise keeps the absolute
    folder as its DWARF compilation directory, and the ELF differs between checkouts."""
    out = list(flags)
    for flag in flags:
        if flag.startswith("-ffile-prefix-map="):
            debug = "-fdebug-prefix-map=" + flag.split("=", 1)[1]
            if debug not in out:
                out.append(debug)
    return out


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
    #: ccache's hits and misses during the build, from its own stats log (None: compiled
    #: without ccache, or nothing made)
    ccache: CcacheStats | None = None
    #: where the tree built was not the pin plus the series (also in the manifest)
    tree_differs: list[str] = field(default_factory=list)


def build_target(target: Target, tree: TreeInfo, deplib_vars: dict[str, str], *,
                 jobs: int | None, clean: bool = False, make_env: dict[str, str] | None = None,
                 pass_fds: tuple[int, ...] = (), ccache: bool | None = None,
                 ccache_remote: str | None = None, toolchain: Found | None = None) -> BuildResult:
    """Build one target of a prepared tree into ``dist/``; see the module docstring.

    :class:`~mpforge.firmware.pipeline.Pipeline` calls this after preparing the tree, the
    toolchain and the port's host tools (``toolchain``: the toolchain's probe, done once per
    command; both are probed here when it is None)
    and the deplibs (``deplib_vars``). ``make_env``/``pass_fds`` hand make a jobserver
    (see :mod:`mpforge.firmware.matrix`), in which case ``jobs`` is None. Every build path
    ends here, so this is where ccache is decided
    (:meth:`~mpforge.firmware.ccache.Ccache.for_build`: ``ccache`` is an explicit choice,
    None the project's setting).
    """
    project = target.project
    started = time.monotonic()
    started_on = datetime.datetime.now(datetime.UTC)
    found = toolchain
    if found is None:  # a caller without a pipeline: probe what the pipeline probes once
        found = find_toolchain(target.toolchain, project.executor)
        for tool in target.port.tools:
            find_tool(project.catalog.tools[tool], project.executor)
    cache = Ccache.for_build(project, ccache, ccache_remote)
    argvs = make_argvs(target, deplib_vars, jobs, cache.prefix if cache else None)
    epoch = source_date_epoch(project)
    clean_tree = tree.fingerprint is not None and tree.fingerprint.matches
    version = version_string(tree.describe, tree.patches, clean_tree)
    inputs = _inputs(target, tree, found, deplib_vars, epoch, version)
    key = inputs_key(inputs)
    differs = tree.fingerprint.differing if tree.fingerprint else []

    old = _published_manifest(target)
    if not clean and old is not None and _is_current(target, old, key):
        return BuildResult(target.name, target.dist_dir, old, False, time.monotonic() - started,
                           cached=True, tree_differs=differs)
    mark = _fresh_build_dir(target, inputs, clean)
    # what the firmware says it is: the tree's makeversionhdr.py appends the suffix
    build_env = {"SOURCE_DATE_EPOCH": str(epoch),
                 "MPFORGE_VERSION_SUFFIX": version_suffix(tree.patches, clean_tree)}
    stats_log = target.build_dir / STATS_LOG
    env = {**build_env, **(cache.env_for(_debug_mapped(target), str(stats_log)) if cache else {}),
           **(make_env or {})}
    if cache and not project.executor.dry_run:
        stats_log.write_text("")  # this build's compiles only (CcacheStats.from_log)
    if found.extra_path:
        env["PATH"] = os.pathsep.join([found.extra_path, os.environ.get("PATH", "")])
    make_started = time.monotonic()
    cpu = _run_make(target, argvs, env, pass_fds, mark)
    make_seconds = time.monotonic() - make_started
    if project.executor.dry_run:
        return BuildResult(target.name, target.dist_dir, {}, False, time.monotonic() - started)

    artifacts = _collect_artifacts(target)
    manifest = {
        "target": target.name,
        "port": target.port.name,
        "board": target.board or None,
        "variant": target.variant or None,
        "artifacts": [{"name": name, "sha256": sha256_file(path), "size": path.stat().st_size}
                      for name, path in artifacts],
        "size": elf_size(target, Path(expand(target.port.size_elf, target.placeholders())))
        if target.port.size_elf else {},
        "version": version,
        "tree": {"commit": tree.commit, "describe": tree.describe, **tree_facts(tree)},
        "patches": tree.patches,
        "toolchain": {"name": found.name, "version": found.version},
        "make": [dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
                 for argv in argvs],
        "make_targets": [[a for a in argv[3:] if "=" not in a and not a.startswith("-")]
                         for argv in argvs],
        "source_date_epoch": epoch,
        "inputs_key": key,
        "build_seconds": round(make_seconds, 3),
        "build_cpu_seconds": round(cpu, 3),
        **app_mod.manifest_entries(target),
        "mpforge": __version__,
    }
    if old is None or old.get("artifacts") != manifest["artifacts"] \
            or old.get("inputs_key") != key or not _has_documents(target):
        files = [materials_mod.FileDigest(name, *materials_mod.digests(path)) for name, path in artifacts]
        components = materials_mod.collect(target, tree, found.version)
        documents = {
            SBOM_NAME: sbom_document(manifest, files, components),
            PROVENANCE_NAME: statement(target, manifest, files, components, build_env, started_on,
                                       datetime.datetime.now(datetime.UTC)),
        }
        publish(target, artifacts, manifest, documents)
        changed = True
    else:  # the same firmware again: what dist/ holds stays, with its build time
        manifest, changed = old, False
    return BuildResult(target.name, target.dist_dir, manifest, changed, time.monotonic() - started,
                       cpu_seconds=cpu, tree_differs=differs,
                       ccache=CcacheStats.from_log(stats_log.read_text()) if cache and stats_log.exists() else None)


#: inputs that make itself notices (a changed file) or that change no object file:
#: left out of the key that decides whether the build folder starts afresh
_NOT_FOR_MAKE = ("tree_state", "port_data", "app_files", "version")


def _inputs(target: Target, tree: TreeInfo, found: Found, deplib_vars: dict[str, str],
            epoch: int, version: str) -> dict:
    """Everything a build depends on that make cannot see, as hashable data."""
    return {
        "tree_commit": tree.commit,
        "tree_state": tree.state,
        # the version string make hands the tree (MPFORGE_VERSION_SUFFIX): a change
        # regenerates mpversion.h, which make notices
        "version": version,
        "patches": tree.patches,
        "toolchain": [target.toolchain.name, found.version],
        "source_date_epoch": epoch,
        # the dependency files name the targets as make got them (absolute before, relative
        # to the make folder now: mpforge.firmware.make_paths); a folder whose dependency
        # files name other targets would rebuild nothing on a header edit: the dependency
        # layout is an input, so such folders start afresh once
        "dependency_paths": "relative-to-make-dir",
        # artifacts, sizes...: a change re-runs make and republishes (no fresh build dir)
        "port_data": files_digest([target.port.source, target.toolchain.source]),
        # neither -j nor a ccache prefix changes what is built
        "make": [[a for a in argv if not a.startswith("-j")] for argv in
                 make_argvs(target, deplib_vars, None)],
        # the app's shape ("app") and its files' content ("app_files", seen by make)
        **app_mod.inputs(target),
    }


def _published_manifest(target: Target) -> dict | None:
    """The manifest of what ``dist/<target>/`` holds (None: nothing, or a dry run).

    Leftovers of interrupted publishes were tidied when the command began
    (:func:`mpforge.cli.framework.checkout`) and are again before a publish; a damaged
    manifest is a warning, and the target is rebuilt and replaced."""
    project = target.project
    if project.executor.dry_run:
        return None
    manifest = read_json(target.dist_dir / "manifest.json", project.console.warn)
    return manifest if _well_formed(target, "manifest.json", manifest) else None


def _well_formed(target: Target, name: str, document: dict | None) -> bool:
    """True unless ``document`` (``dist/<target>/<name>``, None: missing) has a field of the
    wrong type, which is one warning line naming file and key: the build then counts as
    absent, and is made and published again."""
    if document is None:
        return True
    found = documents.shape_error(SHAPES[name], document)
    if found:
        key, expected, got = found
        line = f"dist/{target.name}/{name}: {key}: expected {expected}, got {got}; rebuilt and replaced"
        if line not in _warned:  # the documents are looked at twice in a build: said once
            _warned.add(line)
            target.project.console.warn(line)
    return found is None


_warned: set[str] = set()


def _is_current(target: Target, manifest: dict, key: str) -> bool:
    """True when the published build has these inputs and all its artifacts (``manifest``
    is well-formed: :func:`_published_manifest`)."""
    return manifest.get("inputs_key") == key and _has_documents(target) and all(
        plain_name(a.get("name")) and (target.dist_dir / str(a.get("name"))).is_file()
        for a in manifest.get("artifacts", []))


def _has_documents(target: Target) -> bool:
    """True when ``dist/<target>/`` holds a well-formed SBOM and attestation (a build
    published before they existed gets them on its next build)."""
    for name in (SBOM_NAME, PROVENANCE_NAME):
        document = read_json(target.dist_dir / name, target.project.console.warn)
        if document is None or not _well_formed(target, name, document):
            return False
    return True


def _fresh_build_dir(target: Target, inputs: dict, clean: bool) -> Callable[[str], None]:
    """Start ``build/<target>/`` afresh when its objects cannot be trusted, mark it
    as building, and stage the app; returns what records the build's state
    (``building``, ``failed``, ``done``) in its stamp file, ``inputs.json``.

    Afresh: ``--clean``; inputs make cannot see have changed; the last make was
    interrupted (the tree's makefiles cannot always recover from half-written
    intermediates such as qstr headers); or the stamp is damaged.
    """
    project = target.project
    console, dry_run = project.console, project.executor.dry_run
    if not dry_run:
        app_mod.check_sources(target)  # a broken app file is named before anything changes
    build_dir = target.build_dir
    stamp = build_dir / "inputs.json"
    make_key = inputs_key({k: v for k, v in inputs.items() if k not in _NOT_FOR_MAKE})
    last = read_json(stamp, console.warn)
    damaged = last is None and stamp.exists()
    last = last or {}
    stale = bool(last) and last.get("make_key") != make_key
    interrupted = last.get("state") == "building"
    if (clean or stale or interrupted or damaged) and build_dir.exists() and not dry_run:
        reason = ("clean build" if clean else "inputs changed" if stale
                  else "its inputs.json was damaged" if damaged
                  else "the last build was interrupted")
        console.info(f"{target.name}: {reason}: starting a fresh build directory")
        shutil.rmtree(build_dir)
    if not dry_run:
        build_dir.mkdir(parents=True, exist_ok=True)
        _write_stamp(stamp, make_key, inputs, "building")
        app_mod.stage(target)  # the files to freeze, where the port's make takes them
        # whatever another build left in the tree must not be taken for ours
        values = target.placeholders()
        for art in target.port.artifacts:
            if art.in_tree:
                Path(expand(art.path, values)).unlink(missing_ok=True)
        (build_dir / "build.log").write_text("")

    def mark(state: str) -> None:
        if not dry_run:
            _write_stamp(stamp, make_key, inputs, state)
    return mark


def _run_make(target: Target, argvs: list[list[str]], env: dict[str, str],
              pass_fds: tuple[int, ...], mark: Callable[[str], None]) -> float:
    """Run the make passes and the port's post-build steps into ``build.log``; returns
    the CPU seconds they used. A failure is a :class:`BuildFailed` with the first error."""
    project = target.project
    executor = project.executor
    log = target.build_dir / "build.log"
    cpu = 0.0
    for argv in argvs:
        try:
            cpu += executor.run(argv, env=env, log_file=log, what=f"make ({target.name})",
                                pass_fds=pass_fds, measure=True).cpu_seconds
        except CommandFailed as exc:
            mark("failed")  # make can resume from a failed build
            rel_log = log.relative_to(project.root) if log.is_relative_to(project.root) else log
            raise BuildFailed(f"build of {target.name} failed", f"full log: {rel_log}",
                              first_error(log.read_text()), exc.returncode) from exc
    values = target.placeholders()
    for step in target.port.post_steps:
        executor.run([expand(a, values) for a in step], env=env, log_file=log,
                     what=f"post-build step ({target.name})")
    mark("done")
    return cpu


def _collect_artifacts(target: Target) -> list[tuple[str, Path]]:
    """The artifacts to publish, as (name, path). Those make leaves in the tree are
    moved into ``build/<target>/out/`` first; every declared C module must be linked."""
    values = target.placeholders()
    artifacts: list[tuple[str, Path]] = []
    for art in target.port.artifacts:
        path = Path(expand(art.path, values))
        if art.in_tree:
            kept = target.build_dir / "out" / art.name
            kept.parent.mkdir(exist_ok=True)
            if path.exists():
                move_file(path, kept)  # build/ may be on another file system than the tree
            path = kept
        if not path.exists():
            raise BuildFailed(f"make succeeded but {path.name} was not produced",
                              f"check the artifacts of ports/{target.port.name}.toml; "
                              f"log: {target.build_dir / 'build.log'}")
        if art.dist:
            artifacts.append((art.name, path))
    app_mod.check_linked(target, values)  # every declared C module is in the firmware
    return artifacts


def _write_stamp(stamp: Path, make_key: str, inputs: dict, state: str) -> None:
    write_json(stamp, {"make_key": make_key, "state": state, **inputs})


