"""Tasks on the tree: ``fetch`` (micropython/ at its pin with the submodules a port needs),
``patch`` (the series: apply, revert, status, write a new patch) and ``deplibs``."""

from __future__ import annotations

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.core import lock as lock_mod
from mpforge.core.errors import UsageError
from mpforge.core.project import TREE_DIR
from mpforge.firmware.deplibs import build_deplibs
from mpforge.firmware.selection import select
from mpforge.tree import authoring
from mpforge.tree.fetch import fetch as fetch_tree
from mpforge.tree.git import Git
from mpforge.tree.patches import PatchQueue, PatchState


@task(shared=("mirror", "dry_run"), help=dict(
    port="port(s) whose submodules to fetch: NAME, A,B or all"))
def fetch(c: Context, port: str = "unix") -> None:
    """Check out micropython/ at its pin plus the submodules the port needs."""
    project = fw.checkout()
    chosen = select(project, port)
    report = fetch_tree(project, chosen.ports, fw.options().mirror)
    console = fw.console_of(project)
    state = "cloned" if report.cloned else "checked out" if report.checked_out else "already"
    console.ok(f"micropython/ {state} at {report.pin[:12]}")
    if report.submodules_initialised:
        console.ok(f"submodules: {', '.join(report.submodules_initialised)}")
    if report.local_changes:
        console.warn(f"micropython/ has local changes in {len(report.local_changes)} file(s); kept "
                     "(`invoke patch --status` shows whether they are the series)")


@task(shared=("dry_run",), locks=lambda args: not args.get("status"), help=dict(
    revert="restore the pristine tree",
                 status="list each patch's state",
                 new="write micropython/'s edits as a new last patch patches/00NN-NEW.patch",
                 message="the new patch's message (first line: its subject; default: its name)",
                 refresh="fold micropython/'s edits to the files of this patch (name or number) into it"))
def patch(c: Context, revert: bool = False, status: bool = False, new: str | None = None,
          message: str | None = None, refresh: str | None = None) -> None:
    """Apply patches/series onto micropython/ (crash-safe, idempotent); --new/--refresh write patches."""
    project = fw.checkout()
    queue = PatchQueue(project.patches_dir, project.tree, project.executor)
    console = fw.console_of(project)
    if new or refresh:
        if sum(map(bool, (new, refresh, revert, status))) > 1 or (message and not new):
            raise UsageError("patch: --new [--message] and --refresh go alone",
                             "give --new NAME [--message M], or --refresh PATCH, by itself")
        pin = Git(project.executor).gitlink(project.root, TREE_DIR) if project.tree_is_submodule \
            else Git(project.executor).head(project.tree)
        try:
            authored = authoring.new_patch(queue, pin, new, message) if new else \
                authoring.refresh_patch(queue, pin, refresh or "")
        finally:
            for note in queue.notes:
                console.warn(note)
        if authored.skipped:
            console.warn(f"left out (build outputs, submodules): {', '.join(authored.skipped[:5])}")
        dry = "dry run: would have " if fw.options().dry_run else ""
        console.ok(f"{dry}{'written' if new else 'refreshed'} patches/{authored.patch} "
                   f"({', '.join(authored.files)}); micropython/ is pin + series")
        return
    if status:
        busy = lock_mod.CheckoutLock(project.root, "patch --status").busy()
        states = queue.status()
        shown = [(p.name, "in progress (another command is running)"
                  if busy and state == PatchState.INTERRUPTED else state.value, p.sha256[:12])
                 for p, state in states]
        for note in queue.notes:
            console.warn(note)
        console.table("patch series", ["patch", "state", "sha256"], shown)
        kinds = {state for _, state in states}
        if busy:
            console.warn(f"another mpforge command is using this checkout ({busy}): "
                         "these states may be changing")
        elif PatchState.INTERRUPTED in kinds:
            console.warn("an interrupted `invoke patch` left micropython/ half-done: "
                         "`invoke patch` completes it (or `invoke patch --revert` undoes it)")
        elif PatchState.HALF in kinds:
            console.warn("micropython/ is half-patched (an interrupted run of an older mpforge): "
                         "`invoke patch` completes it, `invoke patch --revert` undoes it")
        if kinds & {PatchState.CONFLICTING, PatchState.INTERRUPTED, PatchState.HALF}:
            raise Exit(code=1)
        return
    try:
        done = queue.revert() if revert else queue.apply()
    finally:
        for note in queue.notes:
            console.warn(note)
    dry = "dry run: would have " if fw.options().dry_run else ""
    if revert:
        console.ok(f"{dry}reverted {len(done)} patch(es)" if done
                   else "nothing to revert: the series is not applied")
        return
    console.ok(f"{dry}applied {len(done)} patch(es): {', '.join(p.name for p in done)}" if done
               else "patch series already applied")


@task(shared=("mirror", "dry_run"), help=dict(
    port="port whose dependency libraries to build", clean="rebuild from scratch"))
def deplibs(c: Context, port: str = "unix", clean: bool = False) -> None:
    """Build a port's dependency libraries (axtls, libffi, ...) out of tree."""
    project = fw.checkout()
    target = select(project, port).target()
    fetch_tree(project, [target.port], fw.options().mirror)  # the deplibs do not depend on the patch series
    results = build_deplibs(target, clean)
    if not results:
        fw.console_of(project).ok(f"port {port} has no deplibs")
    for result in results:
        fw.console_of(project).ok(f"{result.name}: {result.prefix.relative_to(project.root)}")
