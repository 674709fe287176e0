"""The manifest's hashes and the version string the firmware shows (:mod:`mpforge.firmware.manifest`)."""

from __future__ import annotations

from mpforge.firmware.manifest import expected_version, series_id, version_string, version_suffix

SERIES = [{"name": "0001-a.patch", "sha256": "1" * 64}, {"name": "0002-b.patch", "sha256": "2" * 64}]
DESCRIBE = "v1.8.2-20-g04c27e5eaa-dirty"


def test_the_series_id_is_short_stable_and_changes_with_any_patch():
    sid = series_id(SERIES)
    assert len(sid) == 8 and int(sid, 16) >= 0
    assert series_id([dict(p) for p in SERIES]) == sid  # the same series anywhere: the same id
    edited = [SERIES[0], {"name": "0002-b.patch", "sha256": "3" * 64}]
    renamed = [SERIES[0], {"name": "0002-c.patch", "sha256": "2" * 64}]
    others = {series_id(edited), series_id(renamed), series_id(SERIES[::-1]), series_id(SERIES[:1])}
    assert sid not in others and len(others) == 4  # edit, rename, reorder, drop: each its own id
    assert series_id([]) == "none"


def test_the_version_is_the_pin_without_dirty_plus_the_series_and_dirty_only_when_it_differs():
    sid = series_id(SERIES)
    assert version_string(DESCRIBE, SERIES, True) == f"v1.8.2-20-g04c27e5eaa+s.{sid}"
    assert version_string(DESCRIBE, SERIES, False) == f"v1.8.2-20-g04c27e5eaa+s.{sid}.dirty"
    assert version_string("v1.8.2-20-g04c27e5eaa", SERIES, True) == f"v1.8.2-20-g04c27e5eaa+s.{sid}"
    # what make gets appends to git's description (the tree's makeversionhdr.py drops "-dirty")
    assert version_suffix(SERIES, False) == f"+s.{sid}.dirty"
    assert version_string(DESCRIBE, SERIES, True).endswith(version_suffix(SERIES, True))


def test_expected_version_reads_the_manifest_or_computes_it_for_an_older_one():
    recorded = {"version": "v1.8.2-20-g04c27e5eaa+s.0badc0de", "tree": {"describe": DESCRIBE},
                "patches": SERIES}
    assert expected_version(recorded) == "v1.8.2-20-g04c27e5eaa+s.0badc0de"
    older = {"tree": {"describe": DESCRIBE, "is_pin_plus_series": False}, "patches": SERIES}
    assert expected_version(older) == version_string(DESCRIBE, SERIES, False)
