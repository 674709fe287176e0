"""The attestation and ``invoke verify`` (:mod:`mpforge.firmware.provenance`,
:mod:`mpforge.firmware.verify`, :mod:`mpforge.cli.verify`) on the fixture tree, through the CLI:
a build's papers agree with its artifacts; a changed byte, a stale SBOM or attestation is
named; ``--rebuild`` builds again in a scratch clone and compares byte for byte."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import Mirror, git, run_cli
from mpforge.firmware.verify import compare, verify_dist


@pytest.fixture
def built(fixture_project: Path, fixture_mirror: Mirror) -> Path:
    result = run_cli(fixture_project, "build", "--mirror", str(fixture_mirror.base))
    assert result.returncode == 0, result.stdout + result.stderr
    return fixture_project / "dist" / "unix"


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_attestation_is_an_in_toto_slsa_statement_of_the_artifacts_and_materials(
        built: Path, fixture_project: Path, fixture_mirror: Mirror):
    statement, manifest = read(built / "provenance.intoto.json"), read(built / "manifest.json")
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [
        {"name": a["name"], "digest": {"sha256": hashlib.sha256((built / a["name"]).read_bytes()).hexdigest()}}
        for a in manifest["artifacts"]]
    definition = statement["predicate"]["buildDefinition"]
    external = definition["externalParameters"]
    # the exact invocation, the target, the checkout at its commit
    assert external["invocation"] == ["mpforge", "build", "--mirror", str(fixture_mirror.base)]
    assert external["target"] == {"name": "unix", "port": "unix", "board": None, "variant": None,
                                  "app": None, "board_dir": None}
    assert external["source"]["digest"] == {"gitCommit": git(fixture_project, "rev-parse", "HEAD")}
    assert external["source"]["clean"] is True
    internal = definition["internalParameters"]
    assert internal["environment"]["MPFORGE_VERSION_SUFFIX"] == manifest["version"].removeprefix(
        manifest["tree"]["describe"].removesuffix("-dirty"))
    assert internal["environment"]["SOURCE_DATE_EPOCH"] == str(manifest["source_date_epoch"])
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["tree:micropython"]["digest"] == {"gitCommit": fixture_mirror.tree_sha}
    for patch in manifest["patches"]:
        assert deps[f"patch:{patch['name']}"]["digest"] == {"sha256": patch["sha256"]}
    assert deps["submodule:lib/libffi"]["digest"]["gitCommit"] == git(
        fixture_project / "micropython" / "lib" / "libffi", "rev-parse", "HEAD")
    assert deps["toolchain:gcc"]["annotations"]["version"]
    assert statement["predicate"]["runDetails"]["builder"]["id"].startswith("https://")


def test_verify_passes_on_a_fresh_build_and_names_a_changed_byte(built: Path, fixture_project: Path):
    ok = run_cli(fixture_project, "verify", "dist/unix")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "unix: artifacts, manifest, SBOM and attestation agree" in ok.stdout

    binary = built / "micropython"
    data = bytearray(binary.read_bytes())
    data[100] ^= 0x01
    binary.write_bytes(bytes(data))
    bad = run_cli(fixture_project, "verify", "dist/unix")
    assert bad.returncode == 1
    out = bad.stdout + bad.stderr
    assert "artifact micropython: sha256 as in the manifest" in out
    assert "SBOM: micropython's checksums are the file's" in out
    assert "attestation subjects are the artifacts with their sha256: differing: micropython" in out
    assert "Traceback" not in out


def test_a_stale_sbom_or_attestation_is_named(built: Path, tmp_path: Path):
    assert verify_dist(built).ok
    for name, change, expected in [
        ("sbom.spdx.json", lambda d: d["packages"][0].update(versionInfo="v0"),
         "SBOM describes the firmware at the manifest's version"),
        ("sbom.spdx.json", lambda d: next(p for p in d["packages"] if p["SPDXID"].startswith("SPDXRef-patch-"))[
            "checksums"][0].update(checksumValue="0" * 64), "SBOM lists the manifest's patches with their sha256"),
        ("provenance.intoto.json", lambda d: d["subject"].pop(),
         "attestation subjects are the artifacts with their sha256"),
        ("provenance.intoto.json",
         lambda d: d["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"].update(gitCommit="0"),
         "attestation names the manifest's tree commit"),
    ]:
        copy = tmp_path / f"case-{expected[:20].replace(' ', '-')}-{name}"
        shutil.copytree(built, copy)
        doc = read(copy / name)
        change(doc)
        (copy / name).write_text(json.dumps(doc))
        failed = [c.what for c in verify_dist(copy).checks if not c.ok]
        assert failed == [expected], (name, failed)


def test_a_missing_document_or_folder_is_one_line_with_a_hint(built: Path, fixture_project: Path):
    (built / "provenance.intoto.json").unlink()
    ran = run_cli(fixture_project, "verify", "dist/unix")
    assert ran.returncode == 1
    assert "unix/provenance.intoto.json is missing" in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    nothing = run_cli(fixture_project, "verify", "dist/nothing")
    assert nothing.returncode == 1 and "dist/nothing is not a folder" in nothing.stdout + nothing.stderr


def test_a_file_in_the_folder_that_the_manifest_does_not_list_is_named(built: Path):
    (built / "extra.bin").write_bytes(b"x")
    failed = [(c.what, c.detail) for c in verify_dist(built).checks if not c.ok]
    assert failed == [("no file in the folder is missing from the manifest", "extra.bin")]


def test_rebuild_in_a_scratch_clone_is_identical_and_a_changed_artifact_is_named(
        built: Path, fixture_project: Path, fixture_mirror: Mirror, tmp_path: Path):
    keep = tmp_path / "scratch"
    ran = run_cli(fixture_project, "verify", "dist/unix", "--rebuild", "--mirror", str(fixture_mirror.base),
                  "--keep", str(keep))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "rebuilt from a fresh clone of this checkout at" in ran.stdout
    assert "unix: the rebuild is identical, byte for byte" in ran.stdout
    rebuilt = keep / "checkout" / "dist" / "unix"
    assert (rebuilt / "micropython").read_bytes() == (built / "micropython").read_bytes()

    data = bytearray((built / "micropython").read_bytes())
    data[-1] ^= 0x01
    (built / "micropython").write_bytes(bytes(data))
    assert compare(built, rebuilt).differing == ["micropython"]
    again = run_cli(fixture_project, "verify", "dist/unix", "--rebuild", "--mirror", str(fixture_mirror.base))
    assert again.returncode == 1
    assert "unix: the rebuild differs in 1 artifact(s): micropython" in again.stdout + again.stderr


def test_rebuild_of_a_checkout_with_changes_copies_its_files(built: Path, fixture_project: Path,
                                                             fixture_mirror: Mirror, tmp_path: Path):
    # the build ran with a change in the checkout's data: a clone of the commit would miss it
    toml = fixture_project / "ports" / "unix.toml"
    toml.write_text(toml.read_text() + "\n# a local note\n")
    assert run_cli(fixture_project, "build", "--mirror", str(fixture_mirror.base)).returncode == 0
    assert read(built / "provenance.intoto.json")["predicate"]["buildDefinition"][
        "externalParameters"]["source"]["changed"] == ["ports/unix.toml"]
    keep = tmp_path / "scratch"
    ran = run_cli(fixture_project, "verify", "dist/unix", "--rebuild", "--mirror", str(fixture_mirror.base),
                  "--keep", str(keep))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "rebuilt from this checkout's files as they are now" in ran.stdout
    assert (keep / "checkout" / "ports" / "unix.toml").read_text().endswith("# a local note\n")


# --- hostile papers: verify trusts nothing it reads -------------------------------------------

def tamper(folder: Path, artifact: str, data: bytes | None, rename: dict[str, str] | None = None) -> None:
    """Change ``artifact`` (or drop it: data None) consistently in the manifest, SBOM and
    attestation, as an attacker who can write the folder would; ``rename`` rewrites names."""
    from mpforge.firmware.materials import digests
    rename = rename or {}
    if data is not None:
        (folder / artifact).write_bytes(data)
    manifest, sbom, statement = (read(folder / n) for n in ("manifest.json", "sbom.spdx.json",
                                                            "provenance.intoto.json"))
    kept = []
    for entry in manifest["artifacts"]:
        if entry["name"] == artifact:
            if data is None:
                continue
            entry["sha256"], entry["size"] = digests(folder / artifact)[0], len(data)
        entry["name"] = rename.get(entry["name"], entry["name"])
        kept.append(entry)
    manifest["artifacts"] = kept
    names = {e["name"] for e in kept}
    sbom["files"] = [f for f in sbom["files"] if not f["SPDXID"].startswith("SPDXRef-artifact-")
                     or rename.get(f["fileName"].removeprefix("./"), f["fileName"].removeprefix("./")) in names]
    for f in sbom["files"]:
        name = f["fileName"].removeprefix("./")
        f["fileName"] = "./" + rename.get(name, name)
        if name == artifact and data is not None:
            sha256, sha1 = digests(folder / artifact)
            f["checksums"] = [{"algorithm": "SHA1", "checksumValue": sha1},
                              {"algorithm": "SHA256", "checksumValue": sha256}]
    statement["subject"] = [{"name": rename.get(s["name"], s["name"]),
                             "digest": {"sha256": digests(folder / s["name"])[0]}}
                            for s in statement["subject"] if s["name"] != artifact or data is not None]
    for name, doc in (("manifest.json", manifest), ("sbom.spdx.json", sbom), ("provenance.intoto.json", statement)):
        (folder / name).write_text(json.dumps(doc))


def failed_checks(folder: Path, project: Path) -> list[str]:
    ran = run_cli(project, "verify", str(folder.relative_to(project)))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stdout + ran.stderr
    return [line for line in (ran.stdout + ran.stderr).splitlines() if ":" in line]


def test_a_consistent_tamper_is_caught_by_the_rebuild_whatever_target_name_the_attestation_gives(
        built: Path, fixture_project: Path, fixture_mirror: Mirror):
    tamper(built, "micropython", b"#!/bin/sh\necho pwned\n")
    assert run_cli(fixture_project, "verify", "dist/unix").returncode == 0  # the papers agree: unsigned
    statement = read(built / "provenance.intoto.json")
    target = statement["predicate"]["buildDefinition"]["externalParameters"]["target"]
    target["name"] = "/proc/self/cwd/dist/unix"  # once made the rebuild compare the folder with itself
    (built / "provenance.intoto.json").write_text(json.dumps(statement))
    ran = run_cli(fixture_project, "verify", "dist/unix", "--rebuild", "--mirror", str(fixture_mirror.base))
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stdout + ran.stderr
    assert "the rebuild differs in 1 artifact(s): micropython" in ran.stdout + ran.stderr
    target["port"] = "../unix"  # a port that is no port of this project: refused before any build
    (built / "provenance.intoto.json").write_text(json.dumps(statement))
    ran = run_cli(fixture_project, "verify", "dist/unix", "--rebuild", "--mirror", str(fixture_mirror.base))
    assert ran.returncode == 1 and "is not a port of this project" in ran.stdout + ran.stderr


def test_an_artifact_dropped_from_all_three_documents_is_named(built: Path, fixture_project: Path):
    tamper(built, "micropython.debug", None)
    (built / "micropython.debug").unlink()
    out = "\n".join(failed_checks(built, fixture_project))
    assert "the artifacts are the ones port unix declares" in out


def test_artifact_names_out_of_the_folder_links_and_duplicates_are_refused(built: Path):
    manifest = read(built / "manifest.json")
    for hostile in ("../../../../etc/hostname", "/etc/hostname"):
        copy = json.loads(json.dumps(manifest))
        copy["artifacts"][0]["name"] = hostile
        (built / "manifest.json").write_text(json.dumps(copy))
        checks = {c.what: c for c in verify_dist(built).checks}
        assert not checks["artifact names are plain file names"].ok
        assert not [w for w in checks if "etc/hostname" in w and "is there" in w]  # never hashed
    copy = json.loads(json.dumps(manifest))
    copy["artifacts"].append(dict(copy["artifacts"][0]))
    (built / "manifest.json").write_text(json.dumps(copy))
    assert not {c.what: c for c in verify_dist(built).checks}["no artifact is listed twice"].ok
    (built / "manifest.json").write_text(json.dumps(manifest))
    real = built / "micropython"
    moved = built.parent / "elsewhere"
    real.rename(moved)
    real.symlink_to(moved)
    checks = {c.what: c for c in verify_dist(built).checks}
    assert not checks["artifact micropython is there"].ok and not checks["no file in the folder is a link"].ok


def test_wrong_types_in_the_papers_are_failed_checks_never_a_traceback(built: Path, fixture_project: Path):
    manifest = read(built / "manifest.json")
    manifest["artifacts"] = [5, "x", None]
    manifest["port"] = ["unix"]
    (built / "manifest.json").write_text(json.dumps(manifest))
    assert failed_checks(built, fixture_project)


WRONG_TYPES = [  # (document, a key path, the value put there, the dotted key named)
    ("manifest.json", ["artifacts"], 5, "artifacts"),
    ("manifest.json", ["artifacts", 0], 5, "artifacts[0]"),
    ("manifest.json", ["artifacts", 0, "size"], "big", "artifacts[0].size"),
    ("manifest.json", ["tree"], "x", "tree"),
    ("manifest.json", ["patches", 0], 5, "patches[0]"),
    ("sbom.spdx.json", ["packages", 0], 5, "packages[0]"),
    ("sbom.spdx.json", ["documentDescribes"], 5, "documentDescribes"),
    ("sbom.spdx.json", ["files", 0, "checksums"], {}, "files[0].checksums"),
    ("provenance.intoto.json", ["subject", 0], 5, "subject[0]"),
    ("provenance.intoto.json", ["predicate"], 5, "predicate"),
    ("provenance.intoto.json", ["predicate", "buildDefinition", "resolvedDependencies", 0, "digest"], [],
     "predicate.buildDefinition.resolvedDependencies[0].digest"),
]


def put(document: dict, keys: list, value: object) -> None:
    for key in keys[:-1]:
        document = document[key]
    document[keys[-1]] = value


@pytest.mark.parametrize("name,keys,value,shown", WRONG_TYPES, ids=[w[3] for w in WRONG_TYPES])
def test_a_wrong_typed_field_is_one_line_naming_file_and_key_in_verify_and_build(
        built: Path, fixture_project: Path, fixture_mirror: Mirror, name, keys, value, shown):
    """(#31) tracebacks before: verify and build's up-to-date check read the fields unchecked.
    verify refuses in one line; build warns in one line, then rebuilds and replaces."""
    document = read(built / name)
    put(document, keys, value)
    (built / name).write_text(json.dumps(document))
    result = run_cli(fixture_project, "verify", "dist/unix")
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"unix/{name}: {shown}: expected " in result.stderr, result.stderr
    again = run_cli(fixture_project, "build", "--mirror", str(fixture_mirror.base))
    assert again.returncode == 0 and "Traceback" not in again.stdout + again.stderr, again.stderr
    warned = [line for line in (again.stdout + again.stderr).splitlines() if f"dist/unix/{name}" in line]
    assert len(warned) == 1 and f"dist/unix/{name}: {shown}: expected " in warned[0] \
        and warned[0].endswith("rebuilt and replaced"), again.stdout + again.stderr
    assert run_cli(fixture_project, "verify", "dist/unix").returncode == 0
