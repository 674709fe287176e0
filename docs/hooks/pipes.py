"""An MkDocs hook: a pipe in a code span of a table cell, as GitHub and as MkDocs read it.

GitHub's tables split a row at every pipe not escaped, code spans included, so a cell holds
``\\|`` for a pipe of its text (`--boards B\\|all`). Python-Markdown (MkDocs) leaves the pipes
of code spans alone and shows the backslash there. This hook removes that backslash inside
the code spans of table rows before MkDocs reads the page, so the same file reads right in
both places.
"""

from __future__ import annotations

import re
from typing import Any

_CODE = re.compile(r"`[^`\n]*`")


def unescape_pipes_in_code(markdown: str) -> str:
    """``markdown`` with ``\\|`` turned into ``|`` inside the code spans of table rows."""
    def row(line: str) -> str:
        if not line.lstrip().startswith("|"):
            return line
        return _CODE.sub(lambda m: m.group(0).replace("\\|", "|"), line)
    return "\n".join(row(line) for line in markdown.split("\n"))


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs' event: the page's Markdown before it is rendered."""
    return unescape_pipes_in_code(markdown)
