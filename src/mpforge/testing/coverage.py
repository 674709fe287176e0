"""Coverage of the C core and of our patches: what the test suite really executes.

``invoke test --coverage`` runs the suite on the port's ``coverage`` variant (its
``[variants.coverage]`` data: gcov instrumentation at ``-O0``, built out of tree into
``build/<target>-coverage/`` and ``dist/<target>-coverage/``, never over the default
build). Before the run the counters of an earlier run (``*.gcda``) are removed; after
it, gcovr (:func:`collect`) reads what the program wrote and writes, into one folder:

* ``coverage.xml`` — Cobertura XML, what GitLab's ``coverage_report`` and most CI
  services read;
* ``html/index.html`` — gcovr's annotated sources;
* ``coverage.json`` — gcovr's JSON, every executable line with its count;
* ``patches.json`` — coverage per patch: for each patch of ``patches/series``, the
  lines it adds (as they stand in the tree after the whole series) that the compiler
  made executable, how many ran, and which did not (:func:`patch_coverage`).

The sources are compiled from the port's folder (``../py/gc.c``), so gcovr is told
that folder (``--gcov-object-directory``) and reports paths relative to the tree.

Which lines a patch adds is computed by replaying the series over the pin's files
(:func:`lines_added_by`): each line of a file is owned by the patch that added it,
or by none (upstream's), and a later patch that rewrites a line takes it over.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpforge.core.errors import MpforgeError
from mpforge.core.project import Project, Target
from mpforge.tree.series import Patch, read_series

#: the folder, inside ``--coverage-out``, of the HTML report
HTML_DIR = "html"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class PatchCoverage:
    """The executable lines one patch adds, and how many of them the suite ran."""

    patch: str
    lines: int = 0
    covered: int = 0
    #: ``file:line`` of each added executable line that never ran
    missed: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        return round(100.0 * self.covered / self.lines, 1) if self.lines else None

    def as_dict(self) -> dict[str, Any]:
        return {"patch": self.patch, "lines": self.lines, "covered": self.covered,
                "percent": self.percent, "missed": self.missed}


@dataclass
class CoverageReport:
    """What :func:`collect` wrote and measured."""

    folder: Path
    lines: int
    covered: int
    #: the same for the files under ``py/`` (the core)
    core_lines: int
    core_covered: int
    patches: list[PatchCoverage]

    @property
    def cobertura(self) -> Path:
        return self.folder / "coverage.xml"

    @property
    def html(self) -> Path:
        return self.folder / HTML_DIR / "index.html"

    @property
    def percent(self) -> float:
        return round(100.0 * self.covered / self.lines, 1) if self.lines else 0.0

    @property
    def core_percent(self) -> float:
        return round(100.0 * self.core_covered / self.core_lines, 1) if self.core_lines else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "covered": self.covered, "percent": self.percent,
                "py": {"lines": self.core_lines, "covered": self.core_covered, "percent": self.core_percent},
                "cobertura": str(self.cobertura), "html": str(self.html),
                "patches": [p.as_dict() for p in self.patches]}


def coverage_target(target: Target) -> Target:
    """``target`` as its port's ``coverage`` variant (an error names the port's variants
    when it has none)."""
    target.port.variant("coverage")
    return target.project.target(target.port.name, target.board or None, "coverage")


def reset_counters(target: Target) -> int:
    """Remove the ``*.gcda`` counters an earlier run left in the target's build folder
    (gcov adds to them otherwise); returns how many."""
    removed = 0
    for counters in target.obj_dir.rglob("*.gcda"):
        counters.unlink()
        removed += 1
    return removed


# --- which lines each patch adds ---------------------------------------------------------

def _file_sections(text: str, strip: int) -> list[tuple[str | None, str | None, list[str]]]:
    """(old path, new path, hunk lines) per file of a unified diff (None for /dev/null)."""
    sections: list[tuple[str | None, str | None, list[str]]] = []
    old: str | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old = _path(line[4:], strip)
            new = _path(lines[i + 1][4:], strip)
            sections.append((old, new, []))
            i += 2
            continue
        if sections and (line.startswith("@@") or line[:1] in (" ", "+", "-", "\\")):
            sections[-1][2].append(line)
        i += 1
    return sections


def _path(spec: str, strip: int) -> str | None:
    name = spec.split("\t")[0].strip()
    if name == "/dev/null":
        return None
    return "/".join(name.split("/")[strip:])


def _replay(owners: list[str | None], hunks: list[str], patch: str) -> list[str | None]:
    """``owners`` (one per line of the file before the patch) after the patch's hunks:
    context keeps its owner, removed lines go, added lines are the patch's."""
    result: list[str | None] = []
    position = 0  # next line of ``owners`` not yet copied
    for line in hunks:
        header = _HUNK.match(line)
        if header:
            start = int(header.group(1))
            count = 1 if header.group(2) is None else int(header.group(2))
            first = start - 1 if count else start  # an empty old range names the line before
            result += owners[position:first]
            position = first
        elif line.startswith(" "):
            result.append(owners[position] if position < len(owners) else None)
            position += 1
        elif line.startswith("-"):
            position += 1
        elif line.startswith("+"):
            result.append(patch)
    return result + owners[position:]


def lines_added_by(project: Project, patches: list[Patch], pin: str) -> dict[str, dict[str, set[int]]]:
    """Patch name -> file -> the line numbers (in the tree after the whole series) of the
    lines that patch added and no later patch replaced."""
    owners: dict[str, list[str | None]] = {}
    for patch in patches:
        for old, new, hunks in _file_sections(patch.path.read_text(errors="replace"), patch.strip):
            if new is None:  # the patch deletes the file
                owners.pop(old or "", None)
                continue
            if old is None:
                before: list[str | None] = []
            elif old in owners:
                before = owners.pop(old)
            else:
                result = project.executor.run(["git", "-C", str(project.tree), "show", f"{pin}:{old}"],
                                              check=False, mutates=False)
                before = [None] * len(result.stdout.splitlines()) if result.ok else []
            owners[new] = _replay(before, hunks, patch.name)
    added: dict[str, dict[str, set[int]]] = {p.name: {} for p in patches}
    for path, lines in owners.items():
        for number, owner in enumerate(lines, start=1):
            if owner is not None:
                added[owner].setdefault(path, set()).add(number)
    return added


def patch_coverage(added: dict[str, dict[str, set[int]]], executed: dict[str, dict[int, int]]) -> \
        list[PatchCoverage]:
    """Per patch: its added lines that gcov counts (``executed``: file -> line -> count)."""
    table = []
    for patch, files in added.items():
        row = PatchCoverage(patch)
        for path in sorted(files):
            counts = executed.get(path, {})
            for number in sorted(files[path] & counts.keys()):
                row.lines += 1
                if counts[number]:
                    row.covered += 1
                else:
                    row.missed.append(f"{path}:{number}")
        table.append(row)
    return table


# --- gcovr --------------------------------------------------------------------------------

def collect(target: Target, out: Path) -> CoverageReport:
    """Run gcovr over ``target``'s counters; write the reports into ``out`` (see the module
    docstring) and return the figures."""
    project = target.project
    html = out / HTML_DIR
    html.mkdir(parents=True, exist_ok=True)
    raw = out / "coverage.json"
    project.executor.run(
        [sys.executable, "-m", "gcovr", "--root", str(project.tree),
         "--gcov-object-directory", str(target.port_dir), str(target.obj_dir),
         "--json", str(raw), "--cobertura", str(out / "coverage.xml"),
         "--html-details", str(html / "index.html")],
        what="gcovr", mutates=False,
        hint="pip install gcovr (the [coverage] extra), and gcov (Debian gcc) on PATH")
    data = json.loads(raw.read_text())
    executed: dict[str, dict[int, int]] = {}
    for entry in data.get("files", []):
        counts = executed.setdefault(entry["file"], {})
        for line in entry.get("lines", []):
            number = int(line["line_number"])
            counts[number] = counts.get(number, 0) + int(line["count"])
    if not executed:
        raise MpforgeError(f"gcovr found no coverage data in {target.obj_dir}",
                           f"was {target.name} built with its coverage variant, and did the tests run?")
    pin = project.executor.output(["git", "-C", str(project.tree), "rev-parse", "HEAD"], mutates=False)
    series = read_series(project.patches_dir)
    rows = patch_coverage(lines_added_by(project, series, pin), executed)
    (out / "patches.json").write_text(json.dumps([r.as_dict() for r in rows], indent=2) + "\n")
    total = sum(len(c) for c in executed.values())
    covered = sum(1 for c in executed.values() for n in c.values() if n)
    core = {f: c for f, c in executed.items() if f.startswith("py/")}
    return CoverageReport(out, total, covered, sum(len(c) for c in core.values()),
                          sum(1 for c in core.values() for n in c.values() if n), rows)
