"""``invoke ci-generate``: pipeline files for GitHub Actions and GitLab CI that run as generated.

One job per port (a board port's boards, read from the tree, as a matrix), each
running the same ``invoke ci`` a laptop runs, after ``invoke doctor --port P``
(a job whose machine lacks something fails first, naming it). ``dist/`` and
``ci-out/`` are kept as artifacts. Templates: ``mpforge/ci/templates/<provider>.yml.j2``.

**Runners** (``--runner``):

``container`` (default)  each job runs in ``debian:bookworm`` and apt-installs
                         exactly :meth:`~mpforge.core.config.Catalog.debian_packages`
                         of its port, plus ccache and what the bare image lacks
                         for HTTPS (:data:`IMAGE_PACKAGES`);
``shell``                self-hosted shell runners with the toolchains already
                         installed: no image, no container, no apt-get.

**Ports left out.** A port whose toolchain (or the toolchain of a port it
``needs``) has no Debian package cannot be installed in the image, and a shell
runner cannot be assumed to have it: its job would be red on every run for a
reason known in advance. Such a port is left out, and named in the file's
header with the reason, unless its install folder on the runner is given
(``--with-xc16 PATH``: ``toolchain_dirs={"xc16": PATH}``); then the job sets
the toolchain's ``path_env`` (``XC16_DIR``) and installs nothing for it.

**Caches** (``.git/modules``, ``build/sources``, ``.ccache``), one key per job
and board, built from what changes the objects: the toolchain (its data file
and packages, and on GitHub the compiler's version as the job sees it), the
tree pin (the gitlink of ``micropython``) and the patch series (``patches/**``):

* GitHub (caches are immutable once saved): the key is computed in the job
  (``git rev-parse HEAD:micropython``, ``hashFiles('patches/**')``, the
  compiler's version probe), with ``restore-keys`` from the most to the least
  specific prefix (same pin, same board, same toolchain: another board's
  objects still give hits);
* GitLab (a cache key cannot be computed by the job): pin and patches hash
  are written into the file when it is generated (regenerate it after moving
  the pin or editing patches, as after adding a board); ``fallback_keys``
  names a per-board key that every job also pushes ``.ccache`` to, so a job
  whose inputs changed starts from the newest objects of its board.

**A device-test job on a labgrid farm** (``--farm 'labgrid:board=PYBV10_QEMU'``,
``Settings.farm``): one job more (:class:`FarmJob`) builds the board the spec's
``board`` tag names (of the port that has it) and runs ``invoke test --device SPEC
--jobs N --retry-failed 1`` on the farm's places, with its JUnit as the job's report.
It runs on a runner tagged :data:`FARM_RUNNER_TAG` (one that reaches the coordinator
and the exporters' hosts); ``LG_COORDINATOR`` (``HOST:PORT``) is a variable of the
pipeline (GitHub: the repository variable ``vars.LG_COORDINATOR``; GitLab: a CI/CD
variable, which overrides the empty default the file declares), and each job is its
own labgrid user (``LG_USERNAME``: the job's id), so that two jobs never share a place.

**A performance job** (``--perf``, ``Settings.perf``; :class:`PerfJob`): on pull/merge
requests only, the unix port's machine plus valgrind (the ``valgrind`` tool's Debian
packages of the data) runs ``invoke perf --base <target branch> --check --markdown
ci-out/perf.md`` with the target branch's history (GitHub ``fetch-depth: 0``, GitLab
``GIT_DEPTH: 0``) and puts the table where a reviewer reads it: GitHub's job summary
(``$GITHUB_STEP_SUMMARY``), GitLab's merge request widget (an artifact ``expose_as``).

**A shared compile cache** (ccache remote storage, :mod:`mpforge.firmware.ccache_remote`):
every job that builds reads the URL from the CI variable ``MPFORGE_CCACHE_REMOTE``
(GitHub: the repository secret or variable of that name; GitLab: a CI/CD variable, over
the empty default the file declares) and hands it on read-write on a push to the default
branch and with ``|read-only`` appended to each entry on anything else (pull/merge requests,
other branches): only the default branch fills the team's cache. Without the variable a job
keeps its own cache only (:data:`CCACHE_REMOTE_GITHUB`, :data:`CCACHE_REMOTE_GITLAB`).

``CCACHE_DIR`` points into the workspace, as the job sees it: GitLab's
``$CI_PROJECT_DIR/.ccache``, and on GitHub a step writes
``$GITHUB_WORKSPACE/.ccache`` to ``$GITHUB_ENV`` (``${{ github.workspace }}``
is the host's path, wrong inside a container).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mpforge.core.config import PortDef, ToolchainDef
from mpforge.core.errors import ConfigError
from mpforge.core.project import Project
from mpforge.firmware import ccache as ccache_mod
from mpforge.tree.git import Git
from mpforge.tree.patches import read_series

#: the provider templates, ``<provider>.yml.j2``
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: where a user edits them, as the generated file's header names it: the folder's own
#: path within the checkout (so a move of the package cannot leave the header wrong)
TEMPLATES_IN_CHECKOUT = TEMPLATES.relative_to(Path(__file__).resolve().parents[3]).as_posix()

PROVIDERS = ("github", "gitlab")
RUNNERS = ("container", "shell")
#: the image of container jobs
IMAGE = "debian:bookworm"
#: what the bare image lacks that every job needs: certificates for HTTPS (git
#: clones, pip). ``apt-get --no-install-recommends git`` leaves them out.
IMAGE_PACKAGES = ["ca-certificates"]
#: what the caches keep: the submodules' git objects, pinned sources, ccache's objects
CACHE_PATHS = [".git/modules", "build/sources", ".ccache"]
#: the runner tag of the device-test job: a runner that reaches the labgrid farm
FARM_RUNNER_TAG = "labgrid"
#: places the device-test job shards over (fewer free: it uses those there are)
FARM_JOBS = 3
#: the CI variable that holds the shared compile cache's URL (what mpforge itself reads)
CCACHE_REMOTE_VARIABLE = "MPFORGE_CCACHE_REMOTE"
#: the one-line shell that sets it for the job's later commands: read-write on a push to the
#: default branch, else ``|read-only`` after every entry (``set -f``: no globbing of a URL)
_READ_ONLY = "set -f; REMOTE=$(printf '%s|read-only ' $REMOTE); set +f; REMOTE=${REMOTE% }"
#: GitHub: a step whose ``REMOTE`` and ``WRITE`` come from the step's env (see the template)
CCACHE_REMOTE_GITHUB = (
    'if [ -z "$REMOTE" ]; then echo "no MPFORGE_CCACHE_REMOTE: this job\'s own ccache only"; exit 0; fi\n'
    f'if [ "$WRITE" = true ]; then echo "shared compile cache: read-write (a push to the default branch)"\n'
    f'else {_READ_ONLY}; echo "shared compile cache: read-only"; fi\n'
    'echo "MPFORGE_CCACHE_REMOTE=$REMOTE" >> "$GITHUB_ENV"\n')
#: GitLab: the first line of ``before_script`` (it and ``script`` are one shell)
CCACHE_REMOTE_GITLAB = (
    'if [ -z "${MPFORGE_CCACHE_REMOTE:-}" ]; then echo "no MPFORGE_CCACHE_REMOTE: this job\'s own ccache only"; '
    'elif [ "$CI_PIPELINE_SOURCE" = push ] && [ "$CI_COMMIT_BRANCH" = "$CI_DEFAULT_BRANCH" ]; then '
    'echo "shared compile cache: read-write (a push to $CI_DEFAULT_BRANCH)"; '
    f'else REMOTE=$MPFORGE_CCACHE_REMOTE; {_READ_ONLY}; export MPFORGE_CCACHE_REMOTE=$REMOTE; '
    'echo "shared compile cache: read-only"; fi')
#: where the perf job writes its table (and the JSON contract)
PERF_MARKDOWN = "ci-out/perf.md"
PERF_JSON = "ci-out/perf.json"
#: the port the perf job measures (``invoke perf``'s host mode)
PERF_PORT = "unix"


@dataclass(frozen=True)
class Settings:
    """What ``invoke ci-generate`` was asked for."""

    provider: str = "github"
    runner: str = "container"
    #: toolchain name -> its install folder on the runner (``--with-xc16 PATH``)
    toolchain_dirs: dict[str, str] = field(default_factory=dict)
    #: a ``labgrid:TAG=VALUE`` spec: add a device-test job on that farm (``--farm``)
    farm: str = ""
    #: add the performance job for pull/merge requests (``--perf``)
    perf: bool = False


@dataclass
class Job:
    """One generated job: a port, with its boards as a matrix."""

    id: str  # the port name as a job name (``bare_arm``)
    port: str
    boards: list[str]
    #: Debian packages the job installs (empty on shell runners)
    packages: list[str]
    #: the pip install argument: ``.`` or ``.[esp8266]``
    pip_target: str
    #: variables the job sets (``XC16_DIR`` when its toolchain's folder was given)
    env: dict[str, str]
    #: ``<toolchain>-<digest of its data and packages>``: the toolchain part of cache keys
    toolchain_id: str
    #: a shell command whose output identifies the compiler (GitHub's cache key)
    compiler_probe: str
    #: the tree pin and the patch series digest, as generated (GitLab's cache key)
    pin: str
    patches: str
    #: the cache key, its fallbacks and GitLab's per-board key (see :func:`cache_keys`)
    key: str = ""
    restore_keys: list[str] = field(default_factory=list)
    rolling_key: str = ""
    #: more of ``invoke ci``'s options (`` --tests none`` in a board matrix whose port's
    #: suite runs in its emulated job; `` --boards PYBV10_QEMU`` there)
    ci_args: str = ""
    #: the Cobertura file the job writes (``invoke ci --coverage``), published as GitLab's
    #: ``coverage_report``; "" for a port without a coverage variant
    coverage_report: str = ""
    #: the job's display name, where the port's name alone would not tell it apart
    title: str = ""


@dataclass
class FarmJob:
    """The device-test job on a labgrid farm (see the module docstring)."""

    spec: str  # the ``--device`` spec: ``labgrid:board=PYBV10_QEMU``
    board: str  # the board built for it (the spec's ``board`` tag)
    base: Job  # the port's job: packages, pip, cache keys
    tag: str = FARM_RUNNER_TAG
    jobs: int = FARM_JOBS

    @property
    def id(self) -> str:
        return f"{self.base.id}_farm"

    @property
    def port(self) -> str:
        return self.base.port


@dataclass
class PerfJob:
    """The pull/merge request job of ``invoke perf --base <target> --check`` (module docstring)."""

    base: Job  # the unix port's job: pip, probe, cache keys
    #: its packages and valgrind's (empty on shell runners)
    packages: list[str]
    id: str = "perf"
    markdown: str = PERF_MARKDOWN
    json: str = PERF_JSON

    @property
    def port(self) -> str:
        return self.base.port

    def command(self, target: str) -> str:
        """The gate's command line against the target branch ``target`` (a shell word)."""
        return (f"invoke perf --base {target} --check --markdown {self.markdown} --json {self.json}")


@dataclass
class Pipeline:
    """Everything a template renders: the jobs, and the ports left out with the reason."""

    settings: Settings
    jobs: list[Job]
    left_out: dict[str, str]
    #: the tree's folder in the checkout (its gitlink is the pin)
    tree_dir: str = "micropython"
    image: str = IMAGE
    farm: FarmJob | None = None
    perf: PerfJob | None = None


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:12]


def tree_pin(project: Project) -> str:
    """The tree's gitlink as it would be committed (the index: ``git ls-files --stage``)."""
    if not project.tree_is_submodule:
        raise ConfigError("the tree is not this checkout's micropython/ submodule",
                          "generate pipelines from the checkout itself (unset MPFORGE_TREE)")
    rel = project.tree.relative_to(project.root).as_posix()
    out = Git(project.executor).query(project.root, "ls-files", "--stage", "--", rel)
    fields = out.split()
    if len(fields) < 2 or fields[0] != "160000":
        raise ConfigError(f"{rel} is not a submodule of this checkout's git index",
                          f"add the pin first: git submodule add ... {rel}, or git add {rel}")
    return fields[1]


def patches_digest(project: Project) -> str:
    """A digest of every file under ``patches/`` (names and contents)."""
    root = project.patches_dir
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return _digest(*(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() for p in files))


def boards_with_series(project: Project, port: PortDef) -> list[str]:
    """The port's boards as the jobs see them: the tree's, once the patch series is applied.

    The series may add a board (``PYBV10_QEMU``); whether the local tree has it
    applied right now must not change the generated file, so the boards the
    series creates or deletes are read from the patches themselves (``git apply
    --summary``, which changes nothing).
    """
    boards = set(port.boards(project.tree))
    folder = f"{port.make_dir}/{port.boards_dir}/"
    mode = re.compile(r"^\s*(create|delete) mode \d+ (\S+)$")
    for patch in read_series(project.patches_dir):
        summary = project.executor.output(["git", "apply", "--summary", f"-p{patch.strip}",
                                           str(patch.path)], cwd=project.tree)
        for line in summary.splitlines():
            match = mode.match(line)
            if not match or not match.group(2).startswith(folder):
                continue
            board, _, rest = match.group(2)[len(folder):].partition("/")
            if rest == port.board_marker:
                (boards.add if match.group(1) == "create" else boards.discard)(board)
    return sorted(boards)


def _installable(toolchain: ToolchainDef, settings: Settings) -> str:
    """Why ``toolchain`` cannot be had in a job ("" when it can)."""
    if toolchain.debian or toolchain.name in settings.toolchain_dirs:
        return ""
    if not toolchain.path_env:
        return f"toolchain {toolchain.name} has no Debian package and no install-folder variable"
    return (f"toolchain {toolchain.name} has no Debian package: pass --with-{toolchain.name} PATH "
            f"(its install folder on the runner) to generate this job")


def _compiler_probe(toolchain: ToolchainDef, env: dict[str, str]) -> str:
    """The toolchain's version probe as a shell command, on a PATH with its given folder."""
    probe = shlex.join(toolchain.probe)
    if toolchain.path_env in env:
        return f'PATH="${toolchain.path_env}/{toolchain.path_subdir}:$PATH" {probe}'
    return probe


def plan(project: Project, settings: Settings) -> Pipeline:
    """The jobs to generate, and the ports left out with the reason."""
    if settings.provider not in PROVIDERS:
        raise ConfigError(f"unknown CI provider '{settings.provider}'",
                          f"use one of: {', '.join(PROVIDERS)}")
    if settings.runner not in RUNNERS:
        raise ConfigError(f"unknown runner kind '{settings.runner}'",
                          f"use one of: {', '.join(RUNNERS)}")
    catalog = project.catalog
    for name in settings.toolchain_dirs:
        if name not in catalog.toolchains:
            raise ConfigError(f"unknown toolchain '{name}'",
                              f"valid toolchains: {', '.join(sorted(catalog.toolchains))}")
    pin, patches = tree_pin(project), patches_digest(project)
    jobs: list[Job] = []
    left_out: dict[str, str] = {}
    for name in sorted(catalog.ports):
        # the port's toolchain and those of the ports it needs (esp8266: mpy-cross's)
        used = dict.fromkeys(catalog.port(p).toolchain for p in catalog.with_needs([name]))
        toolchains = [catalog.toolchains[t] for t in used]
        reason = next((r for r in (_installable(t, settings) for t in toolchains) if r), "")
        if reason:
            left_out[name] = reason
            continue
        port = catalog.port(name)
        job = _job(project, port, toolchains, settings, pin, patches)
        found = [job]
        emulators = port.test.emulators if port.test.device is not None else {}
        if emulators and job.boards:
            # the board matrix builds; one job more tests on the emulated board
            emulator = sorted(emulators)[0]
            board = emulators[emulator].board or port.default_board
            job.ci_args = " --tests none"
            found.append(replace(job, id=f"{job.id}_{emulator}", boards=[], ci_args=f" --boards {board}",
                                 title=f"{port.name} on emulated {board} ({emulator})"))
        for each in found:
            each.key, each.restore_keys, each.rolling_key = cache_keys(each, settings.provider)
        jobs += found
    farm = _farm_job(project, settings.farm, jobs) if settings.farm else None
    perf = _perf_job(project, settings, jobs) if settings.perf else None
    return Pipeline(settings, jobs, left_out, project.tree.relative_to(project.root).as_posix(),
                    farm=farm, perf=perf)


def _perf_job(project: Project, settings: Settings, jobs: list[Job]) -> PerfJob:
    """The perf job, on the machine of the unix port's job plus valgrind."""
    base = next((j for j in jobs if j.port == PERF_PORT), None)
    if base is None:
        raise ConfigError(f"--perf: the pipeline has no {PERF_PORT} job to measure on",
                          f"the perf gate counts instructions of the {PERF_PORT} port: keep its port data")
    tool = project.catalog.tools.get("valgrind")
    valgrind = list(tool.debian) if tool and tool.debian else ["valgrind"]
    packages = list(dict.fromkeys([*base.packages, *valgrind])) if settings.runner == "container" else []
    return PerfJob(base, packages)


def _farm_job(project: Project, spec: str, jobs: list[Job]) -> FarmJob:
    """The device-test job for ``spec`` (``--farm``): its ``board`` tag picks the board and
    the port (the first whose boards, patch series included, or emulated boards have it)."""
    from mpforge.device.spec import parse_place

    parsed = parse_place(spec)
    board = dict(parsed.tags).get("board", "")
    if not board:
        raise ConfigError(f"--farm {spec}: which board? the spec has no board tag",
                          "name the board the places carry: --farm 'labgrid:board=PYBV10_QEMU'")
    for job in jobs:
        port = project.catalog.port(job.port)
        if port.test.device is None or not port.has_boards:
            continue
        emulated = {e.board for e in port.test.emulators.values()}
        if board in emulated or board in boards_with_series(project, port):
            base = next((j for j in jobs if j.port == job.port and not j.ci_args.startswith(" --boards")), job)
            return FarmJob(str(parsed), board, base)
    raise ConfigError(f"--farm {spec}: no port with device tests has a board {board}",
                      "the board tag must name a board of a port (invoke build --board list)")


def _job(project: Project, port: PortDef, toolchains: list[ToolchainDef], settings: Settings,
         pin: str, patches: str) -> Job:
    """One port's job (its cache keys are added by :func:`cache_keys`)."""
    catalog = project.catalog
    container = settings.runner == "container"
    packages = (list(dict.fromkeys([*IMAGE_PACKAGES, *catalog.debian_packages([port.name], emulators=True),
                                    *ccache_mod.debian_packages(project)]))
                if container else [])
    env = {t.path_env: settings.toolchain_dirs[t.name] for t in toolchains
           if t.name in settings.toolchain_dirs and t.path_env}  # toolchains given by folder
    boards = boards_with_series(project, port) if port.has_boards else []
    if port.has_boards and not boards:
        if not (project.tree / "py").is_dir():
            raise ConfigError(f"cannot list the boards of {port.name}: micropython/ is not fetched",
                              "run `invoke fetch` first (boards are read from the tree)")
        boards = [port.default_board]  # the tree has no boards folder for this port
    toolchain = catalog.toolchain_for(port)
    source = toolchain.source.read_bytes() if toolchain.source else b""
    toolchain_id = f"{toolchain.name}-" + _digest(
        source, " ".join(packages).encode(), (IMAGE if container else "shell").encode())
    # esptool comes from PyPI, through the package's extra of the same purpose; gcovr the same
    measured = port.test.host is not None and "coverage" in port.variants
    pip_target = (".[esp8266]" if "esptool" in catalog.tools_for(port)
                  else ".[coverage]" if measured else ".")
    return Job(id=port.name.replace("-", "_"), port=port.name, boards=boards, packages=packages,
               pip_target=pip_target, env=env, toolchain_id=toolchain_id,
               compiler_probe=_compiler_probe(toolchain, env), pin=pin, patches=patches,
               ci_args=" --coverage" if measured else "",
               coverage_report=f"ci-out/coverage/{port.name}/coverage.xml" if measured else "")


def cache_keys(job: Job, provider: str) -> tuple[str, list[str], str]:
    """The cache key of ``job``, its fallbacks (most specific first), and GitLab's per-board key.

    Order of the parts: port, toolchain, board, tree pin, patches; a fallback
    drops parts from the end. On GitHub the job computes pin and compiler
    version (step ``inputs``) and ``hashFiles`` the patches; on GitLab they are
    the values at generation.
    """
    if provider == "github":
        toolchain = f"{job.toolchain_id}-${{{{ steps.inputs.outputs.compiler }}}}"
        board = "-${{ matrix.board }}" if job.boards else ""
        pin, patches = "${{ steps.inputs.outputs.pin }}", "${{ hashFiles('patches/**') }}"
    else:
        toolchain, board = job.toolchain_id, "-$BOARD" if job.boards else ""
        pin, patches = job.pin[:12], job.patches
    base = f"mpforge-{job.id}-{toolchain}"
    key = f"{base}{board}-{pin}-{patches}"
    if provider == "github":
        restore = [f"{base}{board}-{pin}-", f"{base}{board}-"] + ([f"{base}-"] if board else [])
        return key, restore, ""
    rolling = f"{base}{board}-latest"
    return key, [rolling], rolling


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = json.dumps  # a JSON string is a YAML double-quoted scalar
    return env


def render(project: Project, provider: str = "github", *, runner: str = "container",
           toolchain_dirs: dict[str, str] | None = None, farm: str = "", perf: bool = False) -> str:
    """The pipeline file's text; see the module docstring."""
    return render_plan(plan(project, Settings(provider, runner, dict(toolchain_dirs or {}), farm, perf)))


def render_plan(pipeline: Pipeline) -> str:
    """Render an already computed :func:`plan` (the task also reports what it left out)."""
    settings = pipeline.settings
    return _environment().get_template(f"{settings.provider}.yml.j2").render(
        jobs=pipeline.jobs, left_out=pipeline.left_out, runner=settings.runner,
        container=settings.runner == "container", image=pipeline.image,
        cache_paths=CACHE_PATHS, tree_dir=pipeline.tree_dir, templates=TEMPLATES_IN_CHECKOUT,
        farm=pipeline.farm, perf=pipeline.perf, remote_variable=CCACHE_REMOTE_VARIABLE,
        ccache_remote_github=CCACHE_REMOTE_GITHUB, ccache_remote_gitlab=CCACHE_REMOTE_GITLAB)
