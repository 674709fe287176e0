"""Checkout paths as make gets them: relative to the port's make folder, prefix maps kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpforge.firmware.make_paths import from_make_dir, hash_dir_mapped

MAKE_DIR = Path("/co/micropython/stmhal")
ROOTS = [Path("/co"), Path("/co/micropython"), Path("/co/build")]


@pytest.mark.parametrize("value, made", [
    ("/co/build/stmhal-PYBV10/obj", "../../build/stmhal-PYBV10/obj"),
    ("-I/co/build/deplibs/x/include -L/co/build/deplibs/x/lib -lx",
     "-I../../build/deplibs/x/include -L../../build/deplibs/x/lib -lx"),
    ("CFLAGS_EXTRA=-I/co/build/p/include", "CFLAGS_EXTRA=-I../../build/p/include"),
    ("-Wl,-Map=/co/build/m.map,--cref", "-Wl,-Map=../../build/m.map,--cref"),
    ("/co/dist/mpy-cross/mpy-cross", "../../dist/mpy-cross/mpy-cross"),
    ("/co/micropython/py", "../py"),
])
def test_checkout_paths_become_relative_to_the_make_folder(value, made):
    assert from_make_dir(value, MAKE_DIR, ROOTS) == made


@pytest.mark.parametrize("value", [
    "-ffile-prefix-map=/co=.", "-fdebug-prefix-map=/co=.",  # the compiler maps what it sees
    "/usr/include/newlib", "-isystem /opt/sdk/include",  # outside the checkout
    "/cow/build/x", "/x/co/build/y",  # another folder that only starts alike, or holds it deeper
])
def test_what_must_stay_absolute_stays(value):
    assert from_make_dir(value, MAKE_DIR, ROOTS) == value


def test_hash_dir_is_off_only_where_a_prefix_map_covers_the_make_folder():
    assert hash_dir_mapped(["-g", "-ffile-prefix-map=/co=."], MAKE_DIR)
    assert hash_dir_mapped(["-fdebug-prefix-map=/co/micropython=mp"], MAKE_DIR)
    assert not hash_dir_mapped(["-g", "-ffile-prefix-map=/elsewhere=."], MAKE_DIR)
    assert not hash_dir_mapped(["-fmacro-prefix-map=/co=."], MAKE_DIR)  # debug info not mapped
    assert not hash_dir_mapped(["-g"], MAKE_DIR)
