"""The options every task shares, merged from the four places they can be set.

``mirror``, ``jobs``, ``ccache``, ``ccache_remote``, ``verbose`` and ``debug`` can be given on a task's
command line, in the environment, or in invoke's configuration. :func:`shared_options`
merges them, first wins:

1. the task's flag, when given: ``--verbose`` and ``--debug`` can only turn on,
   ``--no-ccache`` only off, ``--ccache-remote URL`` names the shared compile cache;
   ``--jobs 0`` (the default) and no ``--mirror`` mean "not given";
2. the environment: ``MPFORGE_MIRROR``, ``MPFORGE_JOBS``, ``MPFORGE_CCACHE``,
   ``MPFORGE_CCACHE_REMOTE``,
   ``MPFORGE_VERBOSE``, ``MPFORGE_DEBUG`` (parsed by :mod:`mpforge.core.environment`);
3. invoke's configuration, section ``mpforge:``: ``invoke.yaml`` at the checkout's root
   (the ``mpforge`` console script loads it too, see :mod:`mpforge.cli.main`), a user's
   ``~/.invoke.yaml``, ``/etc/invoke.yaml`` or ``invoke -f FILE`` (invoke merges those
   itself). A key it does not know is refused by name, with the nearest one;
4. the built-in default: jobs = the CPU count, ccache on, no ccache remote, verbose and debug off. For
   ``mirror``, the mirror this checkout remembers (``.mpforge/settings.json``, see
   :mod:`mpforge.core.settings`) comes first, then none.

``--mirror BASE`` is remembered for the checkout and ``--mirror none`` forgets it, as
before (except under ``--dry-run``, which changes nothing).

The tasks do not call :func:`shared_options` themselves: their wrapper
(:func:`mpforge.cli.tasks.reports_errors`) does, once, under the checkout's lock, with
the task's own parameters (only those it has; the others come from the environment,
the configuration or the default). It replaces those parameters by the resolved values,
shows ``warnings`` (the environment's unknown ``MPFORGE_*`` variables), and hands
``jobs``, ``ccache`` and ``ccache_remote`` to every build the task makes (``test``, ``deploy`` and ``ci``
build too). ``origin(name)`` says where a value came from and :meth:`SharedOptions.describe`
gives one line per option (``invoke doctor`` shows them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke import Context

from mpforge.core.environment import environment
from mpforge.core.errors import ConfigError
from mpforge.core.model.settings import SECTION, read_section
from mpforge.core.project import find_root
from mpforge.core.settings import resolve_mirror
from mpforge.firmware.ccache_remote import check_remote, shown
from mpforge.tree.git import normalise_mirror

#: What the errors about the section call its file (invoke merges several; this is ours).
CONFIG_FILE = Path("invoke.yaml")

#: Where a value came from, as :meth:`SharedOptions.origin` says it.
FROM_CONFIG = f"invoke config {SECTION}.{{key}}"
FROM_DEFAULT = "default"


@dataclass(frozen=True)
class SharedOptions:
    """The merged shared options of one task run, and where each value came from."""

    #: the mirror every clone goes through, normalised (absolute folder, no trailing
    #: slash); None: clones go to GitHub
    mirror: str | None
    #: parallel jobs, at least 1
    jobs: int
    #: compile through ccache when it is installed
    ccache: bool
    #: ccache's remote storage (checked, see :mod:`mpforge.firmware.ccache_remote`); None: local only
    ccache_remote: str | None
    #: show every command run
    verbose: bool
    #: tracebacks on errors
    debug: bool
    #: change nothing (only ever from the task's flag)
    dry_run: bool
    #: option name -> its source: a flag (``--jobs``), a variable (``MPFORGE_JOBS``),
    #: ``invoke config mpforge.jobs``, ``remembered in ...`` (mirror) or ``default``
    origins: Mapping[str, str] = field(default_factory=dict)
    #: lines for the task to show: ``MPFORGE_*`` variables mpforge does not read
    warnings: tuple[str, ...] = ()

    def origin(self, name: str) -> str:
        """Where option ``name`` (``mirror``, ``jobs``, ...) got its value."""
        return self.origins[name]

    def describe(self) -> list[str]:
        """One ``name: value (origin)`` line per option, for ``invoke doctor`` and ``-v``."""
        values = {"mirror": self.mirror or "none", "jobs": self.jobs, "ccache": _on_off(self.ccache),
                  "ccache_remote": shown(self.ccache_remote) if self.ccache_remote else "none",
                  "verbose": _on_off(self.verbose), "debug": _on_off(self.debug),
                  "dry_run": _on_off(self.dry_run)}
        return [f"{name}: {value} ({self.origins[name]})" for name, value in values.items()]


def shared_options(c: Context, *, verbose: bool = False, debug: bool = False, dry_run: bool = False,
                   mirror: str | None = None, jobs: int = 0, ccache: bool = True,
                   ccache_remote: str | None = None) -> SharedOptions:
    """Merge a task's shared flags with the environment, invoke's configuration and the defaults.

    The keyword arguments are the task's own parameters, at their defaults when not given
    on the command line (see the module docstring for the order). Raises ConfigError for a
    malformed ``MPFORGE_*`` value or an unknown or mistyped key under ``mpforge:``.
    An explicit ``mirror`` is remembered for the checkout (``none`` forgets it) unless
    ``dry_run``.
    """
    env = environment()
    configured = configured_options(c)
    origins: dict[str, str] = {"dry_run": "--dry-run" if dry_run else FROM_DEFAULT}

    def pick(name: str, flag_given: bool, flag_value: Any, flag_name: str, env_value: Any,
             default: Any) -> Any:
        if flag_given:
            origins[name] = flag_name
            return flag_value
        if env_value is not None:
            origins[name] = f"MPFORGE_{name.upper()}"
            return env_value
        if configured.get(name) is not None:
            origins[name] = FROM_CONFIG.format(key=name)
            return configured[name]
        origins[name] = FROM_DEFAULT
        return default

    chosen_jobs = pick("jobs", jobs > 0, jobs, "--jobs", env.jobs, os.cpu_count() or 1)
    chosen_ccache = pick("ccache", not ccache, False, "--no-ccache", env.ccache, True)
    chosen_remote = pick("ccache_remote", bool(ccache_remote), ccache_remote, "--ccache-remote",
                         env.ccache_remote, None)
    if chosen_remote is not None:  # a malformed URL: one line, before anything is built
        chosen_remote = check_remote(chosen_remote, origins["ccache_remote"])
    chosen_verbose = pick("verbose", verbose, True, "--verbose", env.verbose, False)
    chosen_debug = pick("debug", debug, True, "--debug", env.debug, False)

    try:
        root: Path | None = find_root()
    except ConfigError:
        root = None  # outside a checkout: nothing remembered
    said: list[str] = []  # a damaged settings.json, in one line
    chosen_mirror, origins["mirror"] = resolve_mirror(root, mirror, configured.get("mirror"), env=env,
                                                      remember=not dry_run, warn=said.append)
    return SharedOptions(mirror=normalise_mirror(chosen_mirror), jobs=chosen_jobs, ccache=chosen_ccache,
                         ccache_remote=chosen_remote,
                         verbose=chosen_verbose, debug=chosen_debug, dry_run=dry_run, origins=origins,
                         warnings=(*env.warnings, *said))


def configured_options(c: Context) -> dict[str, Any]:
    """The ``mpforge:`` section of the context's invoke configuration, checked against its
    model (:class:`mpforge.core.model.settings.MpforgeSettings`); ``jobs: 0`` and
    ``mirror: ~`` (the built-in defaults) count as not set and are left out."""
    return read_section(c.config.get(SECTION), str(CONFIG_FILE))


def _on_off(value: bool) -> str:
    return "on" if value else "off"
