"""``dist/``: complete builds only, published atomically.

:func:`publish` swaps a target's new artifacts and manifest in with two renames
(signals held back between them); :func:`tidy_dist` finishes or undoes what an
interrupted publish left behind. :data:`published` lists what this process
published, so a stop message can say whether anything was.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from mpforge.core.project import Target
from mpforge.core.state import deferred_signals, disk_errors, fault_point, fsync_dir, pid_alive, write_json


def tidy_dist(dist_root: Path, dry_run: bool = False) -> list[str]:
    """Remove what interrupted publishes left in ``dist/``; returns what was done.

    ``.<target>.tmp-PID`` is a staging folder (incomplete: removed);
    ``.<target>.old-PID`` is the previous complete build, moved aside just before
    the new one was renamed in: put back if the new one never arrived, else removed.
    Only leftovers of processes that are gone are touched; another command tidying
    at the same moment is no error. Every command runs this first
    (:func:`mpforge.cli.framework.checkout`), so a build lost by a kill in the middle
    of a publish is back before anything reads ``dist/``; under ``dry_run`` nothing is
    touched and the lines say what the next command will do.
    """
    done: list[str] = []
    if not dist_root.is_dir():
        return done
    for entry in sorted(dist_root.iterdir()):
        match = re.fullmatch(r"\.(.+)\.(tmp|old)-(\d+)", entry.name)
        if not match or pid_alive(int(match.group(3))):
            continue
        final = dist_root / match.group(1)
        if match.group(2) == "old" and not final.exists():
            if dry_run:
                done.append(f"dist/{final.name} is missing (a publish was interrupted): the next "
                            f"command without --dry-run puts it back from dist/{entry.name}")
                continue
            try:
                entry.rename(final)
            except FileNotFoundError:  # another command put it back first
                continue
            done.append(f"restored dist/{final.name} (its replacement was interrupted)")
        elif not dry_run:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed dist/{entry.name} (left by an interrupted build)")
    return done


#: the targets this process published (a stop message says whether anything was)
published: list[str] = []


def publish(target: Target, artifacts: list[tuple[str, Path]], manifest: dict,
            documents: dict[str, dict] | None = None) -> None:
    """Replace ``dist/<target>/`` with the new artifacts; it never holds half a build.

    The artifacts are copied (from any file system: ``build/`` may be on another
    disk) into a staging folder inside ``dist/`` with the manifest and the
    ``documents`` (file name -> JSON: the SBOM and the attestation), and flushed to
    disk; two renames within ``dist/`` then swap it in (the old folder aside, the
    new one in place), with Ctrl-C and SIGTERM held back between them. A process
    killed between the two leaves the old build aside, which :func:`tidy_dist`
    puts back. A full disk or another OSError is one :class:`StateError` line.
    """
    dist_root = target.project.dist_root
    with disk_errors(f"cannot publish {target.name} to {dist_root}"):
        dist_root.mkdir(parents=True, exist_ok=True)
        for line in tidy_dist(dist_root):
            target.project.console.info(line)
        staging = dist_root / f".{target.name}.tmp-{os.getpid()}"
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
        try:
            for name, path in artifacts:
                shutil.copy2(path, staging / name)
                with open(staging / name, "rb+") as fh:
                    os.fsync(fh.fileno())
                fault_point("publish.copy")
            write_json(staging / "manifest.json", manifest)
            for name, document in (documents or {}).items():
                write_json(staging / name, document)
            final = target.dist_dir
            old = dist_root / f".{target.name}.old-{os.getpid()}"
            with deferred_signals():
                if final.exists():
                    final.rename(old)
                fault_point("publish.swap")
                staging.rename(final)
                fsync_dir(dist_root)
                published.append(target.name)
            if old.exists():
                shutil.rmtree(old)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
