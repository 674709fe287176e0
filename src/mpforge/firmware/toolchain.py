"""Finding toolchains and host tools, and reading their versions.

Detection is data driven: each :class:`~mpforge.core.config.ToolchainDef` or
:class:`~mpforge.core.config.ToolDef` names a probe command; the first version
number in its output is the version. A toolchain with ``path_env`` (XC16's
``XC16_DIR``) is also looked for under ``$path_env/<path_subdir>``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from mpforge.core.config import VERSION_RE, ToolchainDef, ToolDef
from mpforge.core.errors import CommandFailed, MissingTool
from mpforge.core.executor import Executor
from mpforge.core.project import toolchain_search_path


@dataclass(frozen=True)
class Found:
    """A detected program: its version and the PATH entry (if any) it needs."""

    name: str
    version: str
    extra_path: str = ""


def _version(executor: Executor, argv: list[str], env: dict[str, str] | None) -> str:
    out = executor.output(argv, env=env, timeout=30)
    match = VERSION_RE.search(out)
    return match.group(1) if match else (out.splitlines()[0] if out else "?")


def find_toolchain(toolchain: ToolchainDef, executor: Executor) -> Found:
    """Detect ``toolchain`` or raise :class:`MissingTool` with the install hint."""
    extra, path = toolchain_search_path(toolchain)
    if shutil.which(toolchain.probe[0], path=path) is None:
        where = f" (looked on PATH and in ${toolchain.path_env}/{toolchain.path_subdir})" \
            if toolchain.path_env else " on PATH"
        raise MissingTool(toolchain.probe[0],
                          f"toolchain {toolchain.name} not found: no {toolchain.probe[0]}{where}",
                          toolchain.install_hint())
    env = {"PATH": path} if extra else None
    try:
        return Found(toolchain.name, _version(executor, toolchain.probe, env), extra)
    except CommandFailed as exc:
        raise MissingTool(toolchain.probe[0], f"toolchain {toolchain.name} is broken: {exc.message}",
                          toolchain.install_hint()) from exc


def find_tool(tool: ToolDef, executor: Executor) -> Found:
    """Detect a host tool or raise :class:`MissingTool` naming the package that provides it."""
    if shutil.which(tool.probe[0]) is None:
        purpose = f" (needed for {tool.purpose})" if tool.purpose else ""
        raise MissingTool(tool.probe[0], f"missing host tool {tool.name}{purpose}",
                          tool.install_hint())
    try:
        return Found(tool.name, _version(executor, tool.probe, None))
    except CommandFailed:
        return Found(tool.name, "?")
