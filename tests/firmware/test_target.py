"""The user's path end to end on the fixture tree: ``mpforge build`` through the CLI.

Real git (mirror folder, submodules), the real ``ports/unix.toml`` and the
host's real gcc/make; only the tree is our fixture.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Mirror, git, run_task


def build(project: Path, mirror: Mirror, *extra: str):
    return run_task(project, "build", "--mirror", str(mirror.base), *extra)


def test_build_from_mirror_produces_working_binary_and_manifest(fixture_project, fixture_mirror):
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0, result.stderr + result.stdout
    binary = fixture_project / "dist" / "unix" / "micropython"
    run = subprocess.run([binary], input="sum 2 3\nalloc 10\n", text=True,
                         capture_output=True, check=True)
    # linked against both deplibs, built out of tree from their submodules
    assert run.stderr.splitlines()[0] == "MiniPython on unix, ffi 3.99999, tls fixture-axtls"
    lines = run.stdout.splitlines()
    assert lines[0] == "5"
    # the fixture patch series was applied: a 300-byte threshold collects every 3 allocations
    assert lines[1] == "collections 3"

    manifest = json.loads((binary.parent / "manifest.json").read_text())
    artifact, debug_info = manifest["artifacts"]
    assert (artifact["name"], debug_info["name"]) == ("micropython", "micropython.debug")  # gdb's
    # the link map is moved out of the tree too, but not published (it embeds paths)
    assert (fixture_project / "build" / "unix" / "out" / "micropython.map").exists()
    assert manifest["size"]["text"] > 0
    assert artifact["size"] == binary.stat().st_size
    import hashlib
    assert artifact["sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert manifest["tree"]["commit"] == fixture_mirror.tree_sha
    assert [p["name"] for p in manifest["patches"]] == ["0001-gc-threshold-decl.patch",
                                                         "0002-gc-threshold.patch"]
    assert manifest["toolchain"]["name"] == "host-gcc"
    assert manifest["make"][0]["CWARN"].startswith("-Wall -Werror")
    assert manifest["build_seconds"] > 0

    tree = fixture_project / "micropython"
    # the deplibs' own source folders stay clean (libffi's autogen rewrites a tracked file)
    assert git(tree / "lib" / "libffi", "status", "--porcelain") == ""
    assert git(tree / "lib" / "axtls", "status", "--porcelain", "--ignored") == ""
    # objects live in build/unix, not in the tree
    assert (fixture_project / "build" / "unix" / "obj" / "gc.o").exists()
    assert not (tree / "unix" / "build").exists()
    assert not (tree / "unix" / "micropython").exists()  # moved out of the tree
    assert "build.log" in {p.name for p in (fixture_project / "build" / "unix").iterdir()}

    again = build(fixture_project, fixture_mirror)
    assert again.returncode == 0, again.stderr
    assert "unix up to date" in again.stdout
    assert json.loads((binary.parent / "manifest.json").read_text()) == manifest


def test_changed_make_variables_get_a_fresh_build_directory(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    marker = fixture_project / "build" / "unix" / "obj" / "stale-marker"
    marker.write_text("from the previous configuration")
    port = fixture_project / "ports" / "unix.toml"
    port.write_text(port.read_text().replace('PYTHON = "python3"', 'PYTHON = "python3"\nCOPT = "-O1"'))
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0, result.stderr
    assert "inputs changed" in result.stdout
    assert not marker.exists()
    manifest = json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())
    assert manifest["make"][0]["COPT"] == "-O1"


def test_compile_error_shows_first_error_and_log_and_keeps_previous_dist(fixture_project,
                                                                         fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    before = (fixture_project / "dist" / "unix" / "micropython").read_bytes()
    source = fixture_project / "micropython" / "lib" / "utils" / "banner.c"
    source.write_text("int broken(void) { return undefined_name; }\n")
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 1
    err = result.stderr
    assert "build of unix failed (full log: build/unix/build.log)" in err
    assert "banner.c:1:" in err and "undefined_name" in err
    assert "Traceback" not in err
    # the last good artifact is untouched and nothing half-done sits in dist/
    assert (fixture_project / "dist" / "unix" / "micropython").read_bytes() == before
    assert sorted(p.name for p in (fixture_project / "dist").iterdir()) == ["unix"]


def test_unknown_port_and_board_list_the_valid_names(fixture_project, fixture_mirror):
    result = run_task(fixture_project, "build", "--port", "nosuch")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip().splitlines()[0]]  # one line
    assert "unknown port 'nosuch'" in result.stderr and "unix" in result.stderr
    board = run_task(fixture_project, "build", "--board", "PYBV10")
    assert board.returncode == 1
    assert "port 'unix' has no boards" in board.stderr
    assert not (fixture_project / "dist").exists()


def test_offline_without_mirror_fails_fast_naming_url_and_option(fixture_project):
    # an unreachable address: refused at once, as a machine without network is
    git(fixture_project, "config", "-f", ".gitmodules", "submodule.micropython.url",
        "https://127.0.0.1:9/micropython/micropython.git")
    result = run_task(fixture_project, "fetch", env={"MPFORGE_MIRROR": ""}, timeout=60)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert "cannot reach https://127.0.0.1:9/micropython/micropython.git" in first
    assert "--mirror" in first
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_traceback(fixture_project):
    result = run_task(fixture_project, "build", "--port", "nosuch", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "UnknownTarget" in result.stderr


def test_dry_run_changes_nothing(fixture_project, fixture_mirror):
    result = build(fixture_project, fixture_mirror, "--dry-run", "--verbose")
    # nothing is fetched in a dry run, so the plan stops at the first step that needs the tree
    assert "$ git" in result.stdout
    assert not (fixture_project / "dist").exists()
    assert not (fixture_project / "micropython" / "py").exists()


def test_a_stale_program_left_in_the_tree_is_never_published(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    good = (fixture_project / "dist" / "unix" / "micropython").read_bytes()
    # another build (by hand, say) leaves its own program in the port folder, newer than our objects
    stale = fixture_project / "micropython" / "unix" / "micropython"
    stale.write_text("#!/bin/sh\necho stale\n")
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0, result.stderr
    assert (fixture_project / "dist" / "unix" / "micropython").read_bytes() == good
    assert "unix up to date" in result.stdout
    # a real rebuild removes it first, so make relinks from our own objects
    rebuilt = build(fixture_project, fixture_mirror, "--clean")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (fixture_project / "dist" / "unix" / "micropython").read_bytes() == good
    assert not stale.exists()


def test_an_interrupted_build_starts_from_a_fresh_build_directory(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    stamp = fixture_project / "build" / "unix" / "inputs.json"
    data = json.loads(stamp.read_text())
    assert data["state"] == "done"
    # as a killed make leaves it: still marked as building, with a half-written intermediate
    data["state"] = "building"
    stamp.write_text(json.dumps(data))
    half = fixture_project / "build" / "unix" / "obj" / "half-written.o"
    half.write_text("")
    (fixture_project / "micropython" / "py" / "gc.c").write_text(
        (fixture_project / "micropython" / "py" / "gc.c").read_text() + "\n")  # so make must run
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0, result.stderr
    assert "the last build was interrupted: starting a fresh build directory" in result.stdout
    assert not half.exists()
    assert json.loads(stamp.read_text())["state"] == "done"


def test_the_manifest_names_the_version_and_a_user_edit_makes_it_dirty(fixture_project, fixture_mirror):
    from mpforge.firmware.manifest import series_id

    assert build(fixture_project, fixture_mirror).returncode == 0
    dist = fixture_project / "dist" / "unix"
    manifest = json.loads((dist / "manifest.json").read_text())
    clean = manifest["version"]
    assert clean == manifest["tree"]["describe"].removesuffix("-dirty") + "+s." + series_id(manifest["patches"])
    (fixture_project / "micropython" / "py" / "gc.c").write_text(
        (fixture_project / "micropython" / "py" / "gc.c").read_text() + "\n/* a user's edit */\n")
    assert build(fixture_project, fixture_mirror).returncode == 0
    dirty = json.loads((dist / "manifest.json").read_text())
    assert dirty["version"] == clean + ".dirty"
    statement = json.loads((dist / "provenance.intoto.json").read_text())
    env = statement["predicate"]["buildDefinition"]["internalParameters"]["environment"]
    assert env["MPFORGE_VERSION_SUFFIX"] == "+s." + series_id(manifest["patches"]) + ".dirty"


def test_a_build_missing_its_sbom_or_attestation_is_published_again(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    dist = fixture_project / "dist" / "unix"
    sbom = (dist / "sbom.spdx.json").read_bytes()
    (dist / "sbom.spdx.json").unlink()
    assert build(fixture_project, fixture_mirror).returncode == 0
    assert (dist / "sbom.spdx.json").read_bytes() == sbom  # the same build: the same document
    assert (dist / "provenance.intoto.json").is_file()


def test_the_assembler_gets_the_debug_prefix_map_too():
    from mpforge.firmware.target import with_assembler_prefix_maps

    flags = ["-ffile-prefix-map={root}=.", "-g"]
    assert with_assembler_prefix_maps(flags) == ["-ffile-prefix-map={root}=.", "-g",
                                                 "-fdebug-prefix-map={root}=."]
    assert with_assembler_prefix_maps(["-fdebug-prefix-map=/a=.", "-ffile-prefix-map=/a=."]) == [
        "-fdebug-prefix-map=/a=.", "-ffile-prefix-map=/a=."]
    assert with_assembler_prefix_maps(["-O2"]) == ["-O2"]
