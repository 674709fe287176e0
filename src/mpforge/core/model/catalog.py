"""Every port, toolchain and host tool of the checkout, loaded and checked against each other.

Each file is loaded through the model (:mod:`mpforge.core.model.defs`); what one file
cannot check alone is checked here: a port's toolchain and host tools exist, the ports
it ``needs`` exist, and ``needs`` has no cycle (a port that needs itself, or ``a`` needs
``b`` needs ``a``), named in one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mpforge.core.errors import ConfigError, UnknownTarget
from mpforge.core.model.defs import PortDef, ToolchainDef, ToolDef, shown_path
from mpforge.core.model.loader import load
from mpforge.core.model.toolchains import HostToolsFile

#: the toolchains/ file of host programs (not a toolchain)
HOST_TOOLS = "host-tools.toml"


@dataclass
class Catalog:
    """Every port, toolchain and host tool the project defines."""

    ports: dict[str, PortDef]
    toolchains: dict[str, ToolchainDef]
    tools: dict[str, ToolDef]
    #: tools every port needs (``[project] tools`` of ``host-tools.toml``)
    project_tools: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, ports_dir: Path, toolchains_dir: Path) -> Catalog:
        if not ports_dir.is_dir():
            raise ConfigError(f"no ports folder at {ports_dir}", "run mpforge from the project checkout")
        ports = {p.stem: PortDef.from_file(p) for p in sorted(ports_dir.glob("*.toml"))}
        toolchains = {p.stem: ToolchainDef.from_file(p)
                      for p in sorted(toolchains_dir.glob("*.toml")) if p.name != HOST_TOOLS}
        tools: dict[str, ToolDef] = {}
        project_tools: list[str] = []
        host_tools = toolchains_dir / HOST_TOOLS
        if host_tools.exists() or host_tools.is_symlink():
            raw = load(HostToolsFile, host_tools, shown_path(host_tools))
            tools = {name: ToolDef.from_table(name, table) for name, table in raw.tools.items()}
            project_tools = list(raw.project.tools)
        catalog = cls(ports, toolchains, tools, project_tools)
        catalog._check_references()
        return catalog

    def _check_references(self) -> None:
        for port in self.ports.values():
            if port.toolchain not in self.toolchains:
                raise ConfigError(f"ports/{port.name}.toml names unknown toolchain '{port.toolchain}'",
                                  f"add toolchains/{port.toolchain}.toml or fix the name")
            for need in port.needs:
                if need not in self.ports:
                    raise ConfigError(f"ports/{port.name}.toml needs unknown port '{need}'",
                                      f"valid ports: {', '.join(sorted(self.ports))}")
            emulated = [t for e in port.test.emulators.values() for t in e.tools]
            for tool in [*self.tools_for(port), *emulated]:
                if tool not in self.tools:
                    raise ConfigError(f"ports/{port.name}.toml needs unknown host tool '{tool}'",
                                      "define it in toolchains/host-tools.toml")
        for name in sorted(self.ports):
            cycle = self._cycle_from(name)
            if cycle:
                raise ConfigError(f"ports/{name}.toml: needs: a cycle: {' -> '.join(cycle)}",
                                  "a port cannot need itself, directly or through others; "
                                  f"fix 'needs' in ports/{name}.toml")

    def _cycle_from(self, start: str) -> list[str]:
        """The first cycle of ``needs`` reached from ``start`` (``[a, b, a]``), or ``[]``."""
        path: list[str] = []
        done: set[str] = set()

        def visit(name: str) -> list[str]:
            if name in path:
                return [*path[path.index(name):], name]
            if name in done:
                return []
            path.append(name)
            for need in self.ports[name].needs:
                found = visit(need)
                if found:
                    return found
            path.pop()
            done.add(name)
            return []

        return visit(start)

    def port(self, name: str) -> PortDef:
        if name not in self.ports:
            raise UnknownTarget(f"unknown port '{name}'",
                                f"valid ports: {', '.join(sorted(self.ports))}")
        return self.ports[name]

    def toolchain_for(self, port: PortDef) -> ToolchainDef:
        return self.toolchains[port.toolchain]

    def tools_for(self, port: PortDef) -> list[str]:
        """Every host tool ``port`` needs: the project's, the port's and its deplibs', each once."""
        names = [*self.project_tools, *port.tools, *(t for d in port.deplibs for t in d.tools)]
        return list(dict.fromkeys(names))

    def with_needs(self, ports: list[str]) -> list[str]:
        """``ports`` preceded by the ports they need (``needs``, transitively), each once.

        :meth:`load` has refused cycles, so this ends; the ``seen`` set keeps it so for a
        catalog built by hand."""
        ordered: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for need in self.port(name).needs:
                visit(need)
            ordered.append(name)

        for name in ports:
            visit(name)
        return ordered

    def needed(self, ports: Iterable[PortDef]) -> list[PortDef]:
        """:meth:`with_needs` for ports themselves: ``ports`` preceded by what they need."""
        return [self.port(name) for name in self.with_needs([p.name for p in ports])]

    def debian_packages(self, ports: list[str], *, emulators: bool = False) -> list[str]:
        """The Debian packages that give ``ports`` everything they need, in a stable order.

        This one list feeds the README's install line, ``.ci/run``, ``invoke doctor
        --fix`` and the generated pipelines: the project tools, each port's
        toolchain and host tools, and the packages of its deplibs' aclocal macros.
        ``emulators`` adds the tools of the ports' emulators (QEMU), which a CI job that
        tests on emulated boards needs. Tools packaged elsewhere (esptool from PyPI,
        XC16) add nothing here.
        """
        packages: list[str] = []
        for name in self.with_needs(ports):
            port = self.port(name)
            packages += self.toolchain_for(port).debian
            emulated = [t for e in port.test.emulators.values() for t in e.tools] if emulators else []
            for tool in [*self.tools_for(port), *emulated]:
                packages += self.tools[tool].debian
            packages += [pkg for d in port.deplibs for pkg in d.aclocal_macros.values()]
        if not ports:
            packages += [p for t in self.project_tools for p in self.tools[t].debian]
        return list(dict.fromkeys(packages))
