"""The README's commands agree with the data, and work on a brand-new Debian system.

A newcomer copies the README's first command into a fresh machine; its package list
must be exactly what the data says the unix port needs (``Catalog.debian_packages``),
installed without Recommends (so nothing arrives by luck), after an ``apt-get update``
(a fresh system has no package lists).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

from conftest import REPO
from mpforge.core.config import Catalog


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def apt_install_args(command: str) -> list[str]:
    for part in command.split("&&"):
        words = shlex.split(part)
        if "apt-get" in words and "install" in words:
            return words[words.index("install") + 1:]
    raise AssertionError(f"no apt-get install in {command!r}")


def test_the_readme_installs_exactly_the_unix_ports_packages_after_an_update():
    first = readme_blocks()[0]
    steps = [shlex.split(part) for part in first.split("&&")]
    update = next(i for i, w in enumerate(steps) if w[-2:] == ["apt-get", "update"])
    install = next(i for i, w in enumerate(steps) if "install" in w and "apt-get" in w)
    assert update < install
    args = apt_install_args(first)
    assert "--no-install-recommends" in args  # the list itself must be complete
    packages = [a for a in args if not a.startswith("-")]
    catalog = Catalog.load(REPO / "ports", REPO / "toolchains")
    assert packages == catalog.debian_packages(["unix"])


def test_the_readme_test_command_is_the_one_ci_runs():
    second = readme_blocks()[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert second in ci


def test_the_package_list_is_printable_without_mpforge_installed(tmp_path):
    # .ci/run asks for it before the venv exists: standard library only
    result = subprocess.run([sys.executable, "-S", "-m", "mpforge.core.debian", "unix"], cwd=tmp_path,
                            env={"PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    catalog = Catalog.load(REPO / "ports", REPO / "toolchains")
    assert result.stdout.split() == catalog.debian_packages(["unix"])
