"""``invoke size``: text/data/bss per target, and the change against a baseline.

Sizes come from the manifests in ``dist/`` (each build measured its ELF with
the toolchain's ``size``). A baseline is a JSON file saved by an earlier
``invoke size --save``: ``{"targets": {"stmhal-PYBV10": {"text": ..}}}``. The
report is a table, and optionally JSON and Markdown (for a CI comment, like
upstream's code-size reports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import ConfigError, MpforgeError
from mpforge.core.project import Target

SECTIONS = ("text", "data", "bss")


@dataclass
class SizeRow:
    target: str
    size: dict[str, int]
    base: dict[str, int] | None

    def delta(self, section: str) -> int | None:
        if self.base is None or section not in self.base or section not in self.size:
            return None
        return self.size[section] - self.base[section]


def current_sizes(dist_root: Path) -> dict[str, dict[str, int]]:
    """Target name -> sections, from every ``dist/*/manifest.json`` that has sizes."""
    sizes = {}
    for manifest in sorted(dist_root.glob("*/manifest.json")):
        data = json.loads(manifest.read_text())
        if data.get("size"):
            sizes[data["target"]] = {k: int(v) for k, v in data["size"].items()}
    return sizes


def load_baseline(path: Path) -> dict[str, dict[str, int]]:
    try:
        data = json.loads(path.read_text())
        return {t: {k: int(v) for k, v in s.items()} for t, s in data["targets"].items()}
    except FileNotFoundError:
        raise ConfigError(f"no baseline at {path}", "save one with `invoke size --save FILE`") from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{path} is not a size baseline ({exc})",
                          "make one with `invoke size --save FILE`") from None


def compare(current: dict[str, dict[str, int]],
            baseline: dict[str, dict[str, int]] | None) -> list[SizeRow]:
    if not current:
        raise MpforgeError("no built targets with sizes in dist/", "run `invoke build` first")
    return [SizeRow(t, s, (baseline or {}).get(t) if baseline is not None else None)
            for t, s in sorted(current.items())]


def elf_size(target: Target, elf: Path) -> dict[str, int]:
    """text/data/bss of an ELF, from the toolchain's ``size``, plus the port's size regions
    (``<region>`` used and ``<region>_limit``)."""
    size_tool = f"{target.toolchain.cross_compile}size"
    out = target.project.executor.output([size_tool, str(elf)])  # fails: CommandFailed, never "no sizes"
    lines = out.splitlines()
    if len(lines) < 2:
        return {}
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    sizes = {"text": text, "data": data, "bss": bss}
    if target.port.size_regions:
        sections: dict[str, int] = {}
        for line in target.project.executor.output([size_tool, "-A", str(elf)]).splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                sections[fields[0]] = int(fields[1])
        for region in target.port.size_regions:
            sizes[region.name] = sum(sections.get(s, 0) for s in region.sections)
            if region.limit:
                sizes[f"{region.name}_limit"] = region.limit
    return sizes


def regions_note(size: dict[str, int]) -> str:
    """``iram 32452/32768 (316 left)`` for every region with a limit."""
    return ", ".join(f"{name[:-6]} {size[name[:-6]]}/{limit} ({limit - size[name[:-6]]} left)"
                     for name, limit in size.items() if name.endswith("_limit"))
