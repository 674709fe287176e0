"""``dist/<target>/provenance.intoto.json``: how the firmware was built, as an attestation.

One in-toto Statement v1 per target, with a SLSA provenance v1 predicate
(https://slsa.dev/spec/v1.0/provenance):

* ``subject``: the artifacts of ``dist/<target>/``, each with its sha256;
* ``buildDefinition.buildType``: :data:`BUILD_TYPE`, mpforge's build of one target;
* ``externalParameters``: what the user asked for: the exact invocation
  (``argv``), the target (port, board, variant, app, board folder) and the
  checkout it ran in (its commit, and whether its files differed from that
  commit: ``source.clean``);
* ``internalParameters``: what mpforge derived: the make command lines, the
  environment it set (``SOURCE_DATE_EPOCH``, ``MPFORGE_VERSION_SUFFIX``), the
  inputs key;
* ``resolvedDependencies``: every material with its digest
  (:mod:`mpforge.firmware.materials`): the tree and submodules by git commit, the
  patches, an app's and a board folder's files by sha256, the toolchain's Debian
  packages by package URL and version;
* ``runDetails``: the builder (:data:`BUILDER_ID`, mpforge's version), the start and
  end of the build.

It is unsigned: signing is the release process's step (e.g. ``cosign attest``).
``invoke verify`` (:mod:`mpforge.firmware.verify`) checks it against the artifacts,
and ``--rebuild`` uses ``externalParameters`` to build again.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

from mpforge import __version__
from mpforge.core.project import Target
from mpforge.firmware.materials import Component, FileDigest
from mpforge.tree.git import Git

#: the file name in ``dist/<target>/``
PROVENANCE_NAME = "provenance.intoto.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: names mpforge's build of one target (docs/building.md, "What a build leaves", documents it)
BUILD_TYPE = "https://mpforge.invalid/buildtypes/target/v1"
#: the builder: mpforge run on the machine that holds the checkout (not a hosted service)
BUILDER_ID = "https://mpforge.invalid/builders/local"


def invocation() -> list[str]:
    """The command line this process runs, program by its name (``mpforge build --port unix``)."""
    argv = list(sys.argv)
    if not argv:
        return []
    program = Path(argv[0]).name
    if program == "__main__.py":  # python -m mpforge
        program = "mpforge"
    return [program, *argv[1:]]


#: top-level folders of a checkout that are not its source
_OUTPUTS = frozenset({"micropython", "build", "dist", ".mpforge", ".venv"})


def checkout_source(target: Target) -> dict[str, Any]:
    """The checkout the build ran in: its commit and whether its files are that commit's.

    ``clean`` is False when a tracked file of the checkout differs from its commit, or an
    untracked one is not ignored; the tree (its state is the manifest's ``tree`` and the
    materials') and what builds write (:data:`_OUTPUTS`) are not counted."""
    project = target.project
    git = Git(project.executor)
    commit = git.head(project.root)
    names = git.query(project.root, "diff", "--name-only", "--ignore-submodules=all", "HEAD").splitlines()
    names += git.query(project.root, "ls-files", "--others", "--exclude-standard").splitlines()
    changed = sorted({n for n in names if n.split("/")[0] not in _OUTPUTS})
    return {"uri": "git+file:checkout", "digest": {"gitCommit": commit} if commit else {},
            "clean": bool(commit) and not changed, "changed": changed[:50]}


def target_parameters(target: Target) -> dict[str, Any]:
    """The target as the user named it: enough for ``verify --rebuild`` to name it again."""
    project = target.project

    def shown(path: Path | None) -> str | None:
        if path is None:
            return None
        return path.relative_to(project.root).as_posix() if path.is_relative_to(project.root) else str(path)

    return {"name": target.name, "port": target.port.name, "board": target.board or None,
            "variant": target.variant or None,
            "app": shown(target.app.folder) if target.app is not None else None,
            "board_dir": shown(target.board_dir)}


def resolved_dependencies(components: list[Component]) -> list[dict[str, Any]]:
    """SLSA resource descriptors, one per material (an app's files one each)."""
    out: list[dict[str, Any]] = []
    for comp in components:
        entry: dict[str, Any] = {"name": f"{comp.kind}:{comp.name}"}
        if comp.location.startswith("git+"):
            entry["uri"] = comp.location
        if comp.purl:
            entry["uri"] = comp.purl
        if comp.kind == "patch":
            entry["uri"] = comp.location
        if comp.commit:
            entry["digest"] = {"gitCommit": comp.commit}
        if comp.sha256:
            entry["digest"] = {"sha256": comp.sha256}
        if comp.kind == "toolchain":
            entry["annotations"] = {"version": comp.version, "comment": comp.comment}
        if not comp.files:
            out.append(entry)
        for f in comp.files:
            out.append({"name": f"{comp.kind}:{comp.name}/{f.name}", "digest": {"sha256": f.sha256}})
    return out


def statement(target: Target, manifest: dict, artifacts: list[FileDigest], components: list[Component],
              env: dict[str, str], started: datetime.datetime, finished: datetime.datetime) -> dict[str, Any]:
    """The in-toto statement of one build (see the module docstring)."""

    def stamp(moment: datetime.datetime) -> str:
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": a.name, "digest": {"sha256": a.sha256}} for a in artifacts],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "invocation": invocation(),
                    "target": target_parameters(target),
                    "source": checkout_source(target),
                },
                "internalParameters": {
                    "make": manifest.get("make", []),
                    "make_targets": manifest.get("make_targets", []),
                    "environment": env,
                    "inputs_key": manifest.get("inputs_key", ""),
                    "version": manifest.get("version", ""),
                },
                "resolvedDependencies": resolved_dependencies(components),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"mpforge": __version__}},
                "metadata": {"startedOn": stamp(started), "finishedOn": stamp(finished)},
            },
        },
    }
