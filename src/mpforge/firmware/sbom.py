"""``dist/<target>/sbom.spdx.json``: the firmware's bill of materials, SPDX 2.3 JSON.

:func:`sbom_document` turns a build's manifest and its components
(:mod:`mpforge.firmware.materials`) into one SPDX document per ``dist/<target>/``:

* the firmware itself, a package (purpose ``FIRMWARE``, version = the version
  string its banner shows) that ``CONTAINS`` each artifact as a file (sha1 and
  sha256; its verification code is computed from them, as SPDX defines it);
* the MicroPython tree at its commit, each submodule and pinned source at its
  commit, each patch (sha256), the toolchain's Debian packages (version, purl),
  an app and a board folder with their files; the firmware is ``GENERATED_FROM``
  (and ``DEPENDS_ON``) each source, each patch is ``PATCH_APPLIED`` to the tree, each
  toolchain package is the firmware's ``BUILD_TOOL_OF`` (and its ``HAS_PREREQUISITE``):
  the second of each pair is a composition relationship, which is what the NTIA
  checker follows from the firmware to call a component part of it.

Licenses are declared only from a component's own license file (otherwise
``NOASSERTION``, with the reason in ``licenseComments``); nothing is "concluded".
The document is the same for the same build: its date is the build's
``SOURCE_DATE_EPOCH`` and its namespace is derived from the artifacts' digests.
It passes ``pyspdxtools -i`` and ``ntia-conformance-checker`` (tests/firmware/test_sbom.py).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from typing import Any

from mpforge import __version__
from mpforge.firmware.materials import SELF_SUPPLIER, Component, FileDigest

#: the file name in ``dist/<target>/``
SBOM_NAME = "sbom.spdx.json"

#: the namespace prefix of every document mpforge writes (a URI naming, not a location)
NAMESPACE = "https://spdx.org/spdxdocs/mpforge"

_PURPOSE = {"tree": "SOURCE", "submodule": "SOURCE", "source": "SOURCE", "patch": "SOURCE",
            "toolchain": "INSTALL", "app": "SOURCE", "board": "SOURCE"}


def spdx_id(*parts: str) -> str:
    """An SPDX identifier from free text (letters, digits, ``.`` and ``-`` only)."""
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", "-".join(parts)).strip("-")


def verification_code(files: list[FileDigest]) -> str:
    """SPDX's package verification code: sha1 over the files' sorted sha1s."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode()).hexdigest()  # noqa: S324


def sbom_document(manifest: dict, artifacts: list[FileDigest], components: list[Component]) -> dict[str, Any]:
    """The SPDX 2.3 document of one built target (see the module docstring)."""
    target = manifest["target"]
    created = datetime.datetime.fromtimestamp(int(manifest.get("source_date_epoch", 0)),
                                              datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    seal = hashlib.sha256("".join(f"{a.name}\0{a.sha256}\n" for a in artifacts).encode()).hexdigest()
    firmware_id = spdx_id("firmware", target)
    files: list[dict[str, Any]] = []
    relationships: list[dict[str, str]] = [_rel("SPDXRef-DOCUMENT", "DESCRIBES", firmware_id)]
    for art in artifacts:
        file_id = spdx_id("artifact", art.name)
        files.append(_file(file_id, art, "an artifact of this build"))
        relationships.append(_rel(firmware_id, "CONTAINS", file_id))
    packages: list[dict[str, Any]] = [{
        "name": target,
        "SPDXID": firmware_id,
        "versionInfo": manifest["version"],
        "supplier": SELF_SUPPLIER,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": True,
        "packageVerificationCode": {"packageVerificationCodeValue": verification_code(artifacts)},
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "FIRMWARE",
        "comment": f"MicroPython firmware {target} built by mpforge {__version__}; the files "
                   "are the artifacts of dist/" + target + "/, as manifest.json lists them",
    }]
    tree_id = ""
    for comp in components:
        comp_id = spdx_id(comp.kind, comp.name)
        packages.append(_package(comp_id, comp))
        if comp.kind == "tree":
            tree_id = comp_id
        # the precise relationship, and the composition one the NTIA checker follows
        # from the firmware (it leaves components reached otherwise "floating")
        if comp.kind == "toolchain":
            relationships.append(_rel(comp_id, "BUILD_TOOL_OF", firmware_id))
            relationships.append(_rel(firmware_id, "HAS_PREREQUISITE", comp_id))
        else:
            relationships.append(_rel(firmware_id, "GENERATED_FROM", comp_id))
            relationships.append(_rel(firmware_id, "DEPENDS_ON", comp_id))
        if comp.kind == "patch" and tree_id:
            relationships.append(_rel(comp_id, "PATCH_APPLIED", tree_id))
        for f in comp.files:
            file_id = spdx_id(comp.kind, comp.name, f.name)
            files.append(_file(file_id, f, f"{comp.kind} {comp.name}"))
            relationships.append(_rel(comp_id, "CONTAINS", file_id))
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"mpforge-{target}",
        "documentNamespace": f"{NAMESPACE}/{target}-{seal}",
        "creationInfo": {"created": created,
                         "creators": ["Tool: mpforge-" + __version__, "Organization: mpforge"],
                         "comment": "created at the build's SOURCE_DATE_EPOCH, so that the same "
                                    "build gives the same document"},
        "documentDescribes": [firmware_id],
        "packages": packages,
        "files": files,
        "relationships": relationships,
    }


def _rel(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def _file(file_id: str, f: FileDigest, comment: str) -> dict[str, Any]:
    return {"fileName": "./" + f.name, "SPDXID": file_id,
            "checksums": [{"algorithm": "SHA1", "checksumValue": f.sha1},
                          {"algorithm": "SHA256", "checksumValue": f.sha256}],
            "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION", "comment": comment}


def _package(comp_id: str, comp: Component) -> dict[str, Any]:
    """One component as an SPDX package: its files (an app's) make it ``filesAnalyzed``."""
    pkg: dict[str, Any] = {
        "name": comp.name,
        "SPDXID": comp_id,
        "versionInfo": comp.version,
        "supplier": comp.supplier,
        "downloadLocation": comp.location if comp.location.startswith(("git+", "http")) else "NOASSERTION",
        "filesAnalyzed": bool(comp.files),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": comp.license,
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": _PURPOSE[comp.kind],
    }
    if comp.files:
        pkg["packageVerificationCode"] = {"packageVerificationCodeValue": verification_code(comp.files)}
    if comp.license_note:
        pkg["licenseComments"] = f"declared: {comp.license_note}"
    if comp.sha256:
        pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": comp.sha256}] + (
            [{"algorithm": "SHA1", "checksumValue": comp.sha1}] if comp.sha1 else [])
    if comp.purl:
        pkg["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                "referenceLocator": comp.purl}]
    notes = [comp.comment] if comp.comment else []
    if comp.kind == "patch":
        notes.append(f"{comp.location} of this checkout, applied to the tree")
    if comp.commit:
        notes.append(f"git commit {comp.commit}")
    if notes:
        pkg["comment"] = "; ".join(notes)
    return pkg

