"""ccache for every build: one decision, a compiler prefix, and the hit figures of a run.

**The decision lives here, and only here.** :meth:`Ccache.for_build` is asked by
:func:`mpforge.firmware.target.build_target`, which every build path goes through (a single
``invoke build``, the matrix of ``invoke build --all``, ``invoke ci``, the ports a
port ``needs``). It answers with a :class:`Ccache` (compile through it) or None:

1. an explicit choice of the caller wins (``invoke build --no-ccache`` passes False;
   a benchmark that must compare cold compiles passes False too);
2. otherwise the project-level setting :data:`SETTING` (``MPFORGE_CCACHE=0``, also
   ``off``/``no``/``false``) turns it off for every path, CI jobs included;
3. otherwise ccache is used whenever the ``ccache`` program is installed.

(Deplibs, built once per port and kept under ``build/deplibs/``, compile directly.)

**Why it is safe.** ccache keys each object on the preprocessed source, the
compiler (its path, size and mtime) and the command line, so a cache never hands
back an object for other inputs; mpforge's own input hash (``inputs.json``) is
unaffected by the prefix. ``CCACHE_BASEDIR`` is deliberately *not* set (and is
cleared if the user's environment sets it): with it, ccache hands the compiler
relative paths, and the dependency files the tree's makefiles include then name
``../../build/...`` targets that make never matches to its absolute object paths,
so an edited header would no longer rebuild what includes it. Instead make itself
gets the checkout's paths relative to the port's make folder
(:mod:`mpforge.firmware.make_paths`): the command lines are the same in every checkout,
and the dependency files name make's own targets. ``CCACHE_DIR`` is ccache's own setting: CI jobs
point it into the workspace (``.ccache``) so the CI cache can keep it.

**A shared cache** (``ccache_remote``, :mod:`mpforge.firmware.ccache_remote`) is handed
to ccache as ``CCACHE_REMOTE_STORAGE``; objects a team member or a CI job compiled come
from it (a *remote hit*, then kept locally too), whatever the checkout's path (the
relative paths above; ``hash_dir`` is off where the compiler's prefix maps cover the make
folder, :meth:`Ccache.env_for`).

A server that is down or slow costs no build: ccache compiles locally and counts
``remote_storage_error``/``remote_storage_timeout``, which :meth:`CcacheStats.warning`
turns into one line naming the URL.

**Figures per target.** Each build hands ccache a stats log of its own
(``CCACHE_STATSLOG=build/<target>/ccache-stats.log``, emptied when make starts): ccache
appends each compile's counters to it, so a target's local hits, remote hits, misses and
remote errors are its own even when a matrix builds several targets into one cache folder
(:meth:`CcacheStats.from_log`).

**Figures of a run.** ccache keeps global counters (``ccache --print-stats``: one
``name<TAB>value`` line each). A run's figures are the difference between the
counters read before and after it (:meth:`CcacheStats.between`). Another process
compiling into the same cache directory at the same time is counted too: the
figures describe the cache during the run, which in CI (one job, one cache) is
the run itself.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

from mpforge.core.environment import environment
from mpforge.core.executor import Executor
from mpforge.core.project import Project
from mpforge.firmware.ccache_remote import shown

#: The project-level switch: set to 0 / off / no / false to build without ccache.
SETTING = "MPFORGE_CCACHE"

#: The Debian package(s) of ccache, when ``toolchains/host-tools.toml`` does not
#: define a ``ccache`` tool (the data, when present, wins: see :func:`debian_packages`).
DEFAULT_DEBIAN = ["ccache"]


def wanted(choice: bool | None = None) -> bool:
    """Whether builds should go through ccache (before asking whether it is installed).

    ``choice`` is an explicit True/False from the caller; None defers to
    ``$MPFORGE_CCACHE`` (unset or empty: on; a switch, parsed by
    :func:`mpforge.core.environment.environment`, which refuses anything but on/off words).
    """
    if choice is not None:
        return choice
    return environment().ccache is not False


def debian_packages(project: Project) -> list[str]:
    """The Debian packages that install ccache: the ``ccache`` tool of the data, else ``ccache``."""
    tool = project.catalog.tools.get("ccache")
    return list(tool.debian) if tool and tool.debian else list(DEFAULT_DEBIAN)


@dataclass(frozen=True)
class CcacheStats:
    """What ccache did during a run: objects served from the cache, and compiled into it."""

    #: every object served from a cache, local or remote
    hits: int
    misses: int
    #: compiler calls ccache passed through (preprocessing only, linking, ...)
    uncacheable: int = 0
    #: of ``hits``, those that came from the remote storage (a shared cache)
    remote_hits: int = 0
    #: times the remote storage failed or timed out (the object was compiled or found locally)
    remote_errors: int = 0

    @property
    def local_hits(self) -> int:
        return self.hits - self.remote_hits

    @property
    def remote_hit_rate(self) -> float | None:
        """Remote hits over every cacheable compile (0..1; None when nothing was compiled)."""
        total = self.hits + self.misses
        return self.remote_hits / total if total else None

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    @classmethod
    def between(cls, before: dict[str, int], after: dict[str, int]) -> CcacheStats:
        """The difference of two :meth:`Ccache.counters` readings."""
        def delta(*names: str) -> int:
            return sum(after.get(n, 0) - before.get(n, 0) for n in names)

        return cls(hits=delta("direct_cache_hit", "preprocessed_cache_hit"),
                   misses=delta("cache_miss"),
                   uncacheable=delta("called_for_link", "called_for_preprocessing",
                                     "no_input_file", "unsupported_compiler_option",
                                     "unsupported_source_language", "compile_failed"),
                   remote_hits=delta("remote_storage_hit"),
                   remote_errors=delta("remote_storage_error", "remote_storage_timeout"))

    @classmethod
    def from_log(cls, text: str) -> CcacheStats:
        """One build's figures from ccache's stats log (``CCACHE_STATSLOG``): a ``# SOURCE``
        line per compiler call, then the counters it raised, one name a line. A target's
        own log holds only its compiles, even while other targets share the cache folder."""
        counts: dict[str, int] = {}
        for record in ("\n" + text).split("\n# ")[1:]:
            # once a call: a read counter is listed twice when ccache read two files
            for name in set(record.splitlines()[1:]):
                if name.strip():
                    counts[name.strip()] = counts.get(name.strip(), 0) + 1
        return cls.between({}, counts)

    def cell(self) -> str:
        """The matrix table's cell: ``local/remote/miss``, ``(N err)`` after it on remote errors."""
        errors = f" ({self.remote_errors} err)" if self.remote_errors else ""
        return f"{self.local_hits}/{self.remote_hits}/{self.misses}{errors}"

    def as_dict(self) -> dict[str, int | float | None]:
        """For ``summary.json``: hits (and of them local and remote), misses, remote errors,
        uncacheable and the hit rates (0..1, None when nothing was compiled)."""
        rate, remote = self.hit_rate, self.remote_hit_rate
        return {**asdict(self), "local_hits": self.local_hits,
                "hit_rate": round(rate, 3) if rate is not None else None,
                "remote_hit_rate": round(remote, 3) if remote is not None else None}

    def describe(self) -> str:
        """``ccache: 120 hits (20 local, 100 remote), 3 misses, 0 remote errors (hit rate 98%)``:
        the line the tasks print (without a remote: ``ccache: 120 hits, 3 misses (...)``)."""
        rate = self.hit_rate
        percent = f"{100 * rate:.0f}%" if rate is not None else "n/a"
        if not (self.remote_hits or self.remote_errors):
            return f"ccache: {self.hits} hits, {self.misses} misses (hit rate {percent})"
        return (f"ccache: {self.hits} hits ({self.local_hits} local, {self.remote_hits} remote), "
                f"{self.misses} misses, {self.remote_errors} remote errors (hit rate {percent})")

    def warning(self, remote: str | None) -> str | None:
        """One line when the remote storage failed during the run (the build went on locally)."""
        if not remote or not self.remote_errors:
            return None
        return (f"ccache remote {shown(remote)} did not answer {self.remote_errors} time(s): "
                "those objects were compiled or found locally")

    def markdown(self) -> str:
        """One Markdown line for a job summary."""
        remote = (f" (**{self.local_hits}** local, **{self.remote_hits}** remote, "
                  f"**{self.remote_errors}** remote errors)" if self.remote_hits or self.remote_errors else "")
        return f"ccache: **{self.hits}** hits{remote}, **{self.misses}** misses" + (
            f" (hit rate {100 * self.hit_rate:.0f}%)" if self.hit_rate is not None else "")


@dataclass
class Ccache:
    """ccache as a build uses it: the compiler prefix, its environment, its counters."""

    executor: Executor
    #: ``CCACHE_BASEDIR`` for make: always empty (see the module docstring)
    basedir: str
    #: ccache's ``remote_storage`` (checked); None: the local cache only
    remote: str | None = None

    @classmethod
    def for_build(cls, project: Project, choice: bool | None = None,
                  remote: str | None = None) -> Ccache | None:
        """The one decision (see the module docstring): a :class:`Ccache`, or None to compile directly.

        ``remote`` is the shared cache's URL, checked by the caller
        (:func:`mpforge.firmware.ccache_remote.check_remote`)."""
        if not wanted(choice) or shutil.which("ccache") is None:
            return None
        return cls(project.executor, "", remote)

    @property
    def prefix(self) -> list[str]:
        """What goes in front of the compiler in ``CC``."""
        return ["ccache"]

    @property
    def env(self) -> dict[str, str]:
        """The environment make (and so ccache) runs with."""
        return self.env_for(debug_mapped=False)

    def env_for(self, debug_mapped: bool, stats_log: str = "") -> dict[str, str]:
        """The environment make (and so ccache) runs with; ``debug_mapped``: the compiler's
        prefix maps cover its working folder, so ccache's ``hash_dir`` is turned off
        (``CCACHE_NOHASHDIR``): the debug information names the mapped folder, the same in
        every checkout, and the working folder need not be in the key. ``stats_log``: the
        build's own stats log (``CCACHE_STATSLOG``; see the module docstring)."""
        env = {"CCACHE_BASEDIR": self.basedir}  # empty: ccache's default, paths as given
        if stats_log:
            env["CCACHE_STATSLOG"] = stats_log
        if debug_mapped:
            env["CCACHE_NOHASHDIR"] = "1"
        if self.remote:
            env["CCACHE_REMOTE_STORAGE"] = self.remote
        return env

    def counters(self) -> dict[str, int]:
        """ccache's counters now (``--print-stats``); empty when ccache cannot tell."""
        out = self.executor.query(["ccache", "--print-stats"])
        if out is None:  # a ccache older than 3.7 has no --print-stats
            return {}
        counters: dict[str, int] = {}
        for line in out.splitlines():
            name, _, value = line.partition("\t")
            if value.strip().isdigit():
                counters[name] = int(value)
        return counters

    def stats_since(self, before: dict[str, int]) -> CcacheStats:
        """What happened since ``before`` (a :meth:`counters` reading)."""
        return CcacheStats.between(before, self.counters())
