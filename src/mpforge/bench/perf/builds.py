"""The binaries ``invoke perf`` compares, built through the one pipeline (and ccache).

Three modes, each a list of (base, head) pairs of :class:`Built` binaries:

* **default** (:func:`default_pair`): head is the tree as it is now (``dist/unix``, the
  user's edits in ``micropython/`` included); base is the pin plus the whole series,
  a variant tree of its own (:func:`mpforge.tree.variants.variant_project`), so the
  user's edits are the only difference;
* **--base REF** (:func:`ref_pair`): base is the series and pin at git ref REF of this
  checkout (:mod:`.refs`), head the current series and pin; each is a variant tree in
  a folder of its own, so both stay warm in ccache from one run to the next;
* **--per-patch** (:func:`per_patch`): the pin alone, then the pin with the first
  patch, the first two... (N patches: N+1 builds), built one after the other in ONE
  variant folder (ccache hits only within one absolute path: a folder per step would
  compile everything N+1 times). Each step's binary is copied out before the next
  build overwrites it; pairs are (step k-1, step k), the head labelled with patch k's
  file name.

Every :class:`Built` carries the build's text/data/bss (the manifest's sizes, measured
by :func:`mpforge.firmware.size.elf_size` when the target was built).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.bench.perf import refs
from mpforge.core.errors import GitError
from mpforge.core.project import Project
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.firmware.size import SECTIONS
from mpforge.firmware.target import BuildResult
from mpforge.tree.fetch import fetch
from mpforge.tree.git import Git
from mpforge.tree.patches import Patch, read_series
from mpforge.tree.variants import resolve_commit, variant_project

#: The variant folder (``build/variants/<name>``) of the pin plus the whole series.
SERIES_VARIANT = "perf-series"
#: The variant folder of ``--base REF``'s series and pin.
REF_VARIANT = "perf-base"
#: The one variant folder every ``--per-patch`` step is built in.
STEPS_VARIANT = "perf-per-patch"
PORT = "unix"


@dataclass(frozen=True)
class Built:
    """A binary to count: its label in the report, where it is, and its code size."""

    label: str
    binary: Path
    size: dict[str, int] = field(default_factory=dict)


Pair = tuple[Built, Built]


def _built(label: str, result: BuildResult, binary: Path | None = None) -> Built:
    sizes = result.manifest.get("size") or {}
    return Built(label, binary or result.dist_dir / "micropython",
                 {k: int(sizes[k]) for k in SECTIONS if k in sizes})


def _variant_build(project: Project, name: str, patches: list[Patch], *, mirror: str | None,
                   options: BuildOptions, commit: str | None = None) -> BuildResult:
    """Build the unix port of a variant tree (``patches`` on ``commit``, default the pin)."""
    unix = project.catalog.port(PORT)
    variant = variant_project(project, name, patches, unix, commit)
    pipeline = Pipeline(variant, mirror, options=options)
    pipeline.tree([unix])
    return pipeline.build_one(variant.target(PORT))


def default_pair(project: Project, *, mirror: str | None, options: BuildOptions) -> list[Pair]:
    """[("pin + series", "tree")] for the unix port."""
    head = Pipeline(project, mirror, options=options).build_one(project.target(PORT))
    base = _variant_build(project, SERIES_VARIANT, read_series(project.patches_dir),
                          mirror=mirror, options=options)
    return [(_built("pin + series", base), _built("tree", head))]


def ref_at(project: Project, ref: str, mirror: str | None) -> tuple[refs.SeriesAtRef, str]:
    """REF's series and the tree commit to build it on (checked before anything is built).

    A pin other than micropython/'s is looked up there, then fetched through the mirror;
    a pin neither has is refused (nothing built)."""
    at_ref = refs.read_at(project, ref, project.build_root / "perf" / "base-series")
    fetch(project, [project.catalog.port(PORT)], mirror)  # variants link its submodules
    current = Git(project.executor).head(project.tree)
    if not current:
        raise GitError("micropython/ is not fetched", "run `invoke fetch` first")
    if at_ref.pin == current:
        return at_ref, current
    found = resolve_commit(project, at_ref.pin, mirror)
    if found is None:
        raise GitError(f"perf: --base {ref} pins micropython at {at_ref.pin[:10]}, which neither "
                       "micropython/ nor the mirror has",
                       "fetch that commit into micropython/ (git -C micropython fetch origin SHA) "
                       "or pass --mirror")
    return at_ref, found


def ref_pair(project: Project, at_ref: refs.SeriesAtRef, commit: str, *, mirror: str | None,
             options: BuildOptions) -> list[Pair]:
    """[(REF's series and pin, the current series and pin)] for the unix port."""
    base = _variant_build(project, REF_VARIANT, at_ref.patches, mirror=mirror, options=options,
                          commit=commit)
    head = _variant_build(project, SERIES_VARIANT, read_series(project.patches_dir),
                          mirror=mirror, options=options)
    return [(_built(at_ref.ref, base), _built("pin + series", head))]


def per_patch(project: Project, *, mirror: str | None, options: BuildOptions,
              on_step: Callable[[str], None] | None = None) -> list[Pair]:
    """[(pin, patch 1), (patch 1, patch 2), ...]: each patch against the series before it."""
    series = read_series(project.patches_dir)
    fetch(project, [project.catalog.port(PORT)], mirror)  # variants link its submodules
    steps_dir = project.build_root / "perf" / "steps"
    if steps_dir.exists():
        shutil.rmtree(steps_dir)
    steps: list[Built] = []
    for k in range(len(series) + 1):
        label = "pin" if k == 0 else series[k - 1].name
        if on_step:
            on_step(f"build {k + 1}/{len(series) + 1}: {label}")
        result = _variant_build(project, STEPS_VARIANT, series[:k], mirror=mirror, options=options)
        kept = steps_dir / f"{k:03d}" / "micropython"
        kept.parent.mkdir(parents=True)
        for name in ("micropython", "micropython.debug"):  # the symbols too (see layouts)
            if (result.dist_dir / name).is_file():
                shutil.copy2(result.dist_dir / name, kept.with_name(name))
        steps.append(_built(label, result, kept))
    return list(zip(steps, steps[1:]))
