"""The SBOM of ``dist/<target>/`` (:mod:`mpforge.firmware.sbom`, :mod:`mpforge.firmware.materials`):
built through the CLI on the fixture tree with an app, then read as an auditor would: by the
third-party validators (``pyspdxtools``, the NTIA minimum-elements checker) when installed,
and field by field against the manifest and the files themselves."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, Mirror, git, make_project, run_task
from mpforge.firmware.manifest import series_id
from mpforge.firmware.materials import declared_license

MIT = """Copyright (c) 2013, 2014 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction.

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED.
"""


def tool(*names: str) -> str | None:
    """A console script of this venv (or the PATH), the first of ``names`` found."""
    for name in names:
        here = Path(sys.executable).parent / name
        if here.exists():
            return str(here)
        if shutil.which(name):
            return shutil.which(name)
    return None


PYSPDXTOOLS = tool("pyspdxtools")
# ntia-conformance-checker 6 ships the command as ntia-checker; older releases as the package name
NTIA = tool("ntia-conformance-checker", "ntia-checker")


@pytest.fixture
def built(fixture_project: Path, fixture_mirror: Mirror, tmp_path: Path) -> Path:
    """``dist/unix`` of the fixture tree with the example app (frozen package, C module)."""
    app = tmp_path / "work" / "thermostat"
    shutil.copytree(FIXTURES / "thermostat", app)
    result = run_task(fixture_project, "build", "--mirror", str(fixture_mirror.base), "--app", str(app))
    assert result.returncode == 0, result.stdout + result.stderr
    return fixture_project / "dist" / "unix"


@pytest.fixture(scope="module")
def built_once(fixture_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``built``, made once for the tests that only read it: (the checkout, its dist/unix)."""
    root = tmp_path_factory.mktemp("sbom")
    project = make_project(root / "proj", fixture_mirror)
    app = root / "work" / "thermostat"
    shutil.copytree(FIXTURES / "thermostat", app)
    result = run_task(project, "build", "--mirror", str(fixture_mirror.base), "--app", str(app))
    assert result.returncode == 0, result.stdout + result.stderr
    return project, project / "dist" / "unix"


def load(dist: Path) -> tuple[dict, dict]:
    return (json.loads((dist / "sbom.spdx.json").read_text()),
            json.loads((dist / "manifest.json").read_text()))


def by_id(doc: dict) -> dict[str, dict]:
    return {e["SPDXID"]: e for e in doc["packages"] + doc["files"]}


def test_the_sbom_names_the_firmware_its_artifacts_tree_submodules_patches_toolchain_and_app(
        built_once: tuple[Path, Path], fixture_mirror: Mirror):
    fixture_project, built = built_once
    doc, manifest = load(built)
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    elements = by_id(doc)
    (firmware_id,) = doc["documentDescribes"]
    firmware = elements[firmware_id]
    assert firmware["versionInfo"] == manifest["version"]
    assert firmware["versionInfo"].endswith("+s." + series_id(manifest["patches"]))
    assert firmware["primaryPackagePurpose"] == "FIRMWARE"
    rels = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", firmware_id) in rels

    # every artifact, as a file of the firmware with the digests of the file in dist/
    contained = {elements[b]["fileName"]: elements[b] for a, kind, b in rels
                 if a == firmware_id and kind == "CONTAINS"}
    assert sorted(contained) == sorted("./" + a["name"] for a in manifest["artifacts"])
    for art in manifest["artifacts"]:
        data = (built / art["name"]).read_bytes()
        sums = {c["algorithm"]: c["checksumValue"] for c in contained["./" + art["name"]]["checksums"]}
        assert sums == {"SHA256": hashlib.sha256(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest()}

    def package(spdx_id: str) -> dict:
        assert (firmware_id, "GENERATED_FROM", spdx_id) in rels, spdx_id
        assert (firmware_id, "DEPENDS_ON", spdx_id) in rels, spdx_id  # what the NTIA checker follows
        return elements[spdx_id]

    tree = package("SPDXRef-tree-micropython")
    assert tree["downloadLocation"].endswith(f"@{fixture_mirror.tree_sha}")
    tree_git = fixture_project / "micropython"
    for rel in ("lib/axtls", "lib/berkeley-db-1.xx", "lib/libffi"):
        sub = package("SPDXRef-submodule-" + rel.replace("/", "-"))
        assert sub["versionInfo"] == git(tree_git / rel, "rev-parse", "HEAD")
        assert sub["supplier"].startswith("Organization: ")
    for patch in manifest["patches"]:
        pkg = package("SPDXRef-patch-" + patch["name"])
        assert {"algorithm": "SHA256", "checksumValue": patch["sha256"]} in pkg["checksums"]
        assert ("SPDXRef-patch-" + patch["name"], "PATCH_APPLIED", "SPDXRef-tree-micropython") in rels
    gcc = elements["SPDXRef-toolchain-gcc"]
    assert ("SPDXRef-toolchain-gcc", "BUILD_TOOL_OF", firmware_id) in rels
    if shutil.which("dpkg-query"):  # the Debian package at the version installed here
        version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "gcc"], text=True,
                                 capture_output=True, check=True).stdout
        assert gcc["versionInfo"] == version
        assert gcc["externalRefs"][0]["referenceLocator"].startswith(f"pkg:deb/debian/gcc@{version}?arch=")

    app = package("SPDXRef-app-thermostat")
    app_files = {elements[b]["fileName"]: elements[b] for a, kind, b in rels
                 if a == app["SPDXID"] and kind == "CONTAINS"}
    frozen = {f["name"]: f["sha256"] for f in manifest["app"]["frozen"]}
    assert set(frozen) | {"crc16/crc16.c"} == {name.removeprefix("./") for name in app_files}
    for name, sha in frozen.items():
        assert {"algorithm": "SHA256", "checksumValue": sha} in app_files["./" + name]["checksums"]


def test_licenses_are_declared_only_from_a_license_file_mpforge_recognises(tmp_path: Path):
    (tmp_path / "mit").mkdir()
    (tmp_path / "mit" / "LICENSE").write_text(MIT)
    assert declared_license(tmp_path / "mit")[0] == "MIT"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "LICENSE").write_text("ESPRESSIF MIT License\n\nPermission is hereby "
                                                "granted for use on ESPRESSIF SYSTEMS ESP8266 only\n")
    lic, note = declared_license(tmp_path / "other")
    assert lic == "NOASSERTION" and "ESPRESSIF MIT License" in note
    (tmp_path / "none").mkdir()
    assert declared_license(tmp_path / "none") == (
        "NOASSERTION", "no top-level license file; its source files carry their own terms")


def test_the_same_build_gives_the_same_sbom(built: Path, fixture_project: Path, fixture_mirror: Mirror):
    first = (built / "sbom.spdx.json").read_bytes()
    shutil.rmtree(built)
    app = fixture_project.parent / "work" / "thermostat"  # where the fixture put the app
    again = run_task(fixture_project, "build", "--mirror", str(fixture_mirror.base), "--app", str(app))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (built / "sbom.spdx.json").read_bytes() == first


@pytest.mark.skipif(PYSPDXTOOLS is None, reason="needs spdx-tools (pip install -e '.[test]')")
def test_pyspdxtools_accepts_the_sbom(built_once: tuple[Path, Path]):
    built = built_once[1]
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    messages = validate_full_spdx_document(parse_file(str(built / "sbom.spdx.json")))
    assert [m.validation_message for m in messages] == []
    ran = subprocess.run([str(PYSPDXTOOLS), "-i", str(built / "sbom.spdx.json")], text=True,
                         capture_output=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.skipif(NTIA is None, reason="needs ntia-conformance-checker (pip install -e '.[test]')")
def test_the_ntia_checker_finds_every_minimum_element_and_no_floating_component(built_once: tuple[Path, Path]):
    built = built_once[1]
    ran = subprocess.run([str(NTIA), "--file", str(built / "sbom.spdx.json")], text=True,
                         capture_output=True, timeout=120)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out
    assert "Conformant: True" in out
    assert "floating" not in out  # every component hangs off the firmware
