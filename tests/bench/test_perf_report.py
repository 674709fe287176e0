"""invoke perf's Markdown, history and plot, on recorded figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mpforge.bench.perf import report as out
from mpforge.bench.perf.compare import Comparison, Counts, judge, report
from mpforge.core.errors import ConfigError, MissingTool


def comparison(head: str, base_count: int, head_count: int) -> Comparison:
    c = Comparison("pin", head, size={"base": {"text": 1000, "data": 10, "bss": 5},
                                      "head": {"text": 1040, "data": 10, "bss": 5}})
    c.workloads.append(judge("dicts", Counts((base_count, base_count), (base_count, base_count + 1)),
                             Counts((head_count, head_count), (head_count,)),
                             top=[{"function": "mp_map_lookup", "delta": head_count - base_count}]))
    return c


def test_markdown_has_one_table_per_comparison_with_sizes() -> None:
    text = out.markdown("unix", [comparison("0001-a.patch", 1_000_000, 1_010_000),
                                 comparison("0002-b.patch", 1_000_000, 1_000_000)])
    assert "| workload | base | head | delta | delta % | band % | verdict | top functions |" in text
    assert "## pin -> 0001-a.patch" in text and "## pin -> 0002-b.patch" in text
    assert "| dicts | 1,000,000 | 1,010,000 | +10,000 | +1.0000 | 0.0001 | regression | " \
           "`mp_map_lookup` +10,000 |" in text
    assert "| dicts | 1,000,000 | 1,000,000 | +0 | +0.0000 | 0.0001 | same |" in text
    assert text.count("Code size: text 1,000 -> 1,040 (+40), data 10 -> 10 (+0), bss 5 -> 5 (+0).") == 2


def test_the_history_grows_by_one_line_per_record_and_plots(tmp_path: Path) -> None:
    history = tmp_path / "bench-results" / "perf-history.jsonl"
    for commit, count in (("aaaaaaaa11", 1_000_000), ("bbbbbbbb22", 1_200_000)):
        data = report({"project_commit": commit}, "unix", [comparison("tree", 1_000_000, count)])
        out.append_history(history, data)
    lines = history.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["run"]["project_commit"] == "bbbbbbbb22"
    labels, series = out.series_of(out.read_history(history))
    assert labels == ["aaaaaaaa\ntree", "bbbbbbbb\ntree"] and series == {"dicts": [1_000_000, 1_200_000]}
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib not installed")
    png = tmp_path / "perf.png"
    out.plot(history, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_a_damaged_history_line_is_named(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text('{"comparisons": [{"workloads": []}]}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2 is not a perf report"):
        out.read_history(history)


def test_plot_without_matplotlib_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingTool) as info:
        out.require_matplotlib()
    assert info.value.one_line() == "perf --plot: matplotlib is not installed (pip install 'mpforge[plot]')"
