"""``invoke mirror``: make, update, check and bundle a GitHub-shaped mirror of what the ports need.

``invoke mirror DIR [--from BASE] [--port all]`` creates or updates the bare
repositories ``DIR/OWNER/NAME.git`` (see :mod:`mpforge.tree.mirror`) from GitHub or
from another mirror; ``invoke mirror --check DIR`` only verifies it (every pinned
commit there, ``git fsck`` of each repository) and names what is missing;
``--bundle FILE`` then writes the mirror into one file, which ``--mirror FILE``
accepts on every task (:mod:`mpforge.tree.bundle`). Sizes are reported; anything
missing exits 1.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit

from mpforge.cli import framework as fw
from mpforge.cli.framework import task
from mpforge.core.errors import ConfigError
from mpforge.firmware.selection import select
from mpforge.tree import mirror as mirror_mod
from mpforge.tree.bundle import write_bundle
from mpforge.tree.git import normalise_mirror


def megabytes(size: int) -> str:
    """A size for people: MB, or kB below one MB."""
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


@task(shared=("dry_run",), locks=False, help=dict(  # writes DIR only
    folder="the mirror folder (made if missing): DIR/OWNER/NAME.git",
    from_="fetch from this mirror (a folder, a URL or a bundle) instead of GitHub",
    check="only verify DIR: every pinned commit there, git fsck of each repository",
    bundle="then write the mirror's repositories into this one file (for --mirror FILE elsewhere)",
    port="the ports whose needs the mirror holds: NAME, A,B or all (default)"))
def mirror(c: Context, folder: str, from_: str | None = None, check: bool = False, bundle: str | None = None,
           port: str = "all") -> None:
    """Make or update (or --check) a GitHub-shaped mirror of the tree, its submodules and sources."""
    fw.show_help_if_asked(folder, mirror)
    project = fw.checkout()
    console = fw.console_of(project)
    base = Path(folder).expanduser().resolve()
    chosen = select(project, port)
    if check:
        if from_:
            raise ConfigError("--check only reads the mirror: --from has no use here", "drop --from")
        base = Path(normalise_mirror(str(base)) or base)  # a bundle file is checked as unpacked
        if not base.is_dir():
            raise ConfigError(f"no mirror folder {base}", f"`invoke mirror {folder}` makes one")
        console.step(f"check {base}")
        report = mirror_mod.check_mirror(project, chosen.ports, base)
    else:
        if base.is_file():
            raise ConfigError(f"{base} is a file: a mirror is a folder", "give a folder (--bundle FILE writes a file)")
        source = normalise_mirror(from_) if from_ else None
        if source and Path(source).resolve() == base:
            raise ConfigError("--from names the mirror being made", "give another mirror, or no --from (GitHub)")
        console.step(f"mirror into {base} from {source or 'GitHub'}")
        report = mirror_mod.make_mirror(project, chosen.ports, base, source)
    rows = [(r.name + ".git", r.action, ", ".join(s[:10] for s in r.fetched) or "-", megabytes(r.size))
            for r in report.repos]
    console.table(f"mirror {base}", ["repository", "state", "fetched", "size"], rows)
    for problem in report.problems:
        console.error(problem)
    if not report.ok:
        raise Exit(code=1)
    console.ok(f"{'checked' if check else 'mirror'} {base}: {len(report.repos)} repositories, "
               f"{megabytes(report.size)}")
    if bundle:
        dest = Path(bundle).expanduser().resolve()
        if fw.options().dry_run:
            console.info(f"dry run: would write {dest}")
            return
        size = write_bundle(base, [f"{r.name}.git" for r in report.repos], dest)
        console.ok(f"bundle {dest}: {megabytes(size)} (`--mirror {dest}` on another machine)")
