"""``invoke verify dist/<target>``: do the artifacts, the manifest, the SBOM and the attestation agree?

:func:`verify_dist` reads a published ``dist/<target>/`` and checks, each a
:class:`Check` of a :class:`Verdict`:

* every artifact the manifest lists is there with its sha256 and size, and no other
  file sits among them unlisted;
* the SBOM (``sbom.spdx.json``) is SPDX 2.3, describes the firmware at the manifest's
  version, holds each artifact with the same sha256 and sha1 as the file, and each patch
  of the manifest with its sha256;
* the attestation (``provenance.intoto.json``) is an in-toto Statement v1 with a SLSA
  provenance v1 predicate, its subjects are exactly the artifacts and their sha256, and
  its materials name the manifest's tree commit and patches.

:func:`rebuild` (``--rebuild``) builds the same target again from the recorded
inputs in a scratch folder: a fresh clone of this checkout at the commit the
attestation records (when the checkout was clean then), or else this checkout's files
as they are now; then :func:`compare` names every artifact whose bytes differ.
Nothing here prints: the task renders the verdict.

Nothing read from the folder is trusted: an artifact name must be a plain file name
(:func:`plain_name`: no separator, no ``..``, listed once), an artifact must be a
regular file (never a link), the set of artifacts must be the one the port declares,
and the recorded port, board and variant must name this project's port and its
variant and give the folder's name. ``--rebuild`` compares with the folder mpforge's
own naming gives the rebuilt target (:func:`expected_name`), never a path read from
the attestation.

What an unsigned attestation cannot prove: who wrote it (``invoke sign`` and
``verify --key``, :mod:`mpforge.firmware.signing`, add that). Anyone who can change the
firmware can write a manifest, SBOM and attestation that agree with it; the checks
then show only that the documents and the files agree, and ``--rebuild`` shows that
the recorded inputs (this checkout's commit, patches, toolchain) make the same bytes.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpforge.core.config import Catalog
from mpforge.core.errors import CommandFailed, ConfigError, UnknownTarget
from mpforge.core.model import documents
from mpforge.core.project import Project
from mpforge.firmware.materials import digests
from mpforge.firmware.provenance import PREDICATE_TYPE, PROVENANCE_NAME, STATEMENT_TYPE
from mpforge.firmware.sbom import SBOM_NAME
from mpforge.firmware.signing import ENVELOPE_NAME
from mpforge.tree.git import Git

MANIFEST_NAME = "manifest.json"
#: the files of ``dist/<target>/`` that describe the artifacts, not artifacts themselves
DOCUMENTS = (MANIFEST_NAME, SBOM_NAME, PROVENANCE_NAME, ENVELOPE_NAME)


@dataclass
class Check:
    """One verified fact: what was checked, whether it holds, and if not, why."""

    what: str
    ok: bool
    detail: str = ""


@dataclass
class Verdict:
    """Every check of one ``dist/<target>/``; ``ok`` only when all hold."""

    dist_dir: Path
    checks: list[Check] = field(default_factory=list)
    #: artifacts whose rebuilt bytes differ (``--rebuild``), by name
    differing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(what, ok, "" if ok else detail))
        return ok


#: each document's shape (the fields read), checked before any is used
SHAPES: dict[str, Any] = {MANIFEST_NAME: documents.Manifest, SBOM_NAME: documents.Sbom,
                          PROVENANCE_NAME: documents.Statement}


def read_document(path: Path) -> dict[str, Any]:
    """A JSON document of ``dist/<target>/``; a missing or damaged one is a ConfigError, a
    field of the wrong type a :class:`DataFileError` naming file and key (the one line)."""
    if not path.is_file():
        raise ConfigError(f"{path.parent.name}/{path.name} is missing",
                          "rebuild the target (invoke build ...) to write it")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path.parent.name}/{path.name} is not readable JSON: {exc}",
                          "rebuild the target to write it again") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path.parent.name}/{path.name} is not a JSON object", "rebuild the target")
    if path.name in SHAPES:
        documents.check_shape(SHAPES[path.name], data, f"{path.parent.name}/{path.name}",
                              "the documents were edited: rebuild the target to write them again")
    return data


#: what an artifact, a board or a variant may be called: one plain file name
PLAIN_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,127}")


def plain_name(value: object) -> bool:
    """True for a string that is one plain file name (no separator, not ``.`` or ``..``)."""
    return isinstance(value, str) and PLAIN_NAME.fullmatch(value) is not None


def _entries(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a list read from a document (anything else in it is dropped)."""
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def expected_name(catalog: Catalog, recorded: dict[str, Any]) -> str:
    """The target name mpforge gives the recorded ``port``/``board``/``variant``; a
    ConfigError when they do not name this project's port, a plain board and a declared
    variant."""
    port_name, board, variant = recorded.get("port"), recorded.get("board") or "", recorded.get("variant") or ""
    if not isinstance(port_name, str):
        raise ConfigError(f"the recorded port is {port_name!r}, not a port name", "rebuild the target")
    try:
        port = catalog.port(port_name)
    except UnknownTarget as exc:
        raise ConfigError(f"the recorded port {port_name!r} is not a port of this project", exc.hint) from exc
    if board and (not plain_name(board) or not port.has_boards):
        raise ConfigError(f"the recorded board {board!r} is not a board name of port {port_name}",
                          "rebuild the target")
    if variant and (not isinstance(variant, str) or variant not in port.variants):
        raise ConfigError(f"the recorded variant {variant!r} is not a variant of port {port_name}",
                          f"its variants: {', '.join(sorted(port.variants)) or 'none'}")
    base = port.target_name(board)
    return f"{base}-{variant}" if variant else base


def verify_dist(dist_dir: Path, catalog: Catalog | None = None) -> Verdict:
    """Check ``dist_dir`` (a ``dist/<target>/``) as the module docstring says; with the
    project's ``catalog``, also against the port's declared artifacts and naming."""
    if not dist_dir.is_dir():
        raise ConfigError(f"{dist_dir} is not a folder", "give a built target's folder, e.g. dist/unix")
    verdict = Verdict(dist_dir)
    manifest = read_document(dist_dir / MANIFEST_NAME)
    listed = _entries(manifest.get("artifacts"))
    names = [e.get("name") for e in listed]
    bad = [repr(n) for n in names if not plain_name(n)]
    verdict.add("artifact names are plain file names", not bad and len(listed) == len(
        manifest.get("artifacts") or []), "not plain: " + ", ".join(bad) if bad else "an entry is not an object")
    twice = sorted({str(n) for n in names if names.count(n) > 1})
    verdict.add("no artifact is listed twice", not twice, ", ".join(twice))
    if catalog is not None:
        try:
            name = expected_name(catalog, manifest)
            verdict.add("the manifest's target is this folder's", manifest.get("target") == name == dist_dir.name,
                        f"manifest: {manifest.get('target')!r}, port/board/variant give {name!r}, "
                        f"folder: {dist_dir.name!r}")
            port = catalog.port(str(manifest.get("port")))
            declared = sorted(a.name for a in port.artifacts if a.dist)
            verdict.add(f"the artifacts are the ones port {port.name} declares",
                        sorted(str(n) for n in names) == declared,
                        f"listed: {sorted(str(n) for n in names)}, declared: {declared}")
        except ConfigError as exc:
            verdict.add("the manifest names a target of this project", False, exc.message)
    artifacts = {str(e.get("name")): e for e in listed if plain_name(e.get("name"))}
    actual: dict[str, tuple[str, str]] = {}
    for name, entry in artifacts.items():
        path = dist_dir / name
        if not verdict.add(f"artifact {name} is there", path.is_file() and not path.is_symlink(),
                           "a link, not a file" if path.is_symlink() else "missing"):
            continue
        actual[name] = digests(path)
        verdict.add(f"artifact {name}: sha256 as in the manifest", actual[name][0] == entry.get("sha256"),
                    f"sha256 {actual[name][0][:16]}..., the manifest says {str(entry.get('sha256'))[:16]}...")
        verdict.add(f"artifact {name}: size as in the manifest", path.stat().st_size == entry.get("size"),
                    f"{path.stat().st_size} bytes, the manifest says {entry.get('size')}")
    unlisted = sorted(p.name for p in dist_dir.iterdir() if p.name not in artifacts and p.name not in DOCUMENTS)
    links = sorted(p.name for p in dist_dir.iterdir() if p.is_symlink())
    verdict.add("no file in the folder is a link", not links, ", ".join(links))
    verdict.add("no file in the folder is missing from the manifest", not unlisted, ", ".join(unlisted))
    _check_sbom(verdict, read_document(dist_dir / SBOM_NAME), manifest, actual)
    _check_attestation(verdict, read_document(dist_dir / PROVENANCE_NAME), manifest, actual)
    return verdict


def _check_sbom(verdict: Verdict, sbom: dict[str, Any], manifest: dict[str, Any],
                actual: dict[str, tuple[str, str]]) -> None:
    verdict.add("SBOM is SPDX 2.3", sbom.get("spdxVersion") == "SPDX-2.3", str(sbom.get("spdxVersion")))
    described = set(sbom.get("documentDescribes", []))
    firmware = [p for p in sbom.get("packages", []) if p.get("SPDXID") in described]
    version = manifest.get("version")
    verdict.add("SBOM describes the firmware at the manifest's version",
                len(firmware) == 1 and firmware[0].get("versionInfo") == version,
                f"described: {[p.get('versionInfo') for p in firmware]}, manifest: {version}")
    files = {str(f.get("fileName", "")).removeprefix("./"): f for f in sbom.get("files", [])
             if str(f.get("SPDXID", "")).startswith("SPDXRef-artifact-")}
    verdict.add("SBOM lists exactly the artifacts", set(files) == set(actual) or not actual,
                f"SBOM: {sorted(files)}, folder: {sorted(actual)}")
    for name, (sha256, sha1) in actual.items():
        sums = {c.get("algorithm"): c.get("checksumValue") for c in files.get(name, {}).get("checksums", [])}
        verdict.add(f"SBOM: {name}'s checksums are the file's", sums.get("SHA256") == sha256
                    and sums.get("SHA1") == sha1, f"SBOM says {sums}")
    patches = {p.get("name"): next((c.get("checksumValue") for c in p.get("checksums", [])
                                    if c.get("algorithm") == "SHA256"), None)
               for p in sbom.get("packages", []) if str(p.get("SPDXID", "")).startswith("SPDXRef-patch-")}
    wanted = {p["name"]: p["sha256"] for p in manifest.get("patches", [])}
    verdict.add("SBOM lists the manifest's patches with their sha256", patches == wanted,
                f"SBOM: {len(patches)} patch(es), manifest: {len(wanted)}; differing: "
                + ", ".join(sorted(n for n in set(patches) | set(wanted) if patches.get(n) != wanted.get(n))))


def _check_attestation(verdict: Verdict, statement: dict[str, Any], manifest: dict[str, Any],
                       actual: dict[str, tuple[str, str]]) -> None:
    verdict.add("attestation is an in-toto Statement v1 with SLSA provenance v1",
                statement.get("_type") == STATEMENT_TYPE and statement.get("predicateType") == PREDICATE_TYPE,
                f"{statement.get('_type')}, {statement.get('predicateType')}")
    subjects = {s.get("name"): s.get("digest", {}).get("sha256") for s in statement.get("subject", [])}
    files = {name: sha256 for name, (sha256, _) in actual.items()}
    differing = sorted(n for n in set(subjects) | set(files) if subjects.get(n) != files.get(n))
    verdict.add("attestation subjects are the artifacts with their sha256", not differing,
                "differing: " + ", ".join(differing))
    deps = statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    commits = {d.get("name"): d.get("digest", {}).get("gitCommit") for d in deps}
    tree_commit = manifest.get("tree", {}).get("commit")
    verdict.add("attestation names the manifest's tree commit", commits.get("tree:micropython") == tree_commit,
                f"attestation: {commits.get('tree:micropython')}, manifest: {tree_commit}")
    recorded = {str(d.get("name", "")).removeprefix("patch:"): d.get("digest", {}).get("sha256")
                for d in deps if str(d.get("name", "")).startswith("patch:")}
    wanted = {p["name"]: p["sha256"] for p in manifest.get("patches", [])}
    verdict.add("attestation materials are the manifest's patches", recorded == wanted,
                "differing: " + ", ".join(sorted(n for n in set(recorded) | set(wanted)
                                                 if recorded.get(n) != wanted.get(n))))


# --- --rebuild ----------------------------------------------------------------------------

def build_arguments(target: dict[str, Any], project_root: Path, scratch: Path) -> list[str]:
    """``mpforge build`` arguments naming the recorded target again.

    An app or board folder recorded relative to the checkout is taken from the scratch
    checkout (it is part of what was recorded); one outside it from where it was."""
    args = ["build", "--port", str(target["port"])]
    if target.get("board") and not target.get("board_dir"):
        args += ["--board", str(target["board"])]
    if target.get("variant"):
        args += ["--variant", str(target["variant"])]
    for option, key in (("--app", "app"), ("--board-dir", "board_dir")):
        value = target.get(key)
        if value:
            path = Path(value)
            args += [option, str(path if path.is_absolute() else scratch / path)]
    return args


def prepare_scratch(project: Project, source: dict[str, Any], scratch: Path) -> str:
    """Put the recorded checkout into ``scratch``; returns how (for the report).

    A checkout that was clean at its recorded commit is cloned fresh at that commit;
    otherwise (or when the commit is gone) this checkout is cloned and its current
    files (tracked and untracked, not ignored, outside ``micropython/``) copied over."""
    git = Git(project.executor)
    commit = str(source.get("digest", {}).get("gitCommit", ""))
    git.run(scratch.parent, "clone", "-q", "--no-checkout", str(project.root), str(scratch), mutates=True)
    if source.get("clean") and commit and git.has_commit(scratch, commit):
        git.run(scratch, "checkout", "-q", commit, mutates=True)
        return f"a fresh clone of this checkout at {commit[:10]}"
    git.run(scratch, "checkout", "-q", "HEAD", mutates=True)
    listing = git.query(project.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listing.split("\0")):
        if rel.split("/")[0] == "micropython":
            continue
        src, dest = project.root / rel, scratch / rel
        if src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    return "this checkout's files as they are now" + (
        "" if source.get("clean") else " (the recorded build ran in a checkout with changes)")


def rebuild(project: Project, dist_dir: Path, mirror: str | None, jobs: int | None,
            keep: Path | None = None) -> tuple[Verdict, str]:
    """Build ``dist_dir``'s target again from its attestation in a scratch folder and
    compare (see :func:`compare`); returns the verdict and how the checkout was made.

    ``keep``: build there (and leave it) instead of a temporary folder. A failed build
    is a :class:`CommandFailed` naming its log."""
    statement = read_document(dist_dir / PROVENANCE_NAME)
    params = statement.get("predicate", {}).get("buildDefinition", {}).get("externalParameters", {})
    target = params.get("target")
    if not isinstance(target, dict) or not target.get("port"):
        raise ConfigError(f"{dist_dir.name}/{PROVENANCE_NAME} does not name its target",
                          "rebuild the target with this mpforge to record it")
    # the rebuilt folder is the one mpforge's naming gives, never a path read from the file
    rebuilt_name = expected_name(project.catalog, target)
    manifest = read_document(dist_dir / MANIFEST_NAME)
    if rebuilt_name != dist_dir.name or any(target.get(k) != manifest.get(k) for k in ("port", "board", "variant")):
        raise ConfigError(f"{dist_dir.name}/{PROVENANCE_NAME} records target {rebuilt_name!r} "
                          f"({target.get('port')!r}, {target.get('board')!r}, {target.get('variant')!r}), "
                          f"not this folder's", "rebuild the target: its papers disagree")
    holder = Path(tempfile.mkdtemp(prefix="mpforge-rebuild-")) if keep is None else keep
    scratch = holder / "checkout"
    if keep is not None:
        if scratch.exists():
            raise ConfigError(f"{scratch} exists already", "give --keep a folder without a checkout/ in it")
        holder.mkdir(parents=True, exist_ok=True)
    try:
        how = prepare_scratch(project, params.get("source", {}), scratch)
        argv = [sys.executable, "-m", "mpforge", *build_arguments(target, project.root, scratch)]
        if mirror:
            argv += ["--mirror", mirror]
        if jobs:
            argv += ["--jobs", str(jobs)]
        # the scratch checkout's own mpforge, in the scratch checkout (never this one), and
        # every object compiled again (no ccache: a cached object is not a rebuild)
        env = {"PYTHONPATH": str(scratch / "src"), "CI": "1", "MPFORGE_ROOT": str(scratch),
               "MPFORGE_TREE": str(scratch / "micropython"), "MPFORGE_CCACHE": "0"}
        log = holder / "rebuild.log"
        done = project.executor.run(argv, cwd=scratch, env=env, log_file=log, check=False,
                                    what=f"rebuild of {target.get('name')}")
        if not done.ok:
            raise CommandFailed(f"the rebuild of {target.get('name')} failed", f"its log: {log}",
                                done.tail(), done.returncode)
        rebuilt = scratch / "dist" / rebuilt_name
        return compare(dist_dir, rebuilt), how
    except BaseException:
        keep = holder  # a failure keeps the folder, for its log
        raise
    finally:
        if keep is None:
            shutil.rmtree(holder, ignore_errors=True)


def compare(original: Path, rebuilt: Path) -> Verdict:
    """Every artifact of ``original``'s manifest against the same file in ``rebuilt``, byte
    for byte (by sha256); ``differing`` names each one that is not identical."""
    verdict = Verdict(original)
    manifest = read_document(original / MANIFEST_NAME)
    for entry in _entries(manifest.get("artifacts")):
        name = entry.get("name")
        if not plain_name(name):
            verdict.add(f"artifact {name!r} has a plain name", False, "not compared")
            continue
        assert isinstance(name, str)
        mine, theirs = original / name, rebuilt / name
        if not theirs.is_file():
            verdict.differing.append(name)
            verdict.add(f"rebuilt {name} is identical", False, "the rebuild did not produce it")
            continue
        same = mine.is_file() and digests(mine)[0] == digests(theirs)[0]
        if not same:
            verdict.differing.append(name)
        verdict.add(f"rebuilt {name} is identical", same,
                    f"sha256 {digests(theirs)[0][:16]}... rebuilt, "
                    f"{digests(mine)[0][:16] if mine.is_file() else 'missing'}... in {original.name}/")
    return verdict
