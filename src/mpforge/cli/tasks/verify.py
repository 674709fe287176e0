"""``invoke verify dist/<target> [--rebuild]``: is this firmware what its papers say?

Checks the artifacts of a ``dist/<target>/`` against its manifest, its SBOM and its
build attestation (:func:`mpforge.firmware.verify.verify_dist`); with ``--rebuild``,
builds the target again from the recorded inputs in a scratch folder and compares
byte for byte (:func:`mpforge.firmware.verify.rebuild`), naming each artifact that
differs (also when the checks failed: a changed artifact is then named by both).
Exit 0 only when every check holds.

It changes nothing in the checkout (a rebuild works in its own scratch clone), so it
never takes the checkout's lock: a long rebuild does not hold up other commands.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.core.errors import UsageError
from mpforge.firmware import signing
from mpforge.firmware import verify as verify_mod


@task(shared=("mirror", "jobs"), locks=False, help=dict(
    path="the built target's folder, e.g. dist/unix or dist/stmhal-PYBV10",
    rebuild="build the target again from its recorded inputs in a scratch folder and "
            "compare every artifact byte for byte",
    jobs="make jobs for --rebuild (default: CPU count)",
    keep="with --rebuild: build in this folder and leave it (default: a temporary one, removed)",
    key="an Ed25519 public key (PEM): the attestation must carry its valid signature "
        "(invoke sign), over exactly the folder's attestation"),
    positional=["path"])
def verify(c: Context, path: str, rebuild: bool = False, keep: str | None = None,
           key: str | None = None) -> None:
    """Check dist/<target> against its manifest, SBOM and attestation; --rebuild compares a fresh build."""
    fw.show_help_if_asked(path, verify)
    project = fw.checkout()
    console = fw.console_of(project)
    dist_dir = Path(path)
    verdict = verify_mod.verify_dist(dist_dir, project.catalog)
    if key:
        signed, why = signing.check(dist_dir, Path(key))
        verdict.add(f"the attestation is signed by the key {Path(key).name}", signed, why)
    for check in verdict.checks:
        if check.ok:
            console.detail(f"ok    {check.what}")
        else:
            console.error(f"{check.what}: {check.detail}")
    failed = sum(not c.ok for c in verdict.checks)
    if failed and not rebuild:
        raise Exit(f"{dist_dir.name}: {failed} of {len(verdict.checks)} checks failed", code=1)
    if not failed:
        console.ok(f"{dist_dir.name}: artifacts, manifest, SBOM and attestation agree "
                   f"({len(verdict.checks)} checks)")
    if not rebuild:
        return
    options = fw.options()
    console.step(f"rebuild {dist_dir.name} from its recorded inputs")
    again, how = verify_mod.rebuild(project, dist_dir, options.mirror, options.jobs,
                                    Path(keep).resolve() if keep else None)
    console.info(f"rebuilt from {how}")
    for check in again.checks:
        if check.ok:
            console.detail(f"ok    {check.what}")
        else:
            console.error(f"{check.what}: {check.detail}")
    if again.differing:
        raise Exit(f"{dist_dir.name}: the rebuild differs in {len(again.differing)} artifact(s): "
                   + ", ".join(again.differing), code=1)
    console.ok(f"{dist_dir.name}: the rebuild is identical, byte for byte "
               f"({len(again.checks)} artifact(s))")
    if failed:  # the rebuild matches, but the folder's papers do not
        raise Exit(f"{dist_dir.name}: {failed} of {len(verdict.checks)} checks failed", code=1)


@task(locks=False, help=dict(path="the built target's folder, e.g. dist/unix",
                             key="your Ed25519 private key (PEM: openssl genpkey -algorithm ed25519)"),
      positional=["path"])
def sign(c: Context, path: str, key: str = "") -> None:
    """Sign dist/<target>'s attestation with your key (a DSSE envelope; verify --key checks it)."""
    fw.show_help_if_asked(path, sign)
    if not key:
        raise UsageError("sign needs --key KEY", "your Ed25519 private key in PEM")
    project = fw.checkout()
    console = fw.console_of(project)
    dist_dir = Path(path)
    verify_mod.verify_dist(dist_dir, project.catalog)  # a folder whose documents are well-formed
    written = signing.sign_folder(dist_dir, Path(key))
    console.ok(f"{dist_dir.name}: attestation signed -> {written}")
