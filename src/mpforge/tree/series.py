"""The patch series: ``patches/series`` read into :class:`Patch` entries.

``patches/series`` names one patch file per line, in the order they apply
(quilt's format): ``#`` starts a comment, and an optional ``-pN`` after the
name sets the strip level (default ``-p1``, as ``git apply`` takes it). Every
named file must exist in the same folder; an unknown option or a missing file is
a :class:`~mpforge.core.errors.ConfigError` naming the line.

This module only reads the series. Applying it is :mod:`mpforge.tree.patches`'
job; builds, benchmarks and the CI generator read it to name and hash patches.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import ConfigError


@dataclass(frozen=True)
class Patch:
    """One entry of the series: the patch file and the strip level it applies with."""

    name: str
    path: Path
    strip: int = 1

    @property
    def sha256(self) -> str:
        """The patch file's sha256 (read each time: the file may be edited between calls)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def read_series(patches_dir: Path) -> list[Patch]:
    """Parse ``patches_dir/series``; every named file must exist. No series file: no patches."""
    series = patches_dir / "series"
    if not series.exists():
        return []
    patches: list[Patch] = []
    for number, raw in enumerate(series.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        strip = 1
        for opt in opts:
            if not re.fullmatch(r"-p\d+", opt):
                raise ConfigError(f"patches/series line {number}: unknown option '{opt}'",
                                  "only -pN is supported after a patch name")
            strip = int(opt[2:])
        path = patches_dir / name
        if not path.is_file():
            raise ConfigError(f"patches/series line {number}: no such patch '{name}'",
                              f"add patches/{name} or remove the line")
        patches.append(Patch(name, path, strip))
    return patches
