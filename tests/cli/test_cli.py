"""The command line as a user meets it: help on every task, the same short flags everywhere."""

from __future__ import annotations

import pytest

from conftest import REPO, run_task
from mpforge.cli.framework import SHORT_FLAGS
from mpforge.cli.tasks import ns

TASKS = sorted(ns.task_names)


@pytest.mark.parametrize("name", TASKS)
def test_dash_h_is_help_on_every_task_and_runs_nothing(name):
    result = run_task(REPO, name, "-h", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage:") and "Options:" in result.stdout
    assert "==>" not in result.stdout  # no step of the task started
    options = result.stdout.split("Options:", 1)[1]
    assert "show every command run" in options  # every option with its help text


def test_a_short_flag_means_the_same_option_on_every_task():
    meaning: dict[str, set[str]] = {}
    for name in TASKS:
        for arg in ns[name].get_arguments():
            for short in (n for n in arg.names if len(n) == 1):
                meaning.setdefault(short, set()).add(arg.name.replace("-", "_"))
    # every short flag stands for one option (ports/boards are ci's spelling of port/board)
    assert set(meaning) <= set(SHORT_FLAGS.values())
    for short, options in meaning.items():
        assert {SHORT_FLAGS[o] for o in options} == {short}, (short, options)
    assert "h" not in meaning  # -h is help, never an option


def test_debug_and_ccache_have_no_short_flag():
    for name in TASKS:
        for arg in ns[name].get_arguments():
            if arg.name in ("debug", "ccache", "dry_run", "dry-run"):
                assert all(len(n) > 1 for n in arg.names), (name, arg.names)
