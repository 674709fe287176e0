"""Checkout paths as make sees them: relative to the port's make folder.

**Why.** ccache keys an object on its compile command line. When make gets the build
folder as ``BUILD=/home/ann/mpforge/build/stmhal-PYBV10/obj``, every ``-I$(BUILD)/genhdr``
carries the checkout's absolute path, and a second checkout elsewhere (another developer,
a CI runner with another workspace) misses every object a shared cache
(:mod:`mpforge.firmware.ccache_remote`) holds. Given as ``BUILD=../../build/stmhal-PYBV10/obj``
instead, the command line is the same in every checkout.

**Why not ccache's ``base_dir``.** ``base_dir`` rewrites absolute paths to relative ones
*inside ccache*: the compiler then writes dependency files naming relative targets while
make's targets stay absolute, and an edited header rebuilds nothing. Here make itself gets
the relative paths, so the dependency files (``-MD``) name the very targets make builds.

**What stays absolute.**

- paths outside the checkout's folders (a toolchain in ``/opt``, ``/usr/include/newlib``);
- the compiler's ``-ffile-prefix-map=OLD=NEW`` / ``-fdebug-prefix-map=...``: the compiler
  sees absolute paths (its working folder, for one) and maps them; ccache leaves those
  flags out of its key and maps its working folder with them;
- the variables a port's makefile puts *below* ``$(BUILD)/`` (``$(BUILD)/$(FROZEN_MPY_DIR)/x.mpy``,
  ``$(addprefix $(BUILD)/,$(EXTRA_MOD_SRC:.c=.o))``, a ``BOARD_DIR``'s ``*.c``): a relative
  path there would start with ``..`` and send objects out of the build folder
  (:func:`mpforge.firmware.target.make_argvs` names them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: compiler flags whose paths must stay absolute (the compiler maps what it sees)
_PREFIX_MAP = re.compile(r"^-f(?:debug|file|macro|profile)-prefix-map=")

#: characters that end a path inside a make word (``-Wl,-Map=X,--cref``, ``A:B``)
_PATH_END = r"[\s,:;=\"']"


def from_make_dir(value: str, make_dir: Path, roots: list[Path]) -> str:
    """``value`` with every absolute path under one of ``roots`` made relative to ``make_dir``.

    ``value`` is a make variable's value or a make target (one or more words). A path is
    rewritten wherever it starts in a word (``/r/build/x``, ``-I/r/build/x``,
    ``CFLAGS_EXTRA=-I/r/x``), except in the compiler's prefix maps (see the module
    docstring). ``roots`` are the checkout's folders (the checkout, the tree, the build and
    dist folders); the longest that matches wins.

    >>> from_make_dir("-I/r/build/lib/include -lz", Path("/r/micropython/stmhal"), [Path("/r")])
    '-I../../build/lib/include -lz'
    """
    ordered = sorted({str(r) for r in roots}, key=len, reverse=True)
    pattern = re.compile("(?:" + "|".join(re.escape(r) for r in ordered) + rf")(?=/|{_PATH_END}|$)"
                         rf"[^\s,:;=\"']*")
    words = re.split(r"(\s+)", value)

    def relative(match: re.Match[str]) -> str:
        start, word = match.start(), match.string
        # at the word's start, after "=", "," or ":", or after a one-letter flag (-I, -L, -T);
        # anywhere else it is part of another path (/x/r/build): left as it is
        if start and word[start - 1] not in "=,:" and not _after_flag(word, start):
            return match.group(0)
        return os.path.relpath(match.group(0), make_dir)

    return "".join(word if _PREFIX_MAP.match(word) or not word.strip() else pattern.sub(relative, word)
                   for word in words)


def _after_flag(word: str, start: int) -> bool:
    """Whether ``word[start:]`` follows a one-letter flag (``-I``, ``-L``, ``-T``) that
    itself starts the word or follows ``=``/``,`` (``CFLAGS_EXTRA=-I/path``)."""
    return start >= 2 and word[start - 2] == "-" and word[start - 1].isalpha() \
        and (start == 2 or word[start - 3] in "=,")


def hash_dir_mapped(flags: list[str], make_dir: Path) -> bool:
    """Whether a prefix map among the compiler ``flags`` covers ``make_dir``, the compiler's
    working folder: then the debug information names the mapped folder, and ccache need not
    hash the working folder (``hash_dir`` off, ``CCACHE_NOHASHDIR``) for it to be right."""
    for flag in flags:
        if _PREFIX_MAP.match(flag) and not flag.startswith("-fmacro-prefix-map="):
            old = flag.split("=", 1)[1].rpartition("=")[0]
            if old and make_dir.is_relative_to(old):
                return True
    return False
