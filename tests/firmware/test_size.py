"""invoke size: sizes from manifests, baselines, JSON and Markdown."""

from __future__ import annotations

import json

import pytest

from mpforge.cli.render.sizes import columns, table_rows, to_json, to_markdown
from mpforge.core.errors import ConfigError, MpforgeError
from mpforge.firmware.size import compare, current_sizes, load_baseline


def manifest(dist, target, **size):
    (dist / target).mkdir(parents=True)
    (dist / target / "manifest.json").write_text(json.dumps({"target": target, "size": size}))


def test_sizes_and_deltas_against_a_baseline(tmp_path):
    dist = tmp_path / "dist"
    manifest(dist, "stmhal-PYBV10", text=300256, data=336, bss=27956)
    manifest(dist, "esp8266", text=510288, data=1044, bss=55872, iram=32452, iram_limit=32768)
    manifest(dist, "unix", text=445312, data=49272, bss=2080)
    base_file = tmp_path / "base.json"
    base_file.write_text(json.dumps({"targets": {"stmhal-PYBV10": {"text": 300000, "data": 336,
                                                                  "bss": 28000},
                                                 "unix": {"text": 445312, "data": 49272, "bss": 2080}}}))
    rows = compare(current_sizes(dist), load_baseline(base_file))
    table = {r[0]: r for r in table_rows(rows, True)}
    assert table["stmhal-PYBV10"][1:7] == ("300256", "+256", "336", "0", "27956", "-44")
    assert table["esp8266"][2] == "new"
    assert table["esp8266"][-1] == "iram 32452/32768 (316 left)"
    assert columns(True)[:3] == ["target", "text", "Δtext"]
    data = to_json(rows)
    assert data["delta"]["stmhal-PYBV10"] == {"text": 256, "data": 0, "bss": -44}
    assert "esp8266" not in data["delta"]
    md = to_markdown(rows, True).splitlines()
    assert md[0].startswith("| target | text | Δtext |")
    assert md[1].startswith("|---|")
    assert "| stmhal-PYBV10 | 300256 | +256 |" in md[3] + md[2] + md[4]


def test_baseline_errors_say_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match="no baseline at .*save one with"):
        load_baseline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="is not a size baseline"):
        load_baseline(bad)


def test_nothing_built_yet(tmp_path):
    with pytest.raises(MpforgeError, match="no built targets"):
        compare(current_sizes(tmp_path / "dist"), None)
