"""One build path: whatever the task, targets are prepared and built here.

``invoke build``, ``ci``, ``bench-build``, ``deploy``, ``test``, ``emulate`` and
``bench-gc`` all hold a :class:`Pipeline` for the length of one command and hand it
:class:`~mpforge.core.project.Target` values (made by :mod:`mpforge.firmware.selection`).
It does each shared step once, however many targets or tasks ask for it:

1. **the tree** (:meth:`Pipeline.tree`): ``micropython/`` at its pin with the
   submodules of the ports asked for, and the patch series
   (:func:`mpforge.tree.prepare.prepare_tree`); asked again for the same ports, a
   no-op;
2. **preparation**: each toolchain probed once (a missing one *skips* its targets),
   the ports the targets need built first (``needs``, e.g. ``mpy-cross``; and what an
   app needs to be frozen), each port's deplibs built once;
3. **the build** (:meth:`Pipeline.build`): the targets' makes under one job budget
   (:mod:`mpforge.firmware.matrix`); a single target is a matrix of one.

Two ways to fail, chosen when the pipeline is made: with ``keep_going`` (a matrix)
a port that cannot be fetched, a missing toolchain, a failed deplib or make fail or
skip only their own targets, and every outcome is in the returned
:class:`~mpforge.firmware.matrix.MatrixReport`; without it (one target) the first
problem is raised as the typed error it is, before anything else is done.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mpforge.core.config import PortDef
from mpforge.core.errors import MissingTool, MpforgeError
from mpforge.core.project import Project, Target, check_build_paths
from mpforge.firmware import app as app_mod
from mpforge.firmware import matrix
from mpforge.firmware.ccache import Ccache
from mpforge.firmware.deplibs import build_deplibs, merged_make_vars
from mpforge.firmware.matrix import MatrixReport, OnChange, TargetResult
from mpforge.firmware.target import BuildResult, build_target
from mpforge.firmware.toolchain import Found, find_tool, find_toolchain
from mpforge.tree.prepare import TreeInfo, prepare_tree


@dataclass(frozen=True)
class BuildOptions:
    """How targets are built; the same meaning in every task that takes them."""

    #: the job budget shared by every make (0: the CPU count)
    jobs: int = 0
    #: start from empty build folders (``--clean``)
    clean: bool = False
    #: True/False forces ccache on or off; None: the project's setting (:mod:`mpforge.firmware.ccache`)
    ccache: bool | None = None
    #: ccache's remote storage, checked (:mod:`mpforge.firmware.ccache_remote`); None: local only
    ccache_remote: str | None = None
    #: rebuild the deplibs from scratch too (None: as ``clean``)
    clean_deplibs: bool | None = None

    @property
    def budget(self) -> int:
        return self.jobs or os.cpu_count() or 1


@dataclass
class Pipeline:
    """The shared steps of one command's builds; see the module docstring."""

    project: Project
    #: where the pinned repositories come from (None: their own URLs)
    mirror: str | None = None
    #: a matrix: problems stay with their targets (see the module docstring)
    keep_going: bool = False
    #: how targets are built when a call gives no options of its own (the task's
    #: shared ``--jobs``/``ccache``, so a test's or a deploy's build honours them too)
    options: BuildOptions = field(default_factory=BuildOptions)
    _tree: TreeInfo | None = field(default=None, init=False, repr=False)
    _tree_ports: list[str] = field(default_factory=list, init=False, repr=False)
    _toolchains: dict[str, Found | MissingTool] = field(default_factory=dict, init=False, repr=False)
    _tools: dict[str, Found | MissingTool] = field(default_factory=dict, init=False, repr=False)
    _tools_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _deplibs: dict[str, dict[str, str] | MpforgeError] = field(default_factory=dict, init=False,
                                                               repr=False)
    _built: dict[str, BuildResult] = field(default_factory=dict, init=False, repr=False)

    # -- 1. the tree ----------------------------------------------------------------

    def tree(self, ports: Iterable[PortDef]) -> TreeInfo:
        """Fetch and patch the tree for ``ports`` and what they need; once per command.

        A later call for ports not yet fetched fetches theirs (the series is then
        already applied: a no-op). Ports whose own sources could not be fetched are in
        the result's ``failed_ports`` (``keep_going``) or raised (otherwise).
        """
        names = self.project.catalog.with_needs(sorted({p.name for p in ports}))
        if self._tree is not None and set(names) <= set(self._tree_ports):
            return self._tree
        wanted = self.project.catalog.with_needs(sorted({*self._tree_ports, *names}))
        check_build_paths(self.project)
        self._tree = prepare_tree(self.project, [self.project.catalog.port(n) for n in wanted], self.mirror,
                                  keep_going=self.keep_going)
        self._tree_ports = wanted
        return self._tree

    # -- 2. preparation ---------------------------------------------------------------

    def toolchain(self, target: Target) -> Found:
        """The target's toolchain, probed once per command; :class:`MissingTool` when absent."""
        name = target.toolchain.name
        if name not in self._toolchains:
            try:
                self._toolchains[name] = find_toolchain(target.toolchain, self.project.executor)
            except MissingTool as exc:
                self._toolchains[name] = exc
        found = self._toolchains[name]
        if isinstance(found, MissingTool):
            raise found
        return found

    def tools(self, target: Target) -> None:
        """The port's host tools (make, python3, ...), each probed once per command (the
        matrix's workers ask at once); :class:`MissingTool` when one is absent."""
        for name in target.port.tools:
            with self._tools_lock:
                if name not in self._tools:
                    try:
                        self._tools[name] = find_tool(self.project.catalog.tools[name], self.project.executor)
                    except MissingTool as exc:
                        self._tools[name] = exc
                found = self._tools[name]
            if isinstance(found, MissingTool):
                raise found

    def deplib_vars(self, target: Target, clean: bool = False) -> dict[str, str]:
        """Build the port's deplibs (once per command) and return their make variables."""
        port = target.port
        if port.name not in self._deplibs:
            if not port.deplibs:
                self._deplibs[port.name] = {}
            else:
                self.project.console.step(f"deplibs ({port.name})")
                try:
                    self._deplibs[port.name] = merged_make_vars(build_deplibs(target, clean))
                except MpforgeError as exc:
                    self._deplibs[port.name] = exc
        made = self._deplibs[port.name]
        if isinstance(made, MpforgeError):
            raise made
        return made

    def needed_first(self, targets: Sequence[Target]) -> list[Target]:
        """The targets to build before ``targets``: the default target of every port they
        need (``needs``, or what freezing an app takes), in dependency order."""
        catalog = self.project.catalog
        ports = sorted({t.port.name for t in targets})
        wanted = catalog.with_needs(ports)
        needed = [p for p in wanted if any(p in catalog.port(q).needs for q in wanted)]
        for target in targets:
            needed += [n for n in catalog.with_needs(app_mod.needs(target)) if n not in needed]
        return [self.project.target(name) for name in needed]

    def _build_first(self, target: Target, tree: TreeInfo, options: BuildOptions) -> BuildResult:
        """Build (or find current) a needed target, once per command."""
        if target.name not in self._built:
            self.project.console.step(f"needed first: {target.name}")
            self.tools(target)
            self._built[target.name] = build_target(
                target, tree, self.deplib_vars(target), jobs=options.budget, ccache=options.ccache,
                ccache_remote=options.ccache_remote, toolchain=self.toolchain(target))
        return self._built[target.name]

    # -- 3. the build -----------------------------------------------------------------

    def build(self, targets: Sequence[Target], options: BuildOptions | None = None,
              on_change: OnChange | None = None) -> MatrixReport:
        """Prepare and build ``targets``; see the module docstring.

        ``on_change`` is called with a target's result whenever its status changes (the
        task layer renders it: a live table, or a line per change in CI).
        """
        options = options or self.options
        cache = Ccache.for_build(self.project, options.ccache, options.ccache_remote)
        counters_before = cache.counters() if cache else {}
        report = MatrixReport([TargetResult(t.name) for t in targets], 0.0, options.budget)
        results = {r.target: r for r in report.results}

        prepared, runnable = self._prepare(targets, results, options, on_change or _unheard)

        def make(target: Target, jobs: int | None, make_env: dict[str, str],
                 pass_fds: tuple[int, ...]) -> BuildResult:
            assert prepared is not None  # runnable targets exist only once the tree is prepared
            self.tools(target)
            built = build_target(target, prepared, self.deplib_vars(target), jobs=jobs,
                                 clean=options.clean, make_env=make_env, pass_fds=pass_fds,
                                 ccache=options.ccache, ccache_remote=options.ccache_remote,
                                 toolchain=self.toolchain(target))
            self._built[target.name] = built
            return built

        report.parallel_seconds = matrix.run(runnable, results, make, jobs=options.budget,
                                             on_change=on_change, keep_going=self.keep_going)
        report.finish(cache.stats_since(counters_before) if cache else None)
        warning = report.ccache.warning(options.ccache_remote) if report.ccache else None
        if warning:  # a server that is down or slow: the build went on locally
            self.project.console.warn(warning)
        if not self.keep_going:
            for result in report.results:
                if result.error is not None:
                    raise result.error
        return report

    def build_one(self, target: Target, options: BuildOptions | None = None,
                  on_change: OnChange | None = None) -> BuildResult:
        """Build one target (a matrix of one) and return its result; problems are raised.

        A target this pipeline has built already is not looked at again (``invoke ci``
        builds, then its test step asks for the host port's binary)."""
        if target.name in self._built and not (options or self.options).clean:
            return self._built[target.name]
        keep_going, self.keep_going = self.keep_going, False
        try:
            report = self.build([target], options, on_change)
        finally:
            self.keep_going = keep_going
        built = report.results[0].built
        assert built is not None  # without keep_going a target without a result raised
        built.ccache = built.ccache or report.ccache  # its own stats log first
        return built

    def _prepare(self, targets: Sequence[Target], results: dict[str, TargetResult],
                 options: BuildOptions, on_change: OnChange) -> tuple[TreeInfo | None, list[Target]]:
        """Step 2 for ``targets``: returns the prepared tree (None when no target can be
        built) and the targets that can be made. With ``keep_going`` the others are marked
        skipped (a missing toolchain) or failed (their port's sources, a needed port or
        their deplibs); without it the first problem is raised."""
        project = self.project
        runnable: list[Target] = []
        for target in targets:  # a missing toolchain skips its targets, before any fetch
            try:
                self.toolchain(target)
                runnable.append(target)
            except MissingTool as exc:
                if not self.keep_going:
                    raise
                results[target.name].skip(exc)
                on_change(results[target.name])
        if not runnable:
            return None, []
        tree = self.tree([t.port for t in [*runnable, *self.needed_first(runnable)]])
        runnable = self._drop_failed(runnable, results, dict(tree.failed_ports), on_change)
        failed: dict[str, MpforgeError] = {}
        for need in self.needed_first(runnable):
            try:
                self._build_first(need, tree, options)
            except MpforgeError as exc:
                if not self.keep_going:
                    raise
                failed.update({t.port.name: exc for t in runnable
                               if need.port.name in project.catalog.with_needs([t.port.name])
                               or need.port.name in app_mod.needs(t)})
        runnable = self._drop_failed(runnable, results, failed, on_change)
        clean_deplibs = options.clean if options.clean_deplibs is None else options.clean_deplibs
        for target in runnable:
            try:
                self.deplib_vars(target, clean_deplibs)
            except MpforgeError as exc:
                if not self.keep_going:
                    raise
                failed[target.port.name] = exc
        return tree, self._drop_failed(runnable, results, failed, on_change)

    @staticmethod
    def _drop_failed(targets: list[Target], results: dict[str, TargetResult],
                     failures: dict[str, MpforgeError], on_change: OnChange) -> list[Target]:
        """Mark the targets of ports that failed to prepare as failed; return the others."""
        for target in targets:
            exc = failures.get(target.port.name)
            if exc is not None:
                results[target.name].fail(exc)
                on_change(results[target.name])
        return [t for t in targets if t.port.name not in failures]


def _unheard(result: TargetResult) -> None:
    """The :data:`OnChange` of a build nobody watches."""


def build_one(target: Target, *, mirror: str | None, options: BuildOptions | None = None) -> BuildResult:
    """Build one target with a pipeline of its own (for a task that builds nothing else)."""
    return Pipeline(target.project, mirror, options=options or BuildOptions()).build_one(target)
