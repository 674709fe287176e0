"""The tree fingerprint: the tree's content against pin + series, as the manifests record it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import git
from mpforge.core.errors import CommandFailed
from mpforge.core.executor import Executor, Result
from mpforge.tree.fingerprint import tree_fingerprint
from mpforge.tree.patches import PatchQueue

GC_C = "py/gc.c"


@dataclass
class FailingGit(Executor):
    """Runs commands, except that ``git -C TREE <failing...>`` gets an option git refuses
    (exit status 129), as a git that cannot answer would."""

    failing: tuple[str, ...] = ()

    def run(self, argv: Sequence[str | os.PathLike[str]], **kwargs: Any) -> Result:
        args = [os.fspath(a) for a in argv]
        if args[:2] == ["git", "-C"] and tuple(args[3:3 + len(self.failing)]) == self.failing:
            args.insert(4, "--no-such-option")
        return super().run(args, **kwargs)


def test_the_fingerprint_compares_the_tree_with_pin_plus_series(patches, tree):
    q = PatchQueue(patches, tree, Executor())
    pin = git(tree, "rev-parse", "HEAD")
    bare = tree_fingerprint(q, pin)
    assert not bare.matches and sorted(bare.differing) == ["py/gc.c", "py/gc.h"]  # unpatched
    q.apply()
    applied = tree_fingerprint(q, pin)
    assert applied.matches and applied.differing == [] and applied.digest == applied.expected
    (tree / "NOTES").write_text("untracked")
    src = tree / GC_C
    src.write_text(src.read_text() + "/* mine */\n")
    edited = tree_fingerprint(q, pin)
    assert not edited.matches and edited.differing == ["NOTES", "py/gc.c"]
    assert edited.expected == applied.expected and edited.digest != applied.digest


@pytest.mark.parametrize("query", [("diff", "--name-only"), ("ls-files", "--others")], ids=["diff", "ls-files"])
def test_a_failing_git_query_is_an_error_never_an_unchanged_tree(patches, tree, query):
    (patches / "series").write_text("")  # no series: pin + series is the pin itself
    pin = git(tree, "rev-parse", "HEAD")
    (tree / "NOTES").write_text("untracked")  # what ls-files finds
    src = tree / GC_C
    src.write_text(src.read_text() + "/* mine */\n")  # what diff finds
    assert tree_fingerprint(PatchQueue(patches, tree, Executor()), pin).differing == ["NOTES", "py/gc.c"]
    blind = PatchQueue(patches, tree, FailingGit(failing=query))
    with pytest.raises(CommandFailed, match=f"git {query[0]} exited with status 129: .* {query[1]}"):
        tree_fingerprint(blind, pin)
