"""A mirror in one file: written, recognised, unpacked once per content into a cache (older
contents of the same file removed), and refused whole when any member is unsafe, on every
Python (mpforge's own extraction: Debian bookworm's 3.11.2 has no tarfile filter)."""

from __future__ import annotations

import io
import json
import os
import site
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from mpforge.core.errors import ConfigError
from mpforge.tree import bundle as bundle_mod
from mpforge.tree.bundle import INDEX, is_bundle, unpack_bundle, write_bundle


def a_mirror(base: Path) -> Path:
    repo = base / "owner" / "name.git"
    (repo / "objects").mkdir(parents=True)
    (repo / "HEAD").write_text("ref: refs/heads/main\n")
    return base


def unpacked(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


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
    # one unpacked folder per content: the old content of the same file is gone
    assert unpacked(cache) == [second]
    assert not [p for p in cache.iterdir() if p.name.startswith(".unpack-")]  # no unpack left half-done


def test_the_same_bundle_at_two_paths_is_unpacked_once_and_kept_while_one_path_needs_it(tmp_path):
    base = a_mirror(tmp_path / "base")
    one, two = tmp_path / "one.tar", tmp_path / "two.tar"
    write_bundle(base, ["owner/name.git"], one)
    two.write_bytes(one.read_bytes())
    cache = tmp_path / "cache"
    assert unpack_bundle(one, cache) == unpack_bundle(two, cache)
    shared = unpacked(cache)
    assert len(shared) == 1
    (base / "owner" / "name.git" / "HEAD").write_text("ref: refs/heads/other\n")
    write_bundle(base, ["owner/name.git"], one)
    os.utime(one, ns=(1, 10**18))
    newer = unpack_bundle(one, cache)
    assert sorted(unpacked(cache)) == sorted([shared[0], newer])  # two.tar still has the old content
    assert unpack_bundle(two, cache) == shared[0]


def evil_bundle(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for member in [(INDEX, b"{}"), *members]:
            if isinstance(member, tuple):
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
            else:
                tar.addfile(member)
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


CASES = {
    "a path out of its folder": [("../outside.txt", b"x")],
    "an absolute path": [("/tmp/mpforge-bundle-absolute.txt", b"x")],
    # the chain that passed the old per-member checks: each link points at its parent folder,
    # and extraction then followed the links it had just made
    "a chain of links": [link("l0", "."), link("l0/l1", ".."), link("l1/l2", ".."), link("l2/l3", ".."),
                         ("l0/l1/l2/l3/escaped.txt", b"x")],
    "a link inside the folder": [("a/file", b"x"), link("a/b", "file")],
    "a hard link": [("a/file", b"x"), link("a/hard", "a/file", tarfile.LNKTYPE)],
    "a device": [special("dev", tarfile.CHRTYPE)],
    "a fifo": [special("fifo", tarfile.FIFOTYPE)],
    "a file twice": [("a/file", b"x"), ("a/file", b"y")],
    "a file that is also a folder": [("a", b"x"), ("a/file", b"y")],
}


@pytest.mark.parametrize("python", ["with tarfile's data filter", "without it (before 3.11.4)"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unsafe_bundle_is_refused_whole_and_writes_nothing_outside(tmp_path, monkeypatch, python, case):
    if python.startswith("without"):  # Debian bookworm's Python 3.11.2 has no filter=
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    room = tmp_path / "a" / "b" / "c" / "d"
    bundle = evil_bundle(room / "evil.tar", CASES[case])
    cache = room / "cache" / "in"
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(ConfigError, match="damaged or unsafe"):
        unpack_bundle(bundle, cache)
    after = {p for p in tmp_path.rglob("*")}
    # only the cache's own bookkeeping (the digest memo) was added, nothing else anywhere
    assert {p.relative_to(cache) for p in after - before if p.is_relative_to(cache)} <= {
        Path("."), Path(".digests"), *(p.relative_to(cache) for p in (cache / ".digests").glob("*"))}
    assert not [p for p in after - before if not p.is_relative_to(cache) and p != cache.parent]
    assert not [p for p in after if p.is_symlink()]
    assert not Path("/tmp/mpforge-bundle-absolute.txt").exists()
    assert not unpacked(cache)


def test_limits_on_members_and_bytes(tmp_path, monkeypatch):
    bundle = evil_bundle(tmp_path / "big.tar", [(f"f{i}", b"0123456789") for i in range(5)])
    monkeypatch.setattr(bundle_mod, "MAX_MEMBERS", 4)
    with pytest.raises(ConfigError, match="more than 4 members"):
        unpack_bundle(bundle, tmp_path / "c1")
    monkeypatch.setattr(bundle_mod, "MAX_MEMBERS", 100)
    monkeypatch.setattr(bundle_mod, "MAX_BYTES", 35)
    with pytest.raises(ConfigError, match="more than 35 bytes"):
        unpack_bundle(bundle, tmp_path / "c2")
    monkeypatch.setattr(bundle_mod, "MAX_BYTES", 1000)
    assert (unpack_bundle(bundle, tmp_path / "c3") / "f4").read_bytes() == b"0123456789"


def test_a_folder_is_not_a_bundle(tmp_path):
    assert not is_bundle(tmp_path)


SYSTEM_PYTHON = Path("/usr/bin/python3")


def _system_python_differs() -> str | None:
    """Why the bundle extraction cannot be run under the system's Python here (None: it can)."""
    if not SYSTEM_PYTHON.is_file():
        return f"no {SYSTEM_PYTHON} on this machine"
    if os.path.realpath(SYSTEM_PYTHON) == os.path.realpath(sys.executable):
        return f"{SYSTEM_PYTHON} is the interpreter running the tests (covered above)"
    return None


@pytest.mark.skipif(_system_python_differs() is not None, reason=str(_system_python_differs()))
def test_the_extraction_refuses_the_link_chain_under_the_system_python(tmp_path):
    """(#31) Debian bookworm's own /usr/bin/python3 (3.11.2, no tarfile filter) runs
    :func:`mpforge.tree.bundle.extract` as it is, with its own tarfile, not a monkeypatched
    one (mpforge's imports come from this venv's site-packages: same minor version, same
    ABI); the chain of links is refused and a good bundle unpacks."""
    bundle = evil_bundle(tmp_path / "room" / "a" / "b" / "evil.tar", CASES["a chain of links"])
    good = tmp_path / "good"
    (good / "o" / "n.git").mkdir(parents=True)
    (good / "o" / "n.git" / "HEAD").write_text("ref: refs/heads/main\n")
    script = textwrap.dedent(f"""
        import sys, tarfile
        sys.path[:0] = {[str(Path(bundle_mod.__file__).parents[2]), *site.getsitepackages()]!r}
        from mpforge.tree.bundle import extract, write_bundle, UnsafeMember
        from pathlib import Path
        print("filter", hasattr(tarfile, "data_filter"), sys.version.split()[0])
        out = Path({str(tmp_path / "out")!r}); out.mkdir()
        try:
            with tarfile.open({str(bundle)!r}) as tar:
                extract(tar, out)
        except UnsafeMember as exc:
            print("refused", exc)
        write_bundle(Path({str(good)!r}), ["o/n.git"], Path({str(tmp_path / "good.tar")!r}))
        ok = Path({str(tmp_path / "ok")!r}); ok.mkdir()
        with tarfile.open({str(tmp_path / "good.tar")!r}) as tar:
            extract(tar, ok)
        print("unpacked", (ok / "o" / "n.git" / "HEAD").read_text().strip())
    """)
    result = subprocess.run([str(SYSTEM_PYTHON), "-c", script], capture_output=True, text=True,
                            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("filter ") and lines[0] != f"filter True {sys.version.split()[0]}"
    assert lines[1] == "refused l0 is a link (a mirror bundle holds none)", result.stdout
    assert lines[2] == "unpacked ref: refs/heads/main"
    assert not [p for p in tmp_path.rglob("*") if p.is_symlink()]
    assert not (tmp_path / "room" / "escaped.txt").exists() and not list(tmp_path.rglob("escaped.txt"))
