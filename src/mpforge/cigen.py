"""``invoke ci-generate``: pipeline files for GitHub Actions and GitLab CI.

One job per port (a board port's boards, read from the tree, as a matrix),
each installing the Debian packages its toolchain and tools name in
``toolchains/*.toml``, caching the submodules' git objects and ccache, and
running the same ``invoke ci`` a laptop runs; ``dist/`` and ``ci-out/`` are
kept as artifacts. Templates: ``mpforge/templates/ci/<provider>.yml.j2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .deplibs import TEMPLATES
from .errors import ConfigError
from .project import Project

PROVIDERS = ("github", "gitlab")
#: what every job needs besides its toolchain: the checkout, Python, the build tools
BASE_PACKAGES = ["git", "make", "python3", "python3-venv", "ccache"]


@dataclass
class Job:
    id: str
    port: str
    boards: list[str]
    packages: list[str]
    extras: str  # pip extras: test, plus esp8266 when the port needs esptool


def jobs(project: Project) -> list[Job]:
    catalog = project.catalog
    result = []
    for name, port in sorted(catalog.ports.items()):
        packages = list(dict.fromkeys([*BASE_PACKAGES, *catalog.debian_packages([name])]))
        tools = catalog.tools_for(port)
        extras = "test,esp8266" if "esptool" in tools else "test"
        boards = port.boards(project.tree) if port.has_boards else []
        if port.has_boards and not boards:
            if not (project.tree / "py").is_dir():
                raise ConfigError(f"cannot list the boards of {name}: micropython/ is not fetched",
                                  "run `invoke fetch` first (boards are read from the tree)")
            boards = [port.default_board]  # the tree has no boards folder for this port
        result.append(Job(name.replace("-", "_"), name, boards, packages, extras))
    return result


def render(project: Project, provider: str) -> str:
    if provider not in PROVIDERS:
        raise ConfigError(f"unknown CI provider '{provider}'", f"use one of: {', '.join(PROVIDERS)}")
    env = Environment(loader=FileSystemLoader(TEMPLATES / "ci"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(f"{provider}.yml.j2").render(jobs=jobs(project))
