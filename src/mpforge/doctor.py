"""``invoke doctor``: which toolchains and host tools are here, and how to get the rest.

Every toolchain of ``toolchains/`` and every tool of
``toolchains/host-tools.toml`` is probed. A row is *required* when a port
asked for (``--port``) needs it; doctor fails only when a required row is
missing. ``--fix`` installs the Debian packages of missing rows with apt-get
(as root only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import MissingTool, MpforgeError
from .project import Project
from .toolchain import find_tool, find_toolchain


@dataclass
class Check:
    kind: str  # "toolchain" or "tool"
    name: str
    version: str  # empty when missing
    provider: str  # how to install it
    debian: list[str]
    required: bool
    note: str = ""

    @property
    def found(self) -> bool:
        return bool(self.version)


def requirements(project: Project, ports: list[str]) -> tuple[set[str], set[str]]:
    """Toolchain names and tool names the given ports need."""
    toolchains: set[str] = set()
    tools: set[str] = set()
    for name in ports:
        port = project.catalog.port(name)
        toolchains.add(port.toolchain)
        tools.update(port.tools)
        for deplib in port.deplibs:
            tools.update(deplib.tools)
    return toolchains, tools


def diagnose(project: Project, ports: list[str]) -> list[Check]:
    """Probe everything; mark what ``ports`` require."""
    need_tc, need_tools = requirements(project, ports)
    checks: list[Check] = []
    for tc in project.catalog.toolchains.values():
        try:
            found = find_toolchain(tc, project.executor)
            version, note = found.version, (f"via ${tc.path_env}" if found.extra_path else "")
        except MissingTool:
            version, note = "", ""
        checks.append(Check("toolchain", tc.name, version, tc.install_hint(), tc.debian,
                            tc.name in need_tc, note))
    for tool in project.catalog.tools.values():
        try:
            version = find_tool(tool, project.executor).version
        except MissingTool:
            version = ""
        checks.append(Check("tool", tool.name, version, tool.install_hint(),
                            tool.debian, tool.name in need_tools))
    return checks


def missing_packages(checks: list[Check]) -> list[str]:
    """Debian packages that would provide the missing rows."""
    packages: list[str] = []
    for check in checks:
        if not check.found:
            packages += [p for p in check.debian if p not in packages]
    return packages


def fix(project: Project, checks: list[Check]) -> list[str]:
    """apt-get install the Debian packages of missing rows; returns them."""
    packages = missing_packages(checks)
    if not packages:
        return []
    if os.geteuid() != 0:
        raise MpforgeError("doctor --fix installs with apt-get and needs root",
                           f"run as root, or: sudo apt-get install {' '.join(packages)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    project.executor.run(["apt-get", "update"], env=env, what="apt-get update")
    project.executor.run(["apt-get", "install", "-y", "--no-install-recommends", *packages],
                         env=env, what="apt-get install")
    return packages
