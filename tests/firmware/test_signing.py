"""Signing the attestation (a DSSE envelope, Ed25519 keys made by OpenSSL) and checking it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mpforge.core.errors import ConfigError
from mpforge.firmware import signing
from mpforge.firmware.provenance import PROVENANCE_NAME

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the keys are made with openssl")


def keypair(folder: Path, name: str) -> tuple[Path, Path]:
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dist = tmp_path / "dist" / "unix"
    dist.mkdir(parents=True)
    (dist / PROVENANCE_NAME).write_text(json.dumps({"_type": "https://in-toto.io/Statement/v1",
                                                     "subject": [{"name": "micropython",
                                                                  "digest": {"sha256": "ab" * 32}}]}))
    return dist


def test_pae_is_dsse_v1():
    # the example of the DSSE specification (protocol.md)
    assert signing.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_a_signed_attestation_checks_with_the_public_key_and_with_no_other(folder: Path, tmp_path: Path):
    private, public = keypair(tmp_path, "mine")
    _, other = keypair(tmp_path, "theirs")
    assert signing.check(folder, public) == (False, f"no {signing.ENVELOPE_NAME}: the attestation is not signed")
    signing.sign_folder(folder, private)
    envelope = json.loads((folder / signing.ENVELOPE_NAME).read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == (folder / PROVENANCE_NAME).read_bytes()
    assert signing.check(folder, public) == (True, "")
    assert signing.check(folder, private) == (True, "")  # a private key's public half
    ok, why = signing.check(folder, other)
    assert not ok and why.startswith("no signature by key ")


def test_a_consistent_tamper_of_the_attestation_fails_the_signature(folder: Path, tmp_path: Path):
    """What an unsigned attestation could not show: the documents rewritten to agree with a
    changed firmware. The signed Statement is no longer the folder's."""
    private, public = keypair(tmp_path, "mine")
    signing.sign_folder(folder, private)
    statement = json.loads((folder / PROVENANCE_NAME).read_text())
    statement["subject"][0]["digest"]["sha256"] = "cd" * 32
    (folder / PROVENANCE_NAME).write_text(json.dumps(statement))
    assert signing.check(folder, public) == (False, f"the signed Statement is not the folder's {PROVENANCE_NAME}")
    # and putting the tampered Statement into the envelope breaks the signature
    envelope = json.loads((folder / signing.ENVELOPE_NAME).read_text())
    envelope["payload"] = base64.b64encode((folder / PROVENANCE_NAME).read_bytes()).decode()
    (folder / signing.ENVELOPE_NAME).write_text(json.dumps(envelope))
    ok, why = signing.check(folder, public)
    assert not ok and why.startswith("no signature by key ")


def test_a_damaged_envelope_or_a_key_that_is_no_key_is_one_line(folder: Path, tmp_path: Path):
    private, public = keypair(tmp_path, "mine")
    (folder / signing.ENVELOPE_NAME).write_text(json.dumps({"payload": 5}))
    ok, why = signing.check(folder, public)
    assert not ok and "is not a DSSE envelope" in why
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="is not an unencrypted private key in PEM"):
        signing.sign_folder(folder, tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match="cannot read the key"):
        signing.check(folder, tmp_path / "missing.pub")


def test_build_sign_key_signs_what_it_publishes_and_verify_key_checks_it(fixture_project, fixture_mirror,
                                                                          tmp_path):
    from conftest import run_cli
    private, public = keypair(tmp_path, "mine")
    (tmp_path / "junk.pem").write_text("not a key")
    bad = run_cli(fixture_project, "build", "--mirror", str(fixture_mirror.base), "--sign-key",
                  str(tmp_path / "junk.pem"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "is not an unencrypted private key in PEM" in bad.stderr and not (fixture_project / "dist").exists()
    built = run_cli(fixture_project, "build", "--mirror", str(fixture_mirror.base), "--sign-key", str(private))
    assert built.returncode == 0, built.stdout + built.stderr
    assert "signed unix's attestation -> dist/unix/provenance.intoto.dsse.json" in built.stdout
    good = run_cli(fixture_project, "verify", "dist/unix", "--key", str(public))
    assert good.returncode == 0, good.stdout + good.stderr
    statement = fixture_project / "dist" / "unix" / PROVENANCE_NAME
    statement.write_text(json.dumps(json.loads(statement.read_text()), indent=1))  # same facts, other bytes
    assert run_cli(fixture_project, "verify", "dist/unix").returncode == 0  # unsigned checks cannot tell
    tampered = run_cli(fixture_project, "verify", "dist/unix", "--key", str(public))
    assert tampered.returncode == 1
    assert f"the signed Statement is not the folder's {PROVENANCE_NAME}" in tampered.stderr
