"""--check: a missed target is an error; a run that checks nothing is one too."""

from __future__ import annotations

import pytest

from mpforge.bench.targets import BenchTarget, require
from mpforge.core.errors import TargetMissed


def test_met_targets_pass() -> None:
    require([BenchTarget("a", 0.5, 0.6, True), BenchTarget("b", 1.0, 1.1, True)], "bench-x")


def test_a_missed_target_is_an_error_naming_it() -> None:
    with pytest.raises(TargetMissed, match=r"bench-x: 1 of 2 targets missed: b: 1.3 \(limit 1.1\)"):
        require([BenchTarget("a", 0.5, 0.6, True), BenchTarget("b", 1.3, 1.1, False)], "bench-x")


def test_no_target_covered_is_an_error() -> None:
    with pytest.raises(TargetMissed, match="covers none of its targets"):
        require([], "bench-x")
