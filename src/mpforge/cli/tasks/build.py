"""Tasks that make and inspect firmware: ``build``, ``doctor`` (what the ports need) and
``size`` (text/data/bss against a baseline)."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli import render
from mpforge.cli.framework import task
from mpforge.cli.render import sizes as render_sizes
from mpforge.firmware import ccache_remote as remote_mod
from mpforge.firmware import doctor as doctor_mod
from mpforge.firmware import signing
from mpforge.firmware import size as size_mod
from mpforge.firmware.selection import list_boards, select


@task(shared=("mirror", "dry_run", "jobs", "ccache", "ccache_remote"), help=dict(
    port="port(s) to build: NAME or A,B (default unix)",
                 board="board of a board port, 'all' for every board in the tree, or 'list' "
                       "to list them (with the --board-dir / app board, if given)",
                 all="build every port (and every board)",
                 app="freeze this app folder's .py files and packages into the firmware; its "
                     "mpforge.toml may name modules, board_dir, c_modules, make_vars",
                 board_dir="build the board described in this folder outside the tree "
                           "(dist/<port>-<folder name>/)",
                 clean="start from empty build dirs",
                 strict="a target skipped for a missing toolchain fails the run",
                 variant="build the port's variant NAME ([variants] in its data: coverage, debug) "
                         "into dist/<target>-NAME/",
                 sign_key="sign each built target's attestation with this Ed25519 private key "
                          "(PEM; see docs/verify.md): dist/<target>/provenance.intoto.dsse.json"))
def build(c: Context, port: str = "unix", board: str | None = None, all: bool = False,
          clean: bool = False, strict: bool = False, app: str | None = None, board_dir: str | None = None,
          variant: str | None = None, sign_key: str | None = None) -> None:
    """Fetch, patch, build deplibs and compile ports into dist/<target>/."""
    project = fw.checkout()
    console = fw.console_of(project)
    if sign_key:
        signing.private_key(Path(sign_key))  # a key that cannot sign is said before the build
    chosen = select(project, port, board if board != "list" else None, all=all, board_dir=board_dir, app=app,
                    variant=variant)
    pipeline = fw.pipeline(project, keep_going=chosen.many)
    if board == "list":  # the boards a build can take: the tree's (patched), and the folder given
        if not fw.options().dry_run:
            pipeline.tree(chosen.ports)
        for each in chosen.ports:
            console.table(f"boards of {each.name}", ["board", "folder", "note"],
                          list_boards(project, each, board_dir, app))
        return
    targets = chosen.targets(pipeline)
    with render.BuildProgress(console, targets) as on_change:
        report = pipeline.build(targets, fw.build_options(clean=clean), on_change)
    if sign_key and not fw.options().dry_run:
        for outcome in report.results:
            if outcome.built is not None:
                written = signing.sign_folder(outcome.built.dist_dir, Path(sign_key))
                console.info(f"signed {outcome.built.target}'s attestation -> {written.relative_to(project.root)}"
                             if written.is_relative_to(project.root) else f"signed -> {written}")
    if chosen.many:
        if not render.show_matrix(console, report, strict=strict):
            raise Exit(code=1)
        return
    if fw.options().dry_run:
        console.ok("dry run: nothing was changed")
        return
    result = report.results[0].built
    assert result is not None  # a single target's failure was raised
    result.ccache = result.ccache or report.ccache  # its own stats log first
    render.show_build(console, result, project.root)


@task(locks=False, shared=("ccache_remote",), help=dict(fix="apt-get install what the ports lack (as root)",
                 port="port(s) whose needs decide the exit status: NAME, A,B or all",
                 packages="only print the Debian packages the port(s) need, on one line"))
def doctor(c: Context, fix: bool = False, port: str = "unix", packages: bool = False) -> None:
    """What the ports need (toolchains, tools, Debian packages, autoconf macros), and what is missing."""
    project = fw.checkout()
    chosen = select(project, port).ports
    ports = [p.name for p in chosen]
    if packages:
        print(" ".join(project.catalog.debian_packages(ports)))
        return
    diagnosis = doctor_mod.diagnose(project, chosen)
    if fix:
        installed = doctor_mod.fix(project, diagnosis)
        if installed:
            fw.console_of(project).ok(f"installed: {' '.join(installed)}")
            diagnosis = doctor_mod.diagnose(project, chosen)
    rows = [(ch.kind, ch.name, ch.version or "missing", ", ".join(ch.ports),
             ch.note or ("" if ch.found else ch.provider)) for ch in diagnosis.checks]
    fw.console_of(project).table(f"what {', '.join(ports)} need{'s' if len(ports) == 1 else ''}",
                          ["kind", "name", "found", "needed by", "install / note"], rows)
    settings = fw.options()  # what this (and the next) command uses
    for line in settings.describe():
        if line.startswith("mirror:") and not settings.mirror:
            line += "; clones go to https://github.com/ (`--mirror BASE` once to use one)"
        fw.console_of(project).info(line)
    for entry in (settings.ccache_remote or "").split():  # one probe each: does it answer?
        said = remote_mod.probe(entry)
        if said is None:
            fw.console_of(project).ok(f"ccache remote {remote_mod.shown(entry)} answers")
        else:  # a build would still go on, compiling locally: a warning, not a failure
            fw.console_of(project).warn(f"ccache remote {remote_mod.shown(entry)} does not answer: {said}; "
                                        "builds go on compiling locally")
    missing = diagnosis.missing_by_port()
    if missing:
        for name, pieces in missing.items():
            fw.console_of(project).error(f"missing for {name}: {', '.join(pieces)}")
        apt = diagnosis.missing_packages()
        hint = (f"sudo apt-get update && sudo apt-get install {' '.join(apt)} (or `invoke doctor --fix` as root)"
                if apt else "install what is shown in the table")
        fw.console_of(project).error(hint)
        raise Exit(code=1)
    fw.console_of(project).ok("everything the requested ports need is installed")


@task(locks=False, help=dict(baseline="compare with this saved size baseline (JSON)",
                 save="save the current sizes as a baseline to this file",
                 json="write sizes (and deltas) as JSON to this file",
                 markdown="write the table as Markdown to this file (for CI comments)"))
def size(c: Context, baseline: str | None = None, save: str | None = None,
         json: str | None = None, markdown: str | None = None) -> None:
    """Show text/data/bss of every built target, and the change against a baseline."""
    project = fw.checkout()
    base = size_mod.load_baseline(Path(baseline)) if baseline else None
    rows = size_mod.compare(size_mod.current_sizes(project.dist_root), base)
    with_base = base is not None
    fw.console_of(project).table("sizes" + (f" vs {baseline}" if baseline else ""),
                          render_sizes.columns(with_base), render_sizes.table_rows(rows, with_base))
    if save:
        fw.write_json(save, {"targets": {r.target: r.size for r in rows}})
        fw.console_of(project).ok(f"baseline saved to {save}")
    fw.write_json(json, render_sizes.to_json(rows))
    if markdown:
        Path(markdown).write_text(render_sizes.to_markdown(rows, with_base))
