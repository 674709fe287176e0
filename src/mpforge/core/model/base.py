"""What every table of the model is made of: strict scalars and one configuration.

The tables are pydantic dataclasses with these rules (:data:`TABLE`):

- an unknown key is an error (``extra="forbid"``): a typo is never ignored;
- scalars are strict (:data:`Str`, :data:`Int`, :data:`Bool`): ``runner = 12`` is no
  string, ``limit = "big"`` no integer, ``in_tree = 1`` no boolean; containers are
  not coerced from strings either (``post = "rm"`` is no list);
- the docstring under a field is its doc (``use_attribute_docstrings``): it is the
  ``description`` of the key in the JSON Schema an editor shows.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, StringConstraints

#: a string, and only a string
Str = StrictStr
#: an integer, and only an integer (not a string of digits, not a float, not a boolean)
Int = StrictInt
#: ``true`` or ``false``
Bool = StrictBool
#: an integer >= 0 (a size, a limit)
Count = Annotated[StrictInt, Field(ge=0)]
#: a command: a non-empty list of strings (the program, then its arguments)
Argv = Annotated[list[StrictStr], Field(min_length=1)]
#: a name shown on one line: no newline, no control character (C0 or C1: U+0085 is a newline to
#: ``str.splitlines``), no Unicode line or paragraph separator (U+2028, U+2029)
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]+$"
OneLine = Annotated[str, StringConstraints(strict=True, pattern=PRINTABLE_PATTERN)]

#: the configuration of every table: ``@dataclass(frozen=True, config=TABLE)`` (pydantic's
#: dataclass, written out at each class so that type checkers see a dataclass)
TABLE = ConfigDict(extra="forbid", use_attribute_docstrings=True)
