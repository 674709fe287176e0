"""The standard-library package list (:mod:`mpforge.core.debian`) is the model's, for every port."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpforge.core.config import Catalog
from mpforge.core.debian import packages

ROOT = Path(__file__).resolve().parents[2]
CATALOG = Catalog.load(ROOT / "ports", ROOT / "toolchains")


@pytest.mark.parametrize("ports", [[p] for p in sorted(CATALOG.ports)] + [sorted(CATALOG.ports), []])
def test_the_stdlib_list_equals_the_models(ports):
    assert packages(ROOT, ports) == CATALOG.debian_packages(ports)
