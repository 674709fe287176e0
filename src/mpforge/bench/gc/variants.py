"""The firmwares bench-gc compares, built the same way for its host and QEMU halves.

**Unpatched** has one meaning in both: our whole patch series *minus only the feature
patch* (:func:`series_without`), at the pin. Every other patch stays (the toolchain
fixes, the emulated board, the tools' patches, ``0015``'s UART fix...), so the two
binaries differ by the feature alone: a comparison against the series cut off before
the feature would also drop the patches after it, and credit (or blame) the feature
for them. **Upstream** (QEMU half only) is a later upstream commit with that same
series, a reference built and measured only.

The variants are trees of their own (:func:`mpforge.tree.variants.variant_project`),
built through the pipeline with the command's mirror and build options (``--jobs``,
ccache), like every other build.
"""

from __future__ import annotations

from mpforge.core.config import PortDef
from mpforge.core.errors import MpforgeError
from mpforge.core.project import Project
from mpforge.firmware.pipeline import BuildOptions, Pipeline
from mpforge.firmware.target import BuildResult
from mpforge.tree.patches import Patch, read_series
from mpforge.tree.variants import variant_project

#: Upstream's later commit implementing gc.threshold (measured as a reference only).
UPSTREAM_COMMIT = "93e353e"
#: Which firmware each variant name stands for, as the tables label it.
LABELS = {
    "patched": "our tree (full series)",
    "unpatched": "our series without the threshold patch (every other patch kept)",
    "upstream": "upstream {commit} (reference: built and measured only)",
}


#: Patches that build on a feature patch (their context is its code): left out with it.
DEPENDENTS = {"gc-alloc-threshold": ("gc-threshold-auto",)}


def series_without(project: Project, feature: str) -> list[Patch]:
    """The patch series with the one patch whose name contains ``feature`` left out
    (and the patches that build on it, :data:`DEPENDENTS`): what "unpatched" means in
    every bench-gc figure (see the module docstring)."""
    series = read_series(project.patches_dir)
    matches = [p for p in series if feature in p.name]
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise MpforgeError(f"--feature {feature!r} must name exactly one patch of patches/series "
                           f"(matches: {found})", "pass part of the feature patch's file name")
    dependents = [dep for key, deps in DEPENDENTS.items() if key in matches[0].name for dep in deps]
    return [p for p in series if p is not matches[0] and not any(d in p.name for d in dependents)]


def variant_name(feature: str, commit: str | None = None) -> str:
    """The variant tree's folder name under ``build/variants/``."""
    return f"upstream-{commit}" if commit else f"series-without-{feature}"


def build_variant(project: Project, feature: str, port: PortDef, board: str | None, *,
                  mirror: str | None, options: BuildOptions,
                  upstream: tuple[str, str] | None = None) -> BuildResult:
    """Build ``port``/``board`` in the tree without ``feature``, at the pin or, with
    ``upstream`` (the commit as given, its full sha: see
    :func:`mpforge.tree.variants.resolve_commit`), at that commit. Problems are raised."""
    variant = variant_project(project, variant_name(feature, upstream[0] if upstream else None),
                              series_without(project, feature), port,
                              upstream[1] if upstream else None)
    pipeline = Pipeline(variant, mirror, options=options)  # another tree: its own preparation
    pipeline.tree([port])
    return pipeline.build_one(variant.target(port.name, board))
