"""The binaries ``invoke perf`` compares, built through the one pipeline (and ccache).

Default mode: **head** is the tree as it is now (``dist/unix``, the user's edits in
``micropython/`` included); **base** is the pin plus the whole series, a variant tree
of its own (:func:`mpforge.tree.variants.variant_project`), so the user's edits are the
only difference. ``--base REF`` and ``--per-patch`` are not landed yet.
"""

from __future__ import annotations

from pathlib import Path

from mpforge.core.project import Project
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.tree.patches import read_series
from mpforge.tree.variants import variant_project

#: The variant folder (``build/variants/<name>``) of the pin plus the whole series.
SERIES_VARIANT = "perf-series"


def default_pair(project: Project, *, mirror: str | None,
                 options: BuildOptions) -> tuple[tuple[str, Path], tuple[str, Path]]:
    """(("pin + series", binary), ("tree", binary)) for the unix port."""
    unix = project.catalog.port("unix")
    head = Pipeline(project, mirror, options=options).build_one(project.target("unix"))
    variant = variant_project(project, SERIES_VARIANT, read_series(project.patches_dir), unix)
    pipeline = Pipeline(variant, mirror, options=options)
    pipeline.tree([unix])
    base = pipeline.build_one(variant.target("unix"))
    return ("pin + series", base.dist_dir / "micropython"), ("tree", head.dist_dir / "micropython")
