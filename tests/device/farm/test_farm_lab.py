"""The farm as a labgrid lab (mpforge.device.farm.lab): the exporter's configuration and the
ser2net wrapper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ended_within
from mpforge.device.farm import lab
from mpforge.device.farm.state import FarmBoard


def test_the_exporter_config_names_a_serial_port_and_a_rest_power_port_per_board() -> None:
    boards = [FarmBoard(1, "pyb-1", "/dev/pts/7", "/s/board1.qmp"), FarmBoard(2, "pyb-2", "/dev/pts/9", None)]
    text = lab.exporter_config(boards, "http://127.0.0.1:8000")
    assert not any(line.lstrip().startswith("#") for line in text.splitlines())  # labgrid reads it as Jinja2
    assert yaml.safe_load(text) == {
        "pyb-1": {"RawSerialPort": {"port": "/dev/pts/7", "speed": 115200},
                  "NetworkPowerPort": {"model": "rest", "host": "http://127.0.0.1:8000/board/{index}/power",
                                       "index": 1}},
        "pyb-2": {"RawSerialPort": {"port": "/dev/pts/9", "speed": 115200}},  # no QMP: no power switch
    }


def test_the_ser2net_wrapper_turns_nodelay_on_and_ends_with_its_parent(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper, with a stand-in ser2net that records its arguments and then sleeps: the
    accepter gets ``tcp(nodelay)``, and when the wrapper's parent dies, so does it."""
    real = tmp_path / "real" / "ser2net"
    real.parent.mkdir()
    said = tmp_path / "args"
    real.write_text(f"#!/bin/sh\necho \"$@\" > {said}\nexec sleep 30\n")
    real.chmod(0o755)
    monkeypatch.setenv("PATH", f"{real.parent}{os.pathsep}{os.environ['PATH']}")
    wrapper = lab.ser2net_wrapper(tmp_path / "farm") / "ser2net"
    # a parent that starts the wrapper and then exits (as an exporter that is stopped)
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               f"p = subprocess.Popen([{str(wrapper)!r}, '-C', {lab.ACCEPTER + '1234'!r}])\n"
                               "print(p.pid, flush=True)\n"
                               f"while not __import__('os').path.exists({str(said)!r}): time.sleep(0.02)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.wait(10)
    assert said.read_text().split() == ["-C", lab.ACCEPTER_NODELAY + "1234"]
    assert ended_within(child, 5), "ser2net outlived its exporter"
