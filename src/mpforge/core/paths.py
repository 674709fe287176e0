"""What a path handed to make may hold: the one rule, for the checkout, apps, board folders
and C modules alike."""

from __future__ import annotations

import re
from pathlib import Path

#: characters make (and the 2016 makefiles' unquoted shell recipes) cannot take in a path
_UNSAFE_PATH = re.compile(r"[\s#$:;%'\"\\*?\[\](){}<>|&=]")


def unsafe_path_char(path: Path) -> str | None:
    """The first character of ``path`` make cannot take, said in words (``a space``,
    ``'#'``), or None for a path make handles. The one rule for every path mpforge hands
    make: the checkout's folders, an app, a board folder, a C module."""
    bad = _UNSAFE_PATH.search(str(path))
    if bad is None:
        return None
    return {" ": "a space", "\t": "a tab"}.get(bad.group(0), f"'{bad.group(0)}'")
