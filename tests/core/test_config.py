"""Loading ports/toolchains data and resolving targets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import REPO, project_for
from mpforge.core.config import Catalog, PortDef, expand
from mpforge.core.errors import ConfigError, UnknownTarget


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


MINIMAL_PORT = """
make_dir = "stmhal"
toolchain = "arm-none-eabi"
[boards]
dir = "boards"
default = "PYBV10"
[[artifacts]]
path = "{build}/firmware.dfu"
"""


def test_the_repositorys_own_data_loads_and_is_consistent():
    catalog = Catalog.load(REPO / "ports", REPO / "toolchains")
    unix = catalog.port("unix")
    assert unix.toolchain == "host-gcc" and not unix.has_boards
    assert [d.name for d in unix.deplibs] == ["axtls", "libffi"]
    assert "-Werror" in unix.make_vars["CWARN"]
    assert {"host-gcc", "arm-none-eabi", "xtensa-lx106", "xc16"} <= set(catalog.toolchains)
    assert catalog.toolchains["xc16"].path_env == "XC16_DIR"
    assert catalog.tools["libtool"].debian == ["libtool", "libltdl-dev"]  # ltdl.m4: a mere Recommends
    assert "libltdl-dev" in catalog.debian_packages(["unix"])
    assert "gcc" in catalog.debian_packages(["esp8266"])  # through mpy-cross, which it needs
    # steps written as { in = ..., run = [...] } keep their folder
    libffi = unix.deplibs[1]
    assert libffi.steps[0] == ("", ["./autogen.sh"])
    assert libffi.steps[1][0] == "build_dir"


def test_boards_are_read_from_the_tree(tmp_path):
    port = PortDef.from_file(write(tmp_path / "ports" / "stmhal.toml", MINIMAL_PORT))
    tree = tmp_path / "tree"
    for board in ("PYBV10", "PYBV11", "STM32F4DISC"):
        write(tree / "stmhal" / "boards" / board / "mpconfigboard.h", "")
    (tree / "stmhal" / "boards" / "not-a-board").mkdir()
    write(tree / "stmhal" / "boards" / "stm32f4xx_prefix.c", "")
    assert port.boards(tree) == ["PYBV10", "PYBV11", "STM32F4DISC"]
    assert port.target_name("PYBV11") == "stmhal-PYBV11"


def test_target_resolution_checks_board_names_against_the_tree(tmp_path):
    root = tmp_path / "proj"
    write(root / "ports" / "stmhal.toml", MINIMAL_PORT)
    write(root / "toolchains" / "arm-none-eabi.toml", 'cross_compile = "arm-none-eabi-"\n')
    write(root / "micropython" / "stmhal" / "boards" / "PYBV10" / "mpconfigboard.h", "")
    project = project_for(root)
    target = project.target("stmhal")
    assert target.name == "stmhal-PYBV10"
    assert target.build_dir == root / "build" / "stmhal-PYBV10"
    assert target.placeholders()["cross"] == "arm-none-eabi-"
    with pytest.raises(UnknownTarget, match="unknown board 'NOPE'.*valid boards: PYBV10"):
        project.target("stmhal", "NOPE")
    with pytest.raises(UnknownTarget, match="valid ports: stmhal"):
        project.target("esp32")


@pytest.mark.parametrize("body, message", [
    ("make_dir = 1\ntoolchain='x'\n[[artifacts]]\npath='a'", "make_dir: expected a string, got 1"),
    ("toolchain = 'host-gcc'\n[[artifacts]]\npath='a'", "missing required key 'make_dir': expected a string"),
    ("make_dir = 'x'\ntoolchain = 'host-gcc'", "missing required key 'artifacts'"),
    ("make_dir = 'x'\ntoolchain = 'host-gcc'\n[[artifacts]]\npath='a'\n[[deplibs]]\n"
     "name='d'\nsource='s'\nsteps=[[]]",
     "deplibs[0].steps[0]: expected a non-empty list of strings or a table, got []"),
    ("make_dir = [", "invalid TOML"),
])
def test_malformed_port_files_name_the_file_and_problem(tmp_path, body, message):
    path = write(tmp_path / "bad.toml", body)
    with pytest.raises(ConfigError) as info:
        PortDef.from_file(path)
    assert message in info.value.message
    assert info.value.message.startswith(f"{path}: ")


def test_unknown_toolchain_or_tool_is_reported(tmp_path):
    write(tmp_path / "ports" / "p.toml",
          "make_dir='p'\ntoolchain='zz'\n[[artifacts]]\npath='a'\n")
    (tmp_path / "toolchains").mkdir()
    with pytest.raises(ConfigError, match="unknown toolchain 'zz'"):
        Catalog.load(tmp_path / "ports", tmp_path / "toolchains")
    write(tmp_path / "toolchains" / "zz.toml", "")
    write(tmp_path / "ports" / "p.toml",
          "make_dir='p'\ntoolchain='zz'\ntools=['frob']\n[[artifacts]]\npath='a'\n")
    with pytest.raises(ConfigError, match="unknown host tool 'frob'"):
        Catalog.load(tmp_path / "ports", tmp_path / "toolchains")


def test_expand_fills_placeholders_and_rejects_unknown_ones():
    assert expand("{build}/x-{board}", {"build": "/b", "board": "B"}) == "/b/x-B"
    with pytest.raises(ConfigError, match=r"unknown placeholder \{nope\}"):
        expand("{nope}", {"build": "/b"})


@pytest.mark.parametrize("table, line, message, hint", [
    ("[flash]", 'usb_idd = "0483:df11"', "unknown key 'flash.usb_idd'", "did you mean 'usb_id'?"),
    ("[test.emulator.qemu]", 'comand = "qemu"', "unknown key 'test.emulator.qemu.comand'",
     "did you mean 'command'?"),
    ("", 'toolchian = "x"', "unknown key 'toolchian'", "did you mean 'toolchain'?"),
])
def test_a_typo_key_in_port_data_is_refused_by_name(tmp_path, table, line, message, hint):
    ports = tmp_path / "ports"
    shutil.copytree(REPO / "ports", ports)
    shutil.copytree(REPO / "toolchains", tmp_path / "toolchains")
    stmhal = ports / "stmhal.toml"
    text = stmhal.read_text()
    if table:
        assert table in text
        text = text.replace(table + "\n", f"{table}\n{line}\n", 1)
    else:
        text = f"{line}\n{text}"
    stmhal.write_text(text)
    with pytest.raises(ConfigError) as caught:
        Catalog.load(ports, tmp_path / "toolchains")
    assert caught.value.message == f"ports/stmhal.toml: {message}"
    assert caught.value.hint == hint


PROBES = [  # issue 31 items 5 and 6: (what is added to stmhal.toml, the one line)
    ("[size_regions.iram]\nsections = ['.text']\nlimit = 'big'\n",
     'size_regions.iram.limit: expected an integer >= 0, got "big"'),
    ("[make]\npost = ['objcopy', '-O']\n", 'make.post[0]: expected a non-empty list of strings, got "objcopy"'),
    ("[make]\npost = 'rm'\n", 'make.post: expected a list of non-empty lists of strings, got "rm"'),
    ("[flash]\nrunner = 12\n", "flash.runner: expected a string, got 12"),
    ("[variants.debug]\nmake_vars = 1\n", "variants.debug.make_vars: expected a table of strings, got 1"),
    ("[boards.make_vars]\nPYBV10 = 'x'\n", 'boards.make_vars.PYBV10: expected a table of strings, got "x"'),
    ("[[sources]]\nname = 1\nurl = 'u'\nrev = 'r'\n", "sources[0].name: expected a string, got 1"),
    ("[test.emulator.qemu]\ncommand = ['q']\n", 'test.emulator.qemu.command: expected a string, got ["q"]'),
]


@pytest.mark.parametrize("extra, line", PROBES)
def test_each_wrong_type_is_one_line_naming_file_key_expected_and_got(tmp_path, extra, line):
    base = "make_dir = 'stmhal'\ntoolchain = 'arm-none-eabi'\n[[artifacts]]\npath = 'a'\n"
    path = write(tmp_path / "ports" / "stmhal.toml", base + extra)
    with pytest.raises(ConfigError) as caught:
        PortDef.from_file(path)
    assert caught.value.message == f"ports/stmhal.toml: {line}"
    assert "\n" not in caught.value.one_line()


def test_binary_garbage_a_fifo_and_a_link_to_dev_zero_are_refused_in_one_line(tmp_path):
    import os
    ports = tmp_path / "ports"
    garbage = write(ports / "a.toml", "")
    garbage.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"ports/a.toml: not UTF-8 text \(byte 0xff at offset 0\)"):
        PortDef.from_file(garbage)
    fifo = ports / "b.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="ports/b.toml: is a FIFO, not a regular file"):
        PortDef.from_file(fifo)
    zero = ports / "c.toml"
    zero.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="ports/c.toml: is a character device, not a regular file"):
        PortDef.from_file(zero)
    huge = write(ports / "d.toml", "# x\n" * 300_000)
    with pytest.raises(ConfigError, match="ports/d.toml: larger than 1024 KiB"):
        PortDef.from_file(huge)


@pytest.mark.parametrize("needs, cycle", [
    ({"p": ["p"]}, "p -> p"),
    ({"p": ["q"], "q": ["p"]}, "p -> q -> p"),
])
def test_needs_naming_its_own_port_or_a_cycle_is_named(tmp_path, needs, cycle):
    for name, need in needs.items():
        write(tmp_path / "ports" / f"{name}.toml",
              f"make_dir='x'\ntoolchain='zz'\nneeds={need!r}\n[[artifacts]]\npath='a'\n")
    write(tmp_path / "toolchains" / "zz.toml", "")
    with pytest.raises(ConfigError) as caught:
        Catalog.load(tmp_path / "ports", tmp_path / "toolchains")
    assert caught.value.message.endswith(f"needs: a cycle: {cycle}")
