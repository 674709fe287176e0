"""ccache, when installed: a compiler prefix and the hit rate of a run.

Builds pass ``-ffile-prefix-map`` and ccache gets ``CCACHE_BASEDIR`` (the
checkout), so the cache is shared by checkouts in different folders.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from .project import Project


@dataclass
class Ccache:
    project: Project

    @classmethod
    def detect(cls, project: Project) -> "Ccache | None":
        if shutil.which("ccache") is None:
            return None
        os.environ.setdefault("CCACHE_BASEDIR", str(project.root))
        return cls(project)

    @property
    def prefix(self) -> list[str]:
        return ["ccache"]

    def stats(self) -> dict[str, int]:
        """ccache's counters (``--print-stats``: one ``name<TAB>value`` per line)."""
        out = self.project.executor.output(["ccache", "--print-stats"], check=False)
        counters: dict[str, int] = {}
        for line in out.splitlines():
            name, _, value = line.partition("\t")
            if value.strip().isdigit():
                counters[name] = int(value)
        return counters

    @staticmethod
    def hits_and_misses(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
        def delta(name: str) -> int:
            return after.get(name, 0) - before.get(name, 0)
        hits = delta("direct_cache_hit") + delta("preprocessed_cache_hit")
        return hits, delta("cache_miss")

    def describe(self, before: dict[str, int], after: dict[str, int]) -> str:
        hits, misses = self.hits_and_misses(before, after)
        total = hits + misses
        rate = f"{100 * hits / total:.0f}%" if total else "n/a"
        return f"ccache: {hits} hits, {misses} misses (hit rate {rate})"
