"""Fault injection: nothing lost, nothing half-done.

Every test stops mpforge somewhere it could really be stopped (a signal at a
moment in the run, or a SIGKILL exactly at a named step through the
``MPFORGE_FAULT`` seam of :mod:`mpforge.core.state`), or gives it a damaged state file,
a competing command, a full disk; then runs the next command a user would run,
and checks the invariants:

* the tree ends fully patched or pristine, as asked; ``patch --status`` never
  calls a mixed tree applied;
* ``dist/<target>/`` holds a complete build (its manifest matches its files) or
  none, and no leftovers;
* the user's files are never overwritten;
* every failure is one clear line, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import git, project_for, run_cli, run_task
from mpforge.tree.fetch import fetch

SRC = Path(__file__).resolve().parents[1] / "src"
SERIES_FILES = ("py/gc.c", "py/gc.h")


def snapshot(tree: Path) -> dict[str, str | None]:
    return {f: hashlib.sha256((tree / f).read_bytes()).hexdigest() if (tree / f).exists() else None
            for f in SERIES_FILES}


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


@pytest.fixture
def fetched(fixture_project, fixture_mirror):
    """A fixture checkout, fetched, with the tree's pristine and patched contents."""
    project = project_for(fixture_project)
    fetch(project, [project.catalog.port("unix")], str(fixture_mirror.base))
    tree = fixture_project / "micropython"
    pristine = snapshot(tree)
    assert run_task(fixture_project, "patch").returncode == 0
    patched = snapshot(tree)
    assert run_task(fixture_project, "patch", "--revert").returncode == 0
    assert snapshot(tree) == pristine != patched
    return fixture_project, tree, pristine, patched


def status_rows(project: Path) -> tuple[int, list[str]]:
    result = run_task(project, "patch", "--status")
    no_traceback(result)
    states = [line.split(None, 1)[1].rsplit(None, 1)[0] for line in result.stdout.splitlines()
              if line.startswith(("0001-gc", "0002-gc"))]  # the table's rows: one per patch
    assert len(states) == 2, f"not one status row per patch:\n{result.stdout}{result.stderr}"
    return result.returncode, states


def check_status_is_honest(project: Path, tree: Path, pristine, patched) -> None:
    code, states = status_rows(project)  # (one row per patch, or it fails)
    now = snapshot(tree)
    if now not in (pristine, patched):  # mixed: never "applied", never a clean exit
        assert code == 1 and "applied" not in states, states
    if states and all(s == "applied" for s in states):
        assert now == patched


# --- the patch queue: SIGKILL at every step ---------------------------------------------------

#: every step of a patch transaction (see mpforge.tree.journal), each passed by apply and revert
STEPS = ["patch.scratch", "patch.journal", "patch.committed", "patch.write@1", "patch.write@2",
         "patch.record", "state.write@1"]


def test_an_unknown_fault_point_is_refused_in_one_line(fetched):
    project, tree, pristine, patched = fetched
    result = run_cli(project, "patch", env={"MPFORGE_FAULT": "nonexistent"})
    no_traceback(result)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "MPFORGE_FAULT='nonexistent' is not a known fault point" in result.stderr
    assert snapshot(tree) == pristine  # refused before anything ran


@pytest.mark.parametrize("op", ["apply", "revert"])
def test_sigkill_at_every_step_is_finished_by_the_next_command(fetched, op):
    project, tree, pristine, patched = fetched
    start, goal = (pristine, patched) if op == "apply" else (patched, pristine)
    args = ["patch"] if op == "apply" else ["patch", "--revert"]
    for step in STEPS:
        if snapshot(tree) != start:
            assert run_task(project, *(["patch", "--revert"] if op == "apply" else ["patch"])).returncode == 0
        killed = run_cli(project, *args, env={"MPFORGE_FAULT": step})
        # killed there, not finished: a step the run never passes would test nothing
        assert killed.returncode == -signal.SIGKILL, (step, killed.returncode, killed.stderr)
        check_status_is_honest(project, tree, pristine, patched)
        again = run_task(project, *args)
        no_traceback(again)
        assert again.returncode == 0, (step, again.stderr)
        assert snapshot(tree) == goal, step
        assert not (tree / "py" / ".gc.c.mpforge-new").exists()


def test_after_an_interrupted_apply_revert_gives_the_pristine_tree(fetched):
    project, tree, pristine, patched = fetched
    killed = run_cli(project, "patch", env={"MPFORGE_FAULT": "patch.write@1"})
    assert killed.returncode == -signal.SIGKILL
    code, states = status_rows(project)
    assert code == 1 and set(states) == {"interrupted"}
    reverted = run_task(project, "patch", "--revert")
    assert reverted.returncode == 0, reverted.stderr
    assert "finished an interrupted `invoke patch`" in reverted.stdout
    assert snapshot(tree) == pristine


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_ctrl_c_or_sigterm_among_the_writes_is_held_back_until_they_are_done(fetched, sig):
    project, tree, pristine, patched = fetched
    result = run_cli(project, "patch", env={"MPFORGE_FAULT": f"patch.write@1:{sig}"})
    assert result.returncode == (130 if sig == "INT" else 143)
    assert snapshot(tree) == patched  # the transaction went through first
    assert len(result.stderr.strip().splitlines()) == 1 and "interrupted" in result.stderr
    assert status_rows(project) == (0, ["applied", "applied"])


def wait_until(check, what: str) -> None:
    for _ in range(2000):
        if check():
            return
        time.sleep(0.005)
    raise AssertionError(f"never {what}")


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


MOMENTS = ["patch.journal", "patch.write@1", "patch.record", "after:0", "after:40"]


def test_ctrl_c_at_many_moments_of_patch_and_revert(fetched):
    """A terminal's Ctrl-C (SIGINT to the whole process group, git included): at a named step
    (the process freezes itself there, gets the Ctrl-C, and goes on), or some milliseconds
    after the task started. Then the next command finishes the job."""
    project, tree, pristine, patched = fetched
    lock = project / "build" / ".lock"
    for moment in MOMENTS:
        env = {**os.environ, "CI": "1"}
        env.pop("MPFORGE_ROOT", None)
        if not moment.startswith("after:"):
            env["MPFORGE_FAULT"] = f"{moment}:STOP"
        for args, start, goal in ((["patch"], pristine, patched), (["patch", "--revert"], patched, pristine)):
            assert snapshot(tree) == start
            proc = subprocess.Popen([sys.executable, "-m", "mpforge", *args], cwd=project, env=env,
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            if moment.startswith("after:"):  # the task has the lock: past Python's start-up
                wait_until(lambda p=proc: p.poll() is not None or (lock.exists() and  # type: ignore[misc]
                           f"pid {p.pid}:" in lock.read_text()), "started")
                time.sleep(int(moment[6:]) / 1000)
            else:
                wait_until(lambda p=proc: p.poll() is not None or stopped(p.pid),  # type: ignore[misc]
                           f"reached {moment}")
                assert proc.poll() is None, (moment, args, "finished without passing the point")
            try:
                os.killpg(proc.pid, signal.SIGINT)
                os.killpg(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            assert "Traceback" not in err and proc.returncode in (0, 130), (moment, proc.returncode, err)
            check_status_is_honest(project, tree, pristine, patched)
            again = run_task(project, *args)
            assert again.returncode == 0 and snapshot(tree) == goal, (moment, again.stderr)


def test_a_users_edit_during_an_interruption_is_never_overwritten(fetched):
    project, tree, pristine, patched = fetched
    assert run_cli(project, "patch", env={"MPFORGE_FAULT": "patch.committed"}).returncode == -signal.SIGKILL
    gc = tree / "py" / "gc.c"
    gc.write_text("/* my own rewrite */\n")
    result = run_task(project, "patch")
    no_traceback(result)
    assert result.returncode == 1 and "py/gc.c changed since; nothing was overwritten" in result.stderr
    assert gc.read_text() == "/* my own rewrite */\n"


@pytest.mark.parametrize("damage", ["files as a list", "a digest as a number", "no files"])
def test_a_wrong_typed_patch_journal_is_one_line_naming_file_and_key_and_nothing_changes(fetched, damage):
    """(#31) a journal edited after an interruption was a traceback (and build --dry-run
    said "nothing was changed" around it): now one line naming the file and the key, exit 1,
    the tree as it was, for patch and for build --dry-run alike."""
    project, tree, pristine, patched = fetched
    assert run_cli(project, "patch", env={"MPFORGE_FAULT": "patch.committed"}).returncode == -signal.SIGKILL
    journal = next((project / ".git" / "modules" / "micropython").glob("mpforge-patches/txn/journal.json"))
    data = json.loads(journal.read_text())
    first = sorted(data["files"])[0]
    key = {"files as a list": "files", "a digest as a number": f"files.\"{first}\".before", "no files": "files"}[damage]
    if damage == "files as a list":
        data["files"] = list(data["files"])
    elif damage == "a digest as a number":
        data["files"][first]["before"] = 5
    else:
        del data["files"]
    journal.write_text(json.dumps(data))
    before = snapshot(tree)
    for args in (("patch",), ("build", "--dry-run"), ("patch", "--status")):
        result = run_cli(project, *args)
        no_traceback(result)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{journal}: {key}: expected " in lines[0], (args, result.stderr)
        assert snapshot(tree) == before


# --- builds: publish, SIGTERM, damaged state files, concurrency ---------------------------------

def build(project: Path, mirror, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run = run_cli if env and "MPFORGE_FAULT" in env else run_task  # a fault point kills its process
    return run(project, "build", "--mirror", str(mirror.base), *extra, env=env)


def dist_is_whole(project: Path, target: str = "unix") -> None:
    """dist/<target> is a complete build (every file as its manifest says), and nothing else lies around."""
    dist = project / "dist"
    assert [p.name for p in dist.iterdir()] == [target], list(dist.iterdir())
    manifest = json.loads((dist / target / "manifest.json").read_text())
    for artifact in manifest["artifacts"]:
        data = (dist / target / artifact["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"]


def touch_source(project: Path) -> None:
    gc = project / "micropython" / "py" / "gc.c"
    gc.write_text(gc.read_text() + "\n/* rebuild */\n")


def test_the_manifest_says_whether_the_tree_was_pin_plus_series(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    tree = json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())["tree"]
    assert tree["is_pin_plus_series"] is True and tree["differing"] == []
    assert tree["fingerprint"] == tree["pin_plus_series"]
    touch_source(fixture_project)
    makefile = fixture_project / "micropython" / "lib" / "axtls" / "Makefile"
    makefile.write_text(makefile.read_text() + "# mine\n")
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0  # reported, not refused
    assert "micropython/ is not the pin plus the series: 2 difference(s)" in result.stdout
    tree = json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())["tree"]
    assert tree["is_pin_plus_series"] is False
    assert tree["differing"] == ["py/gc.c", "lib/axtls (submodule: local changes)"]


def test_publish_killed_between_its_renames_leaves_a_whole_dist(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    first = json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())
    for step in ("publish.copy", "publish.swap"):
        touch_source(fixture_project)
        killed = build(fixture_project, fixture_mirror, env={"MPFORGE_FAULT": step})
        assert killed.returncode == -signal.SIGKILL
        again = build(fixture_project, fixture_mirror)
        assert again.returncode == 0, again.stderr
        dist_is_whole(fixture_project)
    assert json.loads((fixture_project / "dist" / "unix" / "manifest.json").read_text())["inputs_key"] \
        != first["inputs_key"]


def test_a_dist_lost_by_a_kill_at_publish_is_back_for_the_next_command_not_only_the_next_build(
        fixture_project, fixture_mirror):
    """(#31) killed between publish's two renames, the last build lay aside as
    ``.unix.old-PID`` and only the next *build* put it back: ``verify`` (or deploy, run,
    test...) found no dist/unix. Every command now puts it back first; a dry run says so."""
    assert build(fixture_project, fixture_mirror).returncode == 0
    before = (fixture_project / "dist" / "unix" / "manifest.json").read_bytes()
    touch_source(fixture_project)
    killed = build(fixture_project, fixture_mirror, env={"MPFORGE_FAULT": "publish.swap"})
    assert killed.returncode == -signal.SIGKILL
    assert not (fixture_project / "dist" / "unix").exists()
    dry = build(fixture_project, fixture_mirror, "--dry-run")
    assert "dist/unix is missing (a publish was interrupted): the next command without --dry-run " \
           "puts it back" in dry.stdout, dry.stdout + dry.stderr
    assert not (fixture_project / "dist" / "unix").exists()
    result = run_cli(fixture_project, "verify", "dist/unix")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored dist/unix (its replacement was interrupted)" in result.stdout
    assert (fixture_project / "dist" / "unix" / "manifest.json").read_bytes() == before
    dist_is_whole(fixture_project)


def test_sigterm_during_make_is_one_line_143_and_nothing_published(fixture_project, fixture_mirror,
                                                                    tmp_path):
    assert build(fixture_project, fixture_mirror).returncode == 0
    before = (fixture_project / "dist" / "unix" / "manifest.json").read_bytes()
    touch_source(fixture_project)
    # a compiler that takes its time, so the signal finds make running
    slow = tmp_path / "bin"
    slow.mkdir()
    (slow / "gcc").write_text(f'#!/bin/sh\ncase " $* " in *" -c "*) touch {tmp_path}/compiling; sleep 30;; esac\n'
                              f'exec {shutil.which("gcc")} "$@"\n')
    (slow / "gcc").chmod(0o755)
    env = {**os.environ, "CI": "1", "PATH": f"{slow}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MPFORGE_ROOT", None)
    proc = subprocess.Popen([sys.executable, "-m", "mpforge", "build", "--mirror", str(fixture_mirror.base)],
                            cwd=fixture_project, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    while not (tmp_path / "compiling").exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [err.strip()] and "interrupted (SIGTERM); nothing was published" in err
    assert (fixture_project / "dist" / "unix" / "manifest.json").read_bytes() == before
    again = build(fixture_project, fixture_mirror)
    assert again.returncode == 0, again.stderr
    assert "the last build was interrupted: starting a fresh build directory" in again.stdout
    dist_is_whole(fixture_project)


def test_leftovers_of_dead_publishes_are_cleaned_and_a_lost_dist_restored(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    dist = fixture_project / "dist"
    dead = 2 ** 22 + 12345  # above any pid_max: no such process
    (dist / f".unix.tmp-{dead}").mkdir()
    (dist / f".unix.tmp-{dead}" / "micropython").write_text("half")
    (dist / "unix").rename(dist / f".unix.old-{dead}")  # killed between the two renames
    result = build(fixture_project, fixture_mirror)
    assert result.returncode == 0, result.stderr
    assert "restored dist/unix" in result.stdout and "unix up to date" in result.stdout
    dist_is_whole(fixture_project)


def test_a_truncated_state_file_costs_one_rebuild(fixture_project, fixture_mirror):
    assert build(fixture_project, fixture_mirror).returncode == 0
    for damaged in ("build/unix/inputs.json", "dist/unix/manifest.json",
                    "build/deplibs/unix/axtls/stamp.json"):
        path = fixture_project / damaged
        path.write_bytes(path.read_bytes()[:17])  # as a crash of an older mpforge left it
        touch_source(fixture_project)  # make must run: every state file is read
        result = build(fixture_project, fixture_mirror)
        no_traceback(result)
        assert result.returncode == 0, result.stderr
        assert f"{path.name} is damaged" in result.stdout and "treated as missing" in result.stdout
        dist_is_whole(fixture_project)
    again = build(fixture_project, fixture_mirror)
    assert again.returncode == 0 and "unix up to date" in again.stdout and "damaged" not in again.stdout
    # --clean works with damaged files too
    (fixture_project / "dist" / "unix" / "manifest.json").write_bytes(b"")
    assert build(fixture_project, fixture_mirror, "--clean").returncode == 0
    dist_is_whole(fixture_project)


def test_a_truncated_patch_record_is_read_as_missing(fetched):
    project, tree, pristine, patched = fetched
    assert run_task(project, "patch").returncode == 0
    record = Path(git(tree, "rev-parse", "--absolute-git-dir")) / "mpforge-patches" / "applied.json"
    record.write_text('{"format": 2, "pat')
    result = run_task(project, "patch")
    no_traceback(result)
    assert result.returncode == 0 and "applied.json is damaged" in result.stdout
    assert snapshot(tree) == patched
    assert run_task(project, "patch", "--revert").returncode == 0 and snapshot(tree) == pristine


def test_two_builds_at_once_both_succeed_one_waiting(fixture_project, fixture_mirror):
    env = {**os.environ, "CI": "1"}
    env.pop("MPFORGE_ROOT", None)
    argv = [sys.executable, "-m", "mpforge", "build", "--mirror", str(fixture_mirror.base)]
    procs = [subprocess.Popen(argv, cwd=fixture_project, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results):
        assert proc.returncode == 0 and "Traceback" not in err, err
    dist_is_whole(fixture_project)
    busy = run_task(fixture_project, "patch", "--status")
    assert busy.returncode == 0


def test_no_wait_fails_in_one_line_while_another_command_runs(fetched):
    project, tree, pristine, patched = fetched
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time; sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        from mpforge.core.lock import CheckoutLock
        CheckoutLock(Path({str(project)!r}), "build --port unix").acquire()
        print("locked", flush=True); time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = run_task(project, "patch", "--no-wait")
        status = run_task(project, "patch", "--status")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0
    assert f"another mpforge command is using this checkout (pid {holder.pid}: build --port unix)" \
        in refused.stderr
    assert "another mpforge command is using this checkout" in status.stdout
    assert snapshot(tree) == pristine
    waited = run_task(project, "patch")  # the holder is gone: no wait at all
    assert waited.returncode == 0 and snapshot(tree) == patched


def test_patch_and_revert_at_once_end_in_one_whole_state(fetched):
    project, tree, pristine, patched = fetched
    env = {**os.environ, "CI": "1"}
    env.pop("MPFORGE_ROOT", None)
    procs = [subprocess.Popen([sys.executable, "-m", "mpforge", *args], cwd=project, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in (["patch"], ["patch", "--revert"], ["patch"])]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert snapshot(tree) in (pristine, patched)
    assert status_rows(project)[0] == 0


# --- a full disk --------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stdout.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_under_dist_is_one_clear_line_and_keeps_the_last_build(fixture_project, fixture_mirror,
                                                                           small_disk):
    (small_disk / "dist").mkdir()
    (fixture_project / "dist").symlink_to(small_disk / "dist")
    assert build(fixture_project, fixture_mirror).returncode == 0
    before = (fixture_project / "dist" / "unix" / "manifest.json").read_bytes()
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:  # fill the disk up
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    touch_source(fixture_project)
    full = build(fixture_project, fixture_mirror)
    no_traceback(full)
    assert full.returncode == 1
    assert "no space left on the device" in full.stderr and len(full.stderr.strip().splitlines()) == 1
    assert (fixture_project / "dist" / "unix" / "manifest.json").read_bytes() == before
    dist_is_whole(fixture_project)  # no staging folder left behind
    filler.unlink()
    assert build(fixture_project, fixture_mirror).returncode == 0
    dist_is_whole(fixture_project)


def test_build_folder_on_another_file_system(fixture_project, fixture_mirror, tmp_path):
    """build/ on another disk than the tree: the program moves out of the tree by copy + rename."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "other-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (fixture_project / "build").symlink_to(mount)
        result = build(fixture_project, fixture_mirror)
        assert result.returncode == 0, result.stderr
        dist_is_whole(fixture_project)
        assert (mount / "unix" / "out" / "micropython").exists()
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_checkout_path_with_a_space_is_refused_up_front(fixture_project, fixture_mirror, tmp_path):
    spaced = tmp_path / "my proj"
    fixture_project.rename(spaced)
    result = build(spaced, fixture_mirror)
    assert result.returncode == 1 and "contains a space" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (spaced / "build" / "deplibs").exists()


@pytest.mark.parametrize("jobs", ["abc", "-3", "0", "4097", "65535", "99999999999999999999"])
def test_jobs_must_be_a_whole_number_from_1_to_4096(fixture_project, jobs):
    # 65535 tokens once filled the jobserver's 64 KiB pipe and hung; a huge one overflowed
    result = run_task(fixture_project, "build", "--jobs", jobs)
    assert result.returncode == 1
    assert result.stderr.strip() == f"--jobs takes a whole number from 1 to 4096, not '{jobs}'"
    env = run_task(fixture_project, "build", env={"MPFORGE_JOBS": jobs})
    assert env.returncode == 1 and "Traceback" not in env.stderr
    assert "MPFORGE_JOBS" in env.stderr and len(env.stderr.strip().splitlines()) == 1


def test_the_first_error_shown_skips_harmless_lines():
    from mpforge.firmware.target import first_error

    log = textwrap.dedent("""\
        ls: cannot access '../lib/libffi/build_dir/out/lib/libffi-*/include': No such file or directory
        fatal: No names found, cannot describe anything.
        find: 'modules': No such file or directory
        gcc -c -o build/gc.o ../py/gc.c
        build/main.o: in function `main':
        main.c:(.text+0x10): undefined reference to `gc_threshold'
        collect2: error: ld returned 1 exit status
        make: *** [Makefile:40: micropython] Error 1
    """)
    assert first_error(log).splitlines()[0] == "main.c:(.text+0x10): undefined reference to `gc_threshold'"
    noise_only = "ls: cannot access 'x': No such file or directory\nmake: *** [all] Error 2\n"
    assert first_error(noise_only) == "make: *** [all] Error 2"
