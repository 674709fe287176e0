"""A mirror in one file: written, recognised, unpacked once into a cache, refused when unsafe."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from mpforge.core.errors import ConfigError
from mpforge.tree.bundle import INDEX, is_bundle, unpack_bundle, write_bundle


def a_mirror(base: Path) -> Path:
    repo = base / "owner" / "name.git"
    (repo / "objects").mkdir(parents=True)
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    return base


def test_written_unpacked_once_and_again_when_the_file_changes(tmp_path):
    base = a_mirror(tmp_path / "base")
    bundle = tmp_path / "m.tar"
    size = write_bundle(base, ["owner/name.git"], bundle)
    assert size == bundle.stat().st_size and is_bundle(bundle)
    assert oct(bundle.stat().st_mode & 0o077) != "0o0"  # readable by others as any file here
    cache = tmp_path / "cache"
    first = unpack_bundle(bundle, cache)
    assert (first / "owner" / "name.git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert json.loads((first / INDEX).read_text())["repositories"] == ["owner/name.git"]
    (first / "marker").write_text("kept")
    assert unpack_bundle(bundle, cache) == first and (first / "marker").exists()  # not unpacked again
    (base / "owner" / "name.git" / "HEAD").write_text("ref: refs/heads/other\n")
    write_bundle(base, ["owner/name.git"], bundle)
    os.utime(bundle, ns=(1, 10**18))
    second = unpack_bundle(bundle, cache)
    assert second != first and (second / "owner" / "name.git" / "HEAD").read_text().endswith("other\n")
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no unpack left half-done


@pytest.mark.parametrize("python", ["with tarfile's data filter", "without it (before 3.11.4)"])
def test_a_bundle_with_a_path_out_of_its_folder_is_refused(tmp_path, monkeypatch, python):
    if python.startswith("without"):  # Debian bookworm's Python 3.11.2 has no filter=
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    bundle = tmp_path / "evil.tar"
    with tarfile.open(bundle, "w") as tar:
        for name, data in ((INDEX, b"{}"), ("../outside.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ConfigError, match="damaged or unsafe"):
        unpack_bundle(bundle, tmp_path / "cache" / "in")
    assert not (tmp_path / "cache" / "in" / "outside.txt").exists()
    assert not (tmp_path / "cache" / "outside.txt").exists()
    assert not is_bundle(tmp_path)  # a folder is not a bundle
