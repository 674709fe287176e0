"""``invoke build``: one target from tree to ``dist/<target>/`` with a manifest.

The steps, each a no-op when already done:

1. fetch the tree and the port's submodules (:mod:`mpforge.fetch`);
2. apply the patch series (:mod:`mpforge.patches`);
3. build the port's deplibs (:mod:`mpforge.deplibs`);
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

from . import __version__
from .config import expand
from .deplibs import build_deplibs, merged_make_vars
from .errors import BuildFailed, CommandFailed
from .fetch import fetch
from .git import Git
from .patches import PatchQueue
from .project import Target
from .toolchain import find_tool, find_toolchain

_COMPILER_ERROR = re.compile(r"^(?P<loc>[^\s:]+:\d+(?::\d+)?): (?:fatal )?error: .*$", re.MULTILINE)
_ANY_ERROR = re.compile(r"^.*(?:error|Error \d+|No such file).*$", re.MULTILINE)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def first_error(output: str) -> str:
    """The first compiler error of a make log and the two lines after it."""
    match = _COMPILER_ERROR.search(output) or _ANY_ERROR.search(output)
    if not match:
        return "\n".join(output.rstrip().splitlines()[-10:])
    lines = output[match.start():].splitlines()
    return "\n".join(lines[:3])


@dataclass
class BuildResult:
    """What a build produced; ``manifest`` is what ``dist/<target>/manifest.json`` holds."""

    target: str
    dist_dir: Path
    manifest: dict
    changed: bool
    duration: float
    steps: list[str] = field(default_factory=list)


def make_argv(target: Target, extra_vars: dict[str, str], jobs: int) -> list[str]:
    """The full ``make`` command for a target (deterministic: it feeds the input hash)."""
    port, values = target.port, target.placeholders()
    variables: dict[str, str] = {}
    variables.update(target.toolchain.make_vars)
    variables.update(port.make_vars)
    if target.board:
        variables[port.board_var] = target.board
        variables.update(port.board_make_vars.get(target.board, {}))
    variables.update(extra_vars)
    variables[port.build_var] = "{build}/obj"
    argv = ["make", "-C", str(target.port_dir), f"-j{jobs}", "V=1"]
    argv += [f"{k}={expand(v, values)}" for k, v in variables.items()]
    argv += port.make_targets
    return argv


def _inputs(target: Target, git: Git, patches: list[dict[str, str]], toolchain_version: str,
            argv: list[str]) -> dict:
    return {
        "tree_commit": git.head(target.project.tree),
        "patches": patches,
        "toolchain": [target.toolchain.name, toolchain_version],
        # -j does not change what is built
        "make": [a for a in argv if not a.startswith("-j")],
    }


def _publish(target: Target, artifacts: list[tuple[str, Path]], manifest: dict) -> None:
    """Replace ``dist/<target>/`` with the new artifacts in one rename."""
    dist_root = target.project.dist_root
    dist_root.mkdir(parents=True, exist_ok=True)
    staging = dist_root / f".{target.name}.tmp-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        for name, path in artifacts:
            shutil.copy2(path, staging / name)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        final = target.dist_dir
        old = dist_root / f".{target.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        staging.rename(final)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def build(target: Target, *, jobs: int | None = None, clean: bool = False,
          mirror: str | None = None) -> BuildResult:
    """Build ``target`` end to end; see the module docstring."""
    project = target.project
    console, executor = project.console, project.executor
    started = time.monotonic()
    jobs = jobs or os.cpu_count() or 1
    git = Git(executor, mirror)

    found = find_toolchain(target.toolchain, executor)
    for tool in target.port.tools:
        find_tool(project.catalog.tools[tool], executor)

    console.step(f"fetch {target.name}")
    fetch(project, [target.port.name], mirror)
    console.step("patch")
    queue = PatchQueue(project.patches_dir, project.tree, executor)
    newly = queue.apply()
    console.info(f"applied {len(newly)} patch(es)" if newly else "patch series up to date")
    patches = queue.applied()

    deplib_vars: dict[str, str] = {}
    if target.port.deplibs:
        console.step("deplibs")
        deplib_vars = merged_make_vars(build_deplibs(target, clean))

    argv = make_argv(target, deplib_vars, jobs)
    inputs = _inputs(target, git, patches, found.version, argv)
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    build_dir = target.build_dir
    stamp = build_dir / "inputs.json"
    stale = stamp.exists() and json.loads(stamp.read_text()).get("key") != key
    if (clean or stale) and build_dir.exists() and not executor.dry_run:
        console.info("inputs changed: starting a fresh build directory" if stale and not clean
                     else "clean build")
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key, **inputs}, indent=2))

    values = target.placeholders()
    if not executor.dry_run:
        # whatever another build left in the tree must not be taken for ours
        for art in target.port.artifacts:
            if art.in_tree:
                Path(expand(art.path, values)).unlink(missing_ok=True)

    log = build_dir / "build.log"
    log.write_text("")
    console.step(f"make {target.name} (-j{jobs})")
    env = {"PATH": os.pathsep.join([found.extra_path, os.environ.get("PATH", "")])} \
        if found.extra_path else None
    make_started = time.monotonic()
    try:
        executor.run(argv, env=env, log_file=log, what=f"make ({target.name})")
    except CommandFailed as exc:
        rel_log = log.relative_to(project.root)
        raise BuildFailed(f"build of {target.name} failed", f"full log: {rel_log}",
                          first_error(log.read_text()), exc.returncode) from exc
    make_seconds = time.monotonic() - make_started

    artifacts: list[tuple[str, Path]] = []
    for art in target.port.artifacts:
        path = Path(expand(art.path, values))
        if art.in_tree and not executor.dry_run:
            kept = build_dir / "out" / art.name
            kept.parent.mkdir(exist_ok=True)
            if path.exists():
                os.replace(path, kept)
            path = kept
        if not path.exists() and not executor.dry_run:
            raise BuildFailed(f"make succeeded but {path.name} was not produced",
                              f"check the artifacts of ports/{target.port.name}.toml; log: {log}")
        artifacts.append((art.name, path))
    if executor.dry_run:
        return BuildResult(target.name, target.dist_dir, {}, False, time.monotonic() - started)

    described = git.query(project.tree, "describe", "--tags", "--always")
    manifest = {
        "target": target.name,
        "port": target.port.name,
        "board": target.board or None,
        "artifacts": [{"name": name, "sha256": sha256_file(path), "size": path.stat().st_size}
                      for name, path in artifacts],
        "tree": {"commit": inputs["tree_commit"], "describe": described},
        "patches": patches,
        "toolchain": {"name": found.name, "version": found.version},
        "make_vars": dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-")),
        "make_targets": target.port.make_targets,
        "inputs_key": key,
        "build_seconds": round(make_seconds, 3),
        "mpforge": __version__,
    }
    previous = target.dist_dir / "manifest.json"
    changed = True
    if previous.exists():
        old = json.loads(previous.read_text())
        changed = (old.get("artifacts") != manifest["artifacts"] or old.get("inputs_key") != key)
    if changed:
        _publish(target, artifacts, manifest)
    else:
        manifest = json.loads(previous.read_text())
    return BuildResult(target.name, target.dist_dir, manifest, changed, time.monotonic() - started)
