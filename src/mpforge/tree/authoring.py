"""Patch authoring: turn edits in ``micropython/`` into patches of the series.

``invoke patch --new NAME`` and ``invoke patch --refresh NAME`` (quilt's ``new``/
``refresh``, Yocto's ``devtool finish``) start from a tree at its pin with the
series applied and some edits on top: the files the tree fingerprint
(:mod:`mpforge.tree.fingerprint`) names as differing from "pin + series".

* :func:`new_patch` writes those edits as ``patches/00NN-NAME.patch`` (the next
  number after the highest in ``patches/``), in ``git format-patch`` style
  (``From:``/``Subject:`` header with the message, ``---``, one ``diff --git``
  section per file with ``a/``/``b/`` paths and ``index`` lines), appends it to
  ``patches/series`` and records it as applied: the tree is then exactly pin +
  series. Untracked new files are included; build outputs never (the tree's
  ``.gitignore`` keeps them out of the fingerprint, and :data:`BUILD_OUTPUTS`
  drops any object file or build folder that slipped through, saying so).
* :func:`refresh_patch` folds edits back into the patch NAME: only edits to files
  NAME touches. An edit in a file only a *later* patch touches (or inside a later
  patch's hunks, where it cannot be moved below that patch) is refused naming that
  patch; one in a file only an earlier patch touches names that one; one in a
  file no patch touches points to ``--new``. The sections of NAME for files
  without edits, and its header, are kept byte for byte.

Both work everything out in a :class:`~mpforge.tree.journal.Scratch` folder
first: the new patch text, then the whole new series applied in order to a
pristine copy of the pin's files, whose result must equal the tree, file for
file. Only then is anything written, crash-safely:

1. the patch file (:func:`mpforge.core.state.atomic_write_bytes`: whole or not at all);
2. ``authoring.json`` in the patch state folder: the series file's and the patch
   file's sha256 to come, and the record to write (:data:`mpforge.tree.patches.AUTHORING`);
3. ``patches/series`` (``--new`` only), atomically again;
4. the record (``applied.json``) through the patch journal, then the marker goes.

A process stopped after step 2 leaves the marker: the next ``invoke patch`` (any
operation of the queue) writes the record if the series and the patch file are
the ones announced, and otherwise drops the marker (the series is as it was, the
tree keeps the edits, and the patch file is a file no series line names yet, which
``--new`` of the same name overwrites). ``patches/series`` never names a missing file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import PatchError
from mpforge.core.state import atomic_write_bytes, fault_point, write_json
from mpforge.tree.files import Digest, file_digest
from mpforge.tree.fingerprint import tree_fingerprint
from mpforge.tree.journal import Scratch
from mpforge.tree.patches import AUTHORING, PatchQueue
from mpforge.tree.record import Record, _git_apply
from mpforge.tree.series import Patch, read_series

#: how a new patch's name may look (it becomes part of a file name)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: files that are build outputs, wherever the fingerprint found them: never put in a patch
BUILD_OUTPUTS = re.compile(
    r"(^|/)(build(-[^/]*)?|__pycache__)/|\.(o|a|d|P|elf|bin|hex|dfu|map|pyc|mpy|gcda|gcno)$|\.mpforge-new$")
#: the author of a patch when git has no ``user.name``/``user.email``
DEFAULT_AUTHOR = "mpforge <mpforge@users.noreply.github.com>"


@dataclass
class Authored:
    """What :func:`new_patch` or :func:`refresh_patch` did (or, in a dry run, would do)."""

    patch: str  # the patch file's name
    files: list[str]  # the files whose edits it took
    #: build outputs and other files left out (never put in a patch)
    skipped: list[str] = field(default_factory=list)
    written: bool = True


# -- shared steps -------------------------------------------------------------------------

def _edited(queue: PatchQueue, pin: str) -> tuple[list[str], list[str]]:
    """The tree's files that are not "pin + series" (edits), and the build outputs among
    the fingerprint's differences (left out). Refuses a tree that is not at the pin."""
    head = queue._head()
    if head != pin:
        raise PatchError(f"micropython/ is at {head[:10]}, not its pin {pin[:10]}: patches are made "
                         "against the pin", "`invoke fetch` checks out the pin (commit your work "
                         "elsewhere first)")
    fingerprint = tree_fingerprint(queue, pin)
    edited: list[str] = []
    skipped: list[str] = []
    for rel in fingerprint.differing:
        if " (submodule:" in rel:
            skipped.append(rel)
        elif BUILD_OUTPUTS.search(rel):
            skipped.append(rel)
        else:
            edited.append(rel)
    return edited, skipped


def _require_applied(queue: PatchQueue, series: list[Patch], pin: str,
                     edited: list[str]) -> dict[str, tuple[Digest, Digest]]:
    """The series' reference digests on the pin; refuses a tree where the series is not applied
    (a file the series changes still at its pin content would make a patch that undoes it)."""
    if not series:
        return {}
    files = queue.reference(series, pin)
    if files is None:
        raise PatchError("the patch series does not apply to the pin", "`invoke patch --status` names the patch")
    pristine = [rel for rel in edited if rel in files and file_digest(queue.tree / rel) == files[rel][0]]
    if pristine:
        raise PatchError(f"the patch series is not applied to micropython/ ({', '.join(pristine[:3])} "
                         "as at the pin)", "`invoke patch` first, then make your edits")
    return files


def _diff(queue: PatchQueue, rel: str, old: Path | None, new: Path | None) -> str:
    """One ``diff --git`` section from ``old`` to ``new`` (None: no such file), with
    ``a/rel``/``b/rel`` paths; "" when they are the same."""
    left = str(old) if old is not None and (old.is_file() or old.is_symlink()) else "/dev/null"
    right = str(new) if new is not None and (new.is_file() or new.is_symlink()) else "/dev/null"
    if left == right == "/dev/null":
        return ""
    result = queue.executor.run(
        ["git", "diff", "--no-index", "--binary", "--abbrev=10", "--no-color", "--no-ext-diff",
         "--no-textconv", "--", left, right],
        check=False, mutates=False, env={"GIT_CEILING_DIRECTORIES": "/"})
    if result.returncode not in (0, 1):
        raise PatchError(f"cannot diff micropython/{rel}", "", result.tail())
    if result.returncode == 0:
        return ""
    lines = result.stdout.splitlines(keepends=True)
    out: list[str] = []
    in_header = True
    for line in lines:
        if in_header:
            if line.startswith("diff --git "):
                line = f"diff --git a/{rel} b/{rel}\n"
            elif line.startswith("--- "):
                line = "--- /dev/null\n" if left == "/dev/null" else f"--- a/{rel}\n"
            elif line.startswith("+++ "):
                line = "+++ /dev/null\n" if right == "/dev/null" else f"+++ b/{rel}\n"
            elif line.startswith(("@@", "GIT binary patch", "Binary files")):
                in_header = False
        out.append(line)
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


def _author(queue: PatchQueue) -> str:
    name = queue.executor.query(["git", "-C", str(queue.tree), "config", "user.name"])
    email = queue.executor.query(["git", "-C", str(queue.tree), "config", "user.email"])
    return f"{name} <{email}>" if name and email else DEFAULT_AUTHOR


def _header(author: str, message: str) -> str:
    subject, _, body = message.strip().partition("\n")
    text = f"From: {author}\nSubject: [PATCH] {subject.strip()}\n"
    body = body.strip("\n")
    return text + (f"\n{body}\n" if body else "") + "\n---\n"


def _check_series(queue: PatchQueue, scratch: Scratch, series: list[Patch], pin: str,
                  expect: list[str]) -> dict[str, tuple[Digest, Digest]]:
    """Apply ``series`` in order to a pristine copy of the pin's files (in ``scratch``); every
    file of ``expect`` and every file the series touches must end as the tree has it.
    Returns each touched file's digest before and after (the record to write)."""
    touched = queue._touched(series)
    for rel in sorted(set(expect) - set(touched)):
        # an edit the new series does not carry would be lost at the next revert + apply
        raise PatchError(f"micropython/{rel} would not be in the series", "`invoke patch --new NAME` takes it")
    queue._seed_from_commit(scratch, pin, touched)
    before = scratch.digests(touched)
    error = queue._first_failure(scratch, series)
    if error is not None:
        raise PatchError(f"the new series would not apply to the pin: {error.message}; nothing was written",
                         error.hint, error.details)
    after = scratch.digests(touched)
    wrong = [rel for rel in touched if after[rel] != file_digest(queue.tree / rel)]
    if wrong:
        raise PatchError(f"the new series would not reproduce micropython/ ({', '.join(wrong[:5])}): "
                         "nothing was written", "`invoke patch --status`; `git -C micropython diff` shows the tree")
    return {rel: (before[rel], after[rel]) for rel in touched if before[rel] != after[rel]}


def _write(queue: PatchQueue, patch_path: Path, text: str, series_text: str | None,
           record: Record) -> None:
    """Steps 1-4 of the module docstring (``series_text`` None: the series file stays)."""
    series_file = queue.patches_dir / "series"
    data = text.encode()
    atomic_write_bytes(patch_path, data)
    series_bytes = series_text.encode() if series_text is not None else series_file.read_bytes()
    marker = queue.state_dir / AUTHORING
    write_json(marker, {"series": hashlib.sha256(series_bytes).hexdigest(), "patch": patch_path.name,
                        "patch_sha256": hashlib.sha256(data).hexdigest(),
                        "record": queue._record_data(record)})
    fault_point("patch.author")
    if series_text is not None:
        atomic_write_bytes(series_file, series_bytes)
    queue._finish_authoring(interrupted=False)


# -- --new --------------------------------------------------------------------------------

def next_number(patches_dir: Path) -> int:
    """One more than the highest ``NNNN-`` number of a file in ``patches_dir`` (1 when none)."""
    numbers = [int(m.group(1)) for p in patches_dir.glob("*.patch")
               if (m := re.match(r"(\d{4})-", p.name))]
    return max(numbers, default=0) + 1


def new_patch(queue: PatchQueue, pin: str, name: str, message: str | None = None) -> Authored:
    """Write the tree's edits (against pin + series) as a new last patch of the series (see the
    module docstring); returns what it took. Refuses an empty change, a tree not at its pin, and
    a series that is not applied."""
    if not NAME_RE.fullmatch(name) or name.endswith(".patch"):
        raise PatchError(f"'{name}' is not a patch name", "letters, digits, '.', '_' and '-', like gc-comment")
    queue.recover()
    series = read_series(queue.patches_dir)
    existing = [p.name for p in series if re.sub(r"^\d{4}-|\.patch$", "", p.name) == name]
    if existing:
        raise PatchError(f"the series has a patch named {name} already ({existing[0]})",
                         f"`invoke patch --refresh {name}` folds edits into it")
    edited, skipped = _edited(queue, pin)
    if not edited:
        raise PatchError("micropython/ is pin + series: nothing to make a patch of",
                         "edit files in micropython/ first" + (f" (left out: {', '.join(skipped[:3])})"
                                                               if skipped else ""))
    _require_applied(queue, series, pin, edited)
    named = {p.name for p in series}
    # a patch file of this name no series line names: left by a --new stopped before the
    # series was written (see the module docstring); it is taken over
    leftover = sorted(p.name for p in queue.patches_dir.glob(f"[0-9][0-9][0-9][0-9]-{name}.patch")
                      if p.name not in named)
    filename = leftover[-1] if leftover else f"{next_number(queue.patches_dir):04d}-{name}.patch"
    scratch = Scratch.temporary(queue.tree, "mpforge-author-")
    try:
        # the old side: the pin with the series applied, for the edited files
        queue._seed_from_commit(scratch, pin, sorted(set(edited) | set(queue._touched(series))))
        error = queue._first_failure(scratch, series)
        if error is not None:
            raise error
        sections = [_diff(queue, rel, scratch.files / rel, queue.tree / rel) for rel in sorted(edited)]
        text = _header(_author(queue), message or name) + "".join(s for s in sections if s)
        candidate = scratch.root / "candidate" / filename
        candidate.parent.mkdir(parents=True)
        candidate.write_text(text)
        check = Scratch(queue.tree, scratch.root / "check")
        files = _check_series(queue, check, series + [Patch(filename, candidate)], pin, edited)
    finally:
        scratch.remove()
    if queue.executor.dry_run:
        queue.executor.log(f"would write patches/{filename} and append it to patches/series")
        return Authored(filename, sorted(edited), skipped, written=False)
    series_file = queue.patches_dir / "series"
    old = series_file.read_text() if series_file.exists() else ""
    series_text = old + ("" if not old or old.endswith("\n") else "\n") + filename + "\n"
    final = Patch(filename, queue.patches_dir / filename)
    # the record reads each patch's sha256 from its file, after step 1 wrote it
    _write(queue, final.path, text, series_text, Record(series + [final], files, pin))
    return Authored(filename, sorted(edited), skipped)


# -- --refresh ----------------------------------------------------------------------------

def find_patch(series: list[Patch], name: str) -> int:
    """The index in ``series`` of the patch ``name`` names: its file name, with or without
    ``.patch``, its number (``0010``) or its name without the number (``gc-alloc-threshold``)."""
    stem = name.removesuffix(".patch")
    for i, patch in enumerate(series):
        base = patch.name.removesuffix(".patch")
        number, _, rest = base.partition("-")
        if stem in (base, rest) or (stem.isdigit() and number.isdigit() and int(stem) == int(number)):
            return i
    raise PatchError(f"no patch {name} in patches/series", "`invoke patch --status` lists them")


def _sections(text: str) -> tuple[str, dict[str, str], list[str], str]:
    """A git-style patch split into its header, one ``diff --git`` section per path (in order),
    and a trailing signature (``-- `` and what follows)."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("diff --git ")]
    if not starts:
        return text, {}, [], ""
    signature = ""
    end = len(lines)
    for i in range(len(lines) - 1, starts[-1], -1):
        if lines[i].rstrip("\n") == "-- ":
            signature = "".join(lines[i:])
            end = i
            break
    header = "".join(lines[:starts[0]])
    sections: dict[str, str] = {}
    order: list[str] = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else end
        match = re.match(r"diff --git a/(\S+) b/(\S+)", lines[start])
        rel = match.group(2) if match else lines[start].split()[-1][2:]
        sections[rel] = "".join(lines[start:stop])
        order.append(rel)
    return header, sections, order, signature


def refresh_patch(queue: PatchQueue, pin: str, name: str) -> Authored:
    """Fold the tree's edits to the files patch ``name`` touches back into it (see the module
    docstring); refuses an edit that belongs to another patch, or to none, naming it."""
    queue.recover()
    series = read_series(queue.patches_dir)
    index = find_patch(series, name)
    target = series[index]
    if target.strip != 1:
        raise PatchError(f"{target.name} applies with -p{target.strip}: only -p1 patches are refreshed",
                         "edit it by hand")
    edited, skipped = _edited(queue, pin)
    if not edited:
        raise PatchError("micropython/ is pin + series: nothing to refresh", f"edit the files of {target.name} first")
    _require_applied(queue, series, pin, edited)
    owners = {rel: [i for i, p in enumerate(series) if rel in queue._touched_by(p)] for rel in edited}
    for rel in edited:
        mine = owners[rel]
        if not mine:
            raise PatchError(f"micropython/{rel} is in no patch of the series: {target.name} was not changed",
                             "`invoke patch --new NAME` makes a patch of it")
        if index not in mine:
            later = [series[i].name for i in mine if i > index]
            if later:
                raise PatchError(f"micropython/{rel} belongs to {later[0]}, a later patch than "
                                 f"{target.name}: nothing was changed", f"`invoke patch --refresh {later[0]}`")
            raise PatchError(f"micropython/{rel} belongs to {series[mine[-1]].name}, not {target.name}: nothing "
                             "was changed", f"`invoke patch --refresh {series[mine[-1]].name}`")
    header, sections, order, signature = _sections(target.path.read_text())
    if not sections:
        raise PatchError(f"{target.name} has no `diff --git` sections", "only git-style patches are refreshed")
    mine_edited = sorted(edited)
    scratch = Scratch.temporary(queue.tree, "mpforge-refresh-")
    try:
        # the old side: the pin with the patches before NAME, for the files NAME touches
        old_files = queue._touched(series[:index + 1])
        queue._seed_from_commit(scratch, pin, old_files)
        error = queue._first_failure(scratch, series[:index])
        if error is not None:
            raise error
        # the new side: the tree's file, with every later patch touching it taken back out
        level = Scratch(queue.tree, scratch.root / "level")
        level.seed_from_tree(mine_edited)
        for rel in mine_edited:
            for i in reversed([i for i in owners[rel] if i > index]):
                result = _git_apply(queue.executor, level, [series[i]], reverse=True, include=[rel])
                if not result.ok:
                    raise PatchError(f"the edit of micropython/{rel} is inside the hunks of {series[i].name}, a "
                                     f"later patch than {target.name}: nothing was changed",
                                     f"`invoke patch --refresh {series[i].name}`", result.tail())
        for rel in mine_edited:
            section = _diff(queue, rel, scratch.files / rel, level.files / rel)
            if rel not in sections:
                order.append(rel)
            sections[rel] = section
        body = "".join(sections[rel] for rel in order if sections.get(rel))
        if not body:
            raise PatchError(f"the edits take out all of {target.name}", "remove it from patches/series instead")
        text = header + body + signature
        candidate = scratch.root / "candidate" / target.name
        candidate.parent.mkdir(parents=True)
        candidate.write_text(text)
        check = Scratch(queue.tree, scratch.root / "check")
        new_series = [Patch(p.name, candidate, p.strip) if i == index else p for i, p in enumerate(series)]
        files = _check_series(queue, check, new_series, pin, edited)
    finally:
        scratch.remove()
    if queue.executor.dry_run:
        queue.executor.log(f"would rewrite patches/{target.name}")
        return Authored(target.name, mine_edited, skipped, written=False)
    # the record reads each patch's sha256 from its file, after step 1 wrote it
    _write(queue, target.path, text, None, Record(series, files, pin))
    return Authored(target.name, mine_edited, skipped)
