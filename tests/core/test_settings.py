"""``.mpforge/settings.json`` with values of the wrong type: one warning line each, never silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mpforge.core import settings


def write(root: Path, data: object) -> Path:
    path = settings.settings_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(("value", "got"), [
    (5, "got the number 5"),
    (True, "got the boolean true"),
    (None, "got null"),
    (["a"], 'got the list ["a"]'),
    ({"url": "x"}, 'got the object {"url": "x"}'),
])
def test_a_wrong_typed_mirror_is_one_line_naming_file_key_expected_and_got(tmp_path, value, got):
    path = write(tmp_path, {"mirror": value})
    said: list[str] = []
    assert settings.load(tmp_path, said.append) == {}
    assert len(said) == 1, said
    line = said[0]
    assert "\n" not in line
    assert str(path) in line and "'mirror'" in line and "should be a string" in line and got in line, line


def test_good_values_are_kept_next_to_a_wrong_one(tmp_path):
    write(tmp_path, {"mirror": "https://m.example/gh", "other": 3})
    said: list[str] = []
    assert settings.load(tmp_path, said.append) == {"mirror": "https://m.example/gh"}
    assert len(said) == 1 and "'other'" in said[0] and "got the number 3" in said[0]


def test_a_wrong_typed_mirror_is_not_used_as_the_remembered_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv("MPFORGE_MIRROR", raising=False)
    write(tmp_path, {"mirror": 5})
    said: list[str] = []
    assert settings.resolve_mirror(tmp_path, None, warn=said.append) == (None, "none")
    assert len(said) == 1 and "'mirror'" in said[0]


def test_the_next_save_replaces_the_wrong_typed_value(tmp_path):
    write(tmp_path, {"mirror": 5})
    settings.save(tmp_path, mirror="https://again.example/gh")
    said: list[str] = []
    assert settings.load(tmp_path, said.append) == {"mirror": "https://again.example/gh"} and not said
