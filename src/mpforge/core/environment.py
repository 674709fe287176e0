"""Every environment variable mpforge reads, read in one place and at call time.

The library asks :func:`environment` whenever it needs a setting; nothing is read at
import time, so a test's ``monkeypatch.setenv`` (or a CI job's ``export``) is seen by the
next call. Values are parsed here, once: numbers of seconds are floats, switches are
booleans, folders are paths. A value that does not parse is a
:class:`~mpforge.core.errors.ConfigError` naming the variable. A variable that starts
with ``MPFORGE_`` but is none of these (a typo: ``MPFORGE_JOB``) is not an error; it is
returned in :attr:`Environment.warnings` for the command line to show.

An empty value counts as unset, except for ``MPFORGE_MIRROR``, where "set but empty"
means "no mirror" (and unset means "ask the next source").

==========================  ==================================================  ==========================
variable                    meaning                                             default (unset)
==========================  ==================================================  ==========================
``MPFORGE_ROOT``            the mpforge checkout to work on                     the nearest folder at or
                                                                                above the current one
                                                                                with ``ports/`` and
                                                                                ``toolchains/``
``MPFORGE_TREE``            the MicroPython tree to use instead of the          ``<root>/micropython``
                            checkout's ``micropython/`` submodule
``MPFORGE_MIRROR``          base URL or folder laid out like GitHub that every  unset: ``mpforge.mirror``
                            clone goes through; empty: no mirror, and the       of invoke's configuration,
                            remembered one is ignored (not forgotten)           then the remembered mirror
``MPFORGE_JOBS``            parallel jobs, as ``--jobs`` (a whole number >= 1)  ``mpforge.jobs``, then the
                                                                                CPU count
``MPFORGE_CCACHE``          switch: compile through ccache when installed       ``mpforge.ccache``, then on
``MPFORGE_CCACHE_REMOTE``   ccache's remote storage URL(s) shared by a team     ``mpforge.ccache_remote``,
                            (``redis://HOST``, ``http://HOST/PATH``, with       then none (local cache
                            ``|read-only`` ...): see                            only)
                            :mod:`mpforge.firmware.ccache_remote`
``MPFORGE_VERBOSE``         switch: show every command run, as ``--verbose``    ``mpforge.verbose``, then off
``MPFORGE_DEBUG``           switch: tracebacks on errors, as ``--debug``        ``mpforge.debug``, then off
``MPFORGE_SILENCE``         seconds a board may say nothing while mpforge       10
                            waits for its answer
``MPFORGE_TEST_TIMEOUT``    seconds one test may run on a board before it is    30
                            interrupted and counted as a crash
``MPFORGE_DFU_WAIT``        seconds ``invoke deploy`` waits for the board's     15
                            DFU device to appear
``MPFORGE_PORT_WAIT``       seconds ``invoke deploy`` waits for the board's     20
                            serial port to come back after flashing
``MPFORGE_SYSFS``           the folder that stands in for ``/sys`` when a       ``/sys``
                            serial port is placed on the USB bus (tests)
``MPFORGE_FAULT``           ``NAME[@N][:SIGNAL]``: the process sends itself     none
                            SIGNAL (default KILL) the Nth time (default 1)
                            it passes fault point NAME, one of
                            :data:`FAULT_POINTS` (tests; see
                            :func:`mpforge.core.state.fault_point`)
``CI``                      set (to anything but 0/off/no/false): plain,        unset: rich output on a
                            timestamped output lines instead of rich            terminal
==========================  ==================================================  ==========================

A switch takes ``1``/``on``/``yes``/``true`` or ``0``/``off``/``no``/``false`` (any case).
Numbers of seconds are positive decimals (``2.5``). ``CI`` is the CI systems' own
variable, so it is never refused: any value but the "off" words means on.

The switches and ``MPFORGE_JOBS``/``MPFORGE_MIRROR`` are the environment step of the
shared task options (flag, then environment, then invoke's configuration, then the
built-in default): see :mod:`mpforge.cli.options`.

``python3 -S -m mpforge.core.debian`` runs before any virtual environment exists: this
module must keep to the standard library (and :mod:`mpforge.core.errors`).
"""

from __future__ import annotations

import difflib
import math
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mpforge.core.errors import ConfigError

#: Words a switch takes for "on" and for "off" (compared in lower case).
ON_WORDS = frozenset({"1", "on", "yes", "true"})
OFF_WORDS = frozenset({"0", "off", "no", "false"})

#: The prefix of mpforge's own variables: one that is not in :data:`VARIABLES` is a warning.
PREFIX = "MPFORGE_"


#: Every fault point of :func:`mpforge.core.state.fault_point`, and where it is. ``MPFORGE_FAULT``
#: naming another is refused (a renamed point must not turn a kill test into a plain run), and
#: ``fault_point`` refuses a name missing here. Declared here, at the bottom layer, because the
#: environment is parsed before the modules that pass these points are imported.
FAULT_POINTS: dict[str, str] = {
    "state.write": "mpforge.core.state: a state file written (atomic_write_bytes), not yet renamed",
    "patch.scratch": "mpforge.tree.patches: the change worked out in the scratch folder, nothing committed",
    "patch.journal": "mpforge.tree.journal: journal.json written, before the commit rename",
    "patch.committed": "mpforge.tree.journal: txn/ committed, no tree file written yet",
    "patch.write": "mpforge.tree.journal: after each tree file replaced (or removed)",
    "patch.record": "mpforge.tree.journal: applied.json replaced (or removed), journal.json still there",
    "patch.author": "mpforge.tree.authoring: patch file and authoring.json written; series and record not yet",
    "mirror.fetched": "mpforge.tree.mirror: a new repository's commits fetched into its temporary folder, not renamed",
    "publish.copy": "mpforge.firmware.dist: after each artifact copied into the staging folder",
    "publish.swap": "mpforge.firmware.dist: between the two renames that swap dist/<target>",
}


#: the most parallel jobs mpforge hands make: more tokens than a jobserver pipe holds
#: (64 KiB on Linux) would block the writer, and no machine runs more compilers usefully
MAX_JOBS = 4096


@dataclass(frozen=True)
class FaultInjection:
    """A parsed ``MPFORGE_FAULT``: stop with ``signum`` the ``nth`` time fault point ``point`` is passed."""

    point: str
    nth: int = 1
    signum: signal.Signals = signal.SIGKILL


@dataclass(frozen=True)
class Environment:
    """The environment variables mpforge reads, parsed (see the module docstring's table).

    ``None`` means "unset" wherever the next source of a setting must be asked
    (``mirror``, ``jobs``, the switches, ``root``, ``tree``); the rest carry their default.
    """

    root: Path | None = None
    tree: Path | None = None
    #: None: unset; "": set but empty, i.e. "no mirror"
    mirror: str | None = None
    jobs: int | None = None
    ccache: bool | None = None
    #: the shared compile cache's URL, as given (checked by :mod:`mpforge.cli.options`)
    ccache_remote: str | None = None
    verbose: bool | None = None
    debug: bool | None = None
    silence: float = 10.0
    test_timeout: float = 30.0
    dfu_wait: float = 15.0
    port_wait: float = 20.0
    sysfs: Path = Path("/sys")
    fault: FaultInjection | None = None
    ci: bool = False
    #: one line per ``MPFORGE_*`` variable mpforge does not read (and, when not strict,
    #: per malformed value that was ignored); for the command line to show
    warnings: tuple[str, ...] = ()


#: Each field of :class:`Environment` and the variable it comes from.
VARIABLES: dict[str, str] = {
    "root": "MPFORGE_ROOT",
    "tree": "MPFORGE_TREE",
    "mirror": "MPFORGE_MIRROR",
    "jobs": "MPFORGE_JOBS",
    "ccache": "MPFORGE_CCACHE",
    "ccache_remote": "MPFORGE_CCACHE_REMOTE",
    "verbose": "MPFORGE_VERBOSE",
    "debug": "MPFORGE_DEBUG",
    "silence": "MPFORGE_SILENCE",
    "test_timeout": "MPFORGE_TEST_TIMEOUT",
    "dfu_wait": "MPFORGE_DFU_WAIT",
    "port_wait": "MPFORGE_PORT_WAIT",
    "sysfs": "MPFORGE_SYSFS",
    "fault": "MPFORGE_FAULT",
    "ci": "CI",
}


def environment(environ: Mapping[str, str] | None = None, *, strict: bool = True) -> Environment:
    """Read and parse the settings of ``environ`` (default: ``os.environ``, as it is now).

    :param strict: True (the default): a malformed value raises a ConfigError naming the
        variable. False: it is replaced by its default and reported in ``warnings``; for
        code that must not fail, such as the code reporting another error.
    """
    reader = _Reader(os.environ if environ is None else environ, strict)
    defaults = Environment()
    return Environment(
        root=reader.path("root"),
        tree=reader.path("tree"),
        mirror=reader.text_or_empty("mirror"),
        jobs=reader.count("jobs"),
        ccache=reader.switch("ccache"),
        ccache_remote=reader.text("ccache_remote"),
        verbose=reader.switch("verbose"),
        debug=reader.switch("debug"),
        silence=reader.seconds("silence", defaults.silence),
        test_timeout=reader.seconds("test_timeout", defaults.test_timeout),
        dfu_wait=reader.seconds("dfu_wait", defaults.dfu_wait),
        port_wait=reader.seconds("port_wait", defaults.port_wait),
        sysfs=reader.path("sysfs") or defaults.sysfs,
        fault=reader.fault("fault"),
        ci=reader.ci("ci"),
        warnings=tuple(unknown_variables(reader.environ) + reader.problems),
    )


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per ``MPFORGE_*`` variable of ``environ`` that mpforge does not read,
    naming the nearest one it does read (``MPFORGE_JOB``: "did you mean MPFORGE_JOBS?")."""
    known = [name for name in VARIABLES.values() if name.startswith(PREFIX)]
    lines = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known:
            continue
        near = difflib.get_close_matches(name, known, n=1)
        advice = f"did you mean {near[0]}?" if near else "the ones it reads: see mpforge.core.environment"
        lines.append(f"{name} is not a setting mpforge reads ({advice})")
    return lines


class _Reader:
    """Parses single variables of one mapping; refuses a malformed value or, when not
    strict, notes it in :attr:`problems` and lets the caller use the default."""

    def __init__(self, environ: Mapping[str, str], strict: bool) -> None:
        self.environ = environ
        self.strict = strict
        self.problems: list[str] = []

    def _value(self, field: str) -> str | None:
        """The variable's value, stripped; None when unset or empty."""
        value = self.environ.get(VARIABLES[field], "").strip()
        return value or None

    def _malformed(self, field: str, value: str, expected: str) -> None:
        name = VARIABLES[field]
        error = ConfigError(f"{name}={value!r} is not {expected}", f"fix {name} in the environment, or unset it")
        if self.strict:
            raise error
        self.problems.append(f"{error.one_line()}; ignored")

    def text(self, field: str) -> str | None:
        """Text as given (stripped); None when unset or empty."""
        return self._value(field)

    def text_or_empty(self, field: str) -> str | None:
        """Tri-state text: None when unset, "" when set but empty, else the stripped value."""
        value = self.environ.get(VARIABLES[field])
        return None if value is None else value.strip()

    def path(self, field: str) -> Path | None:
        value = self._value(field)
        return Path(value).expanduser() if value else None

    def switch(self, field: str) -> bool | None:
        value = self._value(field)
        if value is None:
            return None
        if value.lower() in ON_WORDS:
            return True
        if value.lower() in OFF_WORDS:
            return False
        self._malformed(field, value, "a switch (1/on/yes/true or 0/off/no/false)")
        return None

    def count(self, field: str) -> int | None:
        value = self._value(field)
        if value is None:
            return None
        if value.isdigit() and 1 <= int(value) <= MAX_JOBS:
            return int(value)
        self._malformed(field, value, f"a whole number from 1 to {MAX_JOBS}")
        return None

    def seconds(self, field: str, default: float) -> float:
        value = self._value(field)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds > 0:
            return seconds
        self._malformed(field, value, "a positive number of seconds")
        return default

    def fault(self, field: str) -> FaultInjection | None:
        value = self._value(field)
        if value is None:
            return None
        where, _, signal_name = value.partition(":")
        point, _, nth = where.partition("@")
        signum = _signal_named(signal_name) if signal_name else signal.SIGKILL
        if not (point and (not nth or (nth.isdigit() and int(nth) >= 1)) and signum is not None):
            self._malformed(field, value, "NAME[@N][:SIGNAL] (N a whole number >= 1, SIGNAL such as KILL or STOP)")
            return None
        if point not in FAULT_POINTS:
            self._malformed(field, value, f"a known fault point ({', '.join(sorted(FAULT_POINTS))})")
            return None
        return FaultInjection(point, int(nth or 1), signum)

    def ci(self, field: str) -> bool:
        """CI systems' own variable: never refused, on unless unset, empty or an "off" word."""
        value = self._value(field)
        return value is not None and value.lower() not in OFF_WORDS


def _signal_named(name: str) -> signal.Signals | None:
    """``KILL``, ``kill`` or ``SIGKILL`` as a signal; None when there is no such signal."""
    upper = name.upper()
    try:
        return signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"]
    except KeyError:
        return None
