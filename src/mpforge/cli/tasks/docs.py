"""``docs``: write (or check) the generated reference pages of the docs site.

The pages (``docs/reference/tasks.md``, ``data.md``, ``environment.md``) are made by
:mod:`mpforge.cli.render.reference` from the tasks' own help, the data files' model and
:mod:`mpforge.core.environment`. The task needs the namespace it documents, so it is made
for one: :func:`reference_task` is called where the namespace is built
(:mod:`mpforge.cli.tasks`), which keeps this module from importing that package.
"""

from __future__ import annotations

from invoke import Collection, Context

from mpforge.cli.framework import MpforgeTask, task
from mpforge.cli.render import reference
from mpforge.core.errors import ConfigError
from mpforge.core.project import find_root


def run(collection: Collection, *, check: bool) -> str:
    """Rewrite the reference pages (or, with ``check``, only compare them): the line to show.
    A stale page under ``check`` is a :class:`ConfigError` naming the files."""
    folder = find_root() / reference.FOLDER
    if check:
        differ = reference.stale(folder, collection)
        if differ:
            raise ConfigError(f"{reference.FOLDER}: {', '.join(differ)} differ from the code",
                              f"run {reference.REWRITE}")
        return f"{reference.FOLDER}: up to date"
    changed = reference.write(folder, collection)
    return f"{reference.FOLDER}: {', '.join(changed)} rewritten" if changed else f"{reference.FOLDER}: up to date"


def reference_task(collection: Collection) -> MpforgeTask:
    """The ``docs`` task for ``collection`` (which it then documents, itself included)."""

    @task(locks=False, help={"check": "only compare: fail if a page differs from the code"})
    def docs(c: Context, check: bool = False) -> None:
        """Write docs/reference/ (tasks, data files, environment) from the code (or --check it)."""
        print(run(collection, check=check))

    return docs
