"""``schemas``: write (or check) the JSON Schemas of ``schemas/`` from the data files' model.

The schemas are written by :mod:`mpforge.core.model.schemas`; this is the command around
it, as a task (``invoke schemas [--check]``) and as
``python -m mpforge.cli.tasks.schemas --write | --check [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from invoke import Context

from mpforge.cli.framework import task
from mpforge.core.errors import ConfigError, MpforgeError
from mpforge.core.model.schemas import FOLDER, stale, write
from mpforge.core.project import find_root

#: the command that rewrites them, as the messages name it
REWRITE = "invoke schemas"


def run(folder: Path, *, check: bool) -> str:
    """Rewrite the schemas of ``folder`` (or, with ``check``, only compare them): the line to
    show. A stale schema under ``check`` is a :class:`ConfigError` naming the files."""
    if check:
        differ = stale(folder)
        if differ:
            raise ConfigError(f"{folder}: {', '.join(differ)} differ from the model", f"run {REWRITE}")
        return f"{folder}: up to date"
    changed = write(folder)
    return f"{folder}: {', '.join(changed)} rewritten" if changed else f"{folder}: up to date"


@task(locks=False, help={"check": "only compare: fail if a schema differs from the model"})
def schemas(c: Context, check: bool = False) -> None:
    """Write the JSON Schemas of schemas/ from the data files' model (or --check them)."""
    print(run(find_root() / FOLDER, check=check))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mpforge.cli.tasks.schemas",
                                     description="Write or check the JSON Schemas of the data files.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the schemas that differ from the model")
    action.add_argument("--check", action="store_true", help="exit 1 if any schema differs from the model")
    parser.add_argument("--dir", type=Path, help="the schemas' folder (default: schemas/ of the checkout)")
    args = parser.parse_args(argv)
    try:
        print(run(args.dir if args.dir is not None else find_root() / FOLDER, check=args.check))
    except MpforgeError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
