"""The perf gate's comparison logic on recorded counts: delta, band, verdicts, --check."""

from __future__ import annotations

import json

import pytest

from mpforge.bench.perf.compare import Comparison, Counts, check_line, judge, report, threshold_pct


def steady(count: int, *others: int) -> Counts:
    """A stable workload: the first layout counted twice alike, then the other layouts."""
    return Counts((count, count), (count, *others))


def test_band_is_the_spread_over_layouts_in_percent() -> None:
    # the set/dict-of-instances figures of the design notes: 2.70% over the pads
    counts = steady(65_212_602, 66_973_342, 65_500_000)
    assert counts.band_pct == pytest.approx(100 * (66_973_342 - 65_212_602) / 65_212_602)
    assert steady(1000).band_pct == 0.0


def test_a_delta_inside_twice_the_band_is_same() -> None:
    base = steady(1_000_000, 1_001_000)  # band 0.1%
    row = judge("dicts", base, steady(1_001_500, 1_002_000))  # +0.15% < 2 x 0.1%
    assert (row.verdict, row.delta_pct, row.band_pct) == ("same", 0.15, 0.1)


def test_a_delta_beyond_twice_the_band_is_a_regression_or_improvement() -> None:
    base = steady(1_000_000, 1_001_000)
    assert judge("w", base, steady(1_002_100, 1_002_100)).verdict == "regression"
    assert judge("w", base, steady(997_900, 997_900)).verdict == "improvement"


def test_the_floor_applies_when_the_band_is_zero() -> None:
    assert threshold_pct(0.0) == 0.05
    base = steady(1_000_000)
    assert judge("loops", base, steady(1_000_500)).verdict == "same"  # exactly 0.05%
    assert judge("loops", base, steady(1_000_501)).verdict == "regression"


def test_counts_that_differ_between_two_runs_are_unstable() -> None:
    shaky = Counts((1_000_000, 1_000_007), (1_000_000,))
    assert judge("w", shaky, steady(1_000_000)).verdict == "unstable"
    assert judge("w", steady(1_000_000), shaky).verdict == "unstable"
    # unstable even when the delta is large: the figure is not exact
    assert judge("w", shaky, steady(2_000_000)).verdict == "unstable"


def test_identical_binaries_give_zero_and_same() -> None:
    row = judge("w", steady(1_000_000, 1_030_000), steady(5, 5), identical=True)
    assert (row.base, row.head, row.delta, row.delta_pct, row.verdict) == (1_000_000, 1_000_000, 0,
                                                                           0.0, "same")


def test_counts_are_checked() -> None:
    with pytest.raises(ValueError):
        Counts((10, 10), (11,))
    with pytest.raises(ValueError):
        Counts((0, 0), (0,))


def test_check_line_names_regressed_and_unstable_workloads_by_patch() -> None:
    base = steady(1_000_000)
    first = Comparison("series before 0010", "0010-gc-alloc-threshold.patch",
                       [judge("dicts", base, steady(1_010_000)), judge("floats", base, base)])
    second = Comparison("0010", "0011-x.patch",
                        [judge("gen", Counts((5, 6), (5,)), base)])
    line = check_line([first, second])
    assert line is not None and "\n" not in line
    assert "dicts (regression +1.000% in 0010-gc-alloc-threshold.patch)" in line
    assert "gen (unstable" in line and "floats" not in line
    assert check_line([Comparison("a", "b", [judge("floats", base, base)])]) is None


def test_the_json_contract() -> None:
    comparison = Comparison("pin + series", "tree", [judge("dicts", steady(100_000), steady(99_000))])
    doc = json.loads(json.dumps(report({"command": "invoke perf"}, "unix", [comparison])))
    assert set(doc) == {"run", "target", "comparisons"}
    (only,) = doc["comparisons"]
    assert (only["base"], only["head"]) == ("pin + series", "tree")
    (row,) = only["workloads"]
    assert set(row) == {"name", "base", "head", "delta_pct", "band_pct", "verdict", "top"}
    assert (row["base"], row["head"], row["delta_pct"], row["verdict"]) == (100_000, 99_000, -1.0,
                                                                           "improvement")
    assert isinstance(row["base"], int) and isinstance(row["band_pct"], float)
