"""The tree fingerprint: is ``micropython/`` exactly its pin plus the patch series?

Every build manifest records it (:func:`mpforge.tree.prepare.prepare_tree`
computes it once per command): a digest of the tree as it is, the same digest
for "pin + series", and where the two differ. A tree that differs is built as
it is and reported, never refused.

Only what differs from the pin is hashed: ``git diff`` against the pin and
``git ls-files --others`` (untracked files) name those files, the series'
reference digests (:meth:`mpforge.tree.record.RecordedTree.reference`, computed
on the pin) say what they should be, and each initialised submodule adds its
checked-out commit and a digest of its local changes (a submodule that is a
symbolic link, as in a variant tree, is another tree's and not counted here).
That keeps it quick on the real tree.

A git query that fails is an error (:class:`~mpforge.core.errors.CommandFailed`),
never an empty answer: a failing ``git diff`` read as "nothing changed" would
let a manifest claim pin + series for a tree nobody looked at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mpforge.tree.files import Digest, file_digest
from mpforge.tree.record import RecordedTree
from mpforge.tree.series import read_series


@dataclass
class TreeFingerprint:
    """The tree's content against "pin + series" (recorded in every build manifest)."""

    pin: str
    digest: str  # sha256 over everything in the tree that differs from the pin
    expected: str  # the same digest for the pin with the series applied
    differing: list[str] = field(default_factory=list)  # where the tree is not pin + series

    @property
    def matches(self) -> bool:
        return self.digest == self.expected and not self.differing


def tree_fingerprint(queue: RecordedTree, pin: str) -> TreeFingerprint:
    """``queue.tree``'s content against ``pin`` + ``queue``'s series: a digest of each, and
    where they differ (see the module docstring). Raises CommandFailed when git cannot say."""
    executor, tree = queue.executor, queue.tree
    series = read_series(queue.patches_dir)
    expected_files = (queue.reference(series, pin) or {}) if series else {}
    git = ["git", "-C", str(tree)]

    def names(*args: str) -> set[str]:
        """The NUL-separated names a git query prints; a failing query raises."""
        out = executor.run(git + list(args), mutates=False, what=f"git {args[0]}").stdout
        return set(filter(None, out.split("\0")))

    changed = names("diff", "--name-only", "-z", "--no-renames", "--ignore-submodules=all", pin)
    changed |= names("ls-files", "--others", "--exclude-standard", "-z")
    # "pin" stands for "as at the pin"; everything else is a content digest
    actual: dict[str, Digest] = {}
    expected: dict[str, Digest] = {}
    differing: list[str] = []
    for rel in sorted(changed | set(expected_files)):
        actual[rel] = file_digest(tree / rel) if rel in changed else "pin"
        expected[rel] = expected_files[rel][1] if rel in expected_files else "pin"
        if actual[rel] != expected[rel]:
            differing.append(rel)
    for line in _submodule_status(queue):
        fields = line[1:].split()
        if len(fields) < 2 or line.startswith("-"):
            continue  # not initialised: not part of what is built
        sha, rel = fields[0], fields[1]
        pinned = executor.run(git + ["ls-tree", pin, "--", rel], mutates=False,
                              what="git ls-tree").stdout.split()
        pinned_sha = pinned[2] if len(pinned) >= 3 else ""
        local = executor.run(["git", "-C", str(tree / rel), "diff", "HEAD", "--binary", "--no-ext-diff"],
                             mutates=False, what="git diff").stdout.strip()
        local_digest = hashlib.sha256(local.encode()).hexdigest() if local else ""
        actual[rel] = f"{sha}+{local_digest}"
        expected[rel] = f"{pinned_sha}+"
        if actual[rel] != expected[rel]:
            differing.append(f"{rel} (submodule: " + (f"at {sha[:10]}, pinned {pinned_sha[:10]}"
                                                      if sha != pinned_sha else "local changes") + ")")

    def digest(values: dict[str, Digest]) -> str:
        h = hashlib.sha256(pin.encode())
        for rel in sorted(values):
            if values[rel] != "pin":
                h.update(f"\0{rel}\0{values[rel]}".encode())
        return h.hexdigest()

    return TreeFingerprint(pin, digest(actual), digest(expected), differing)


def _submodule_status(queue: RecordedTree) -> list[str]:
    """``git submodule status`` of the tree's submodules that are not symbolic links.

    A variant tree (:mod:`mpforge.tree.variants`) links its submodules to the main
    tree's checkouts, which git refuses to describe ("expected submodule path ... not
    to be a symbolic link"); they are the main tree's, and its fingerprint covers them.
    Any other failure raises.
    """
    git = ["git", "-C", str(queue.tree)]
    index = queue.executor.run(git + ["ls-files", "--stage", "-z"], mutates=False,
                               what="git ls-files").stdout.split("\0")
    gitlinks = [entry.split("\t", 1)[1] for entry in index if entry.startswith("160000 ") and "\t" in entry]
    real = [rel for rel in gitlinks if not (queue.tree / rel).is_symlink()]
    if not real:
        return []
    # the raw output: stripping would eat the first line's status column
    return queue.executor.run(git + ["submodule", "status", "--", *real], mutates=False,
                              what="git submodule status").stdout.splitlines()
