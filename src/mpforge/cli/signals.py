"""Every signal handler mpforge installs, in one module.

A command goes through three phases, and each has its own way with Ctrl-C (SIGINT) and
SIGTERM:

1. **Starting** (Python loads invoke, rich, the task modules: a few hundred
   milliseconds): nothing has been done yet, so either signal ends the process at once,
   quietly, with 128 + the signal (:func:`quiet_until_task`). The entry points call it
   first thing: the ``mpforge`` console script (:mod:`mpforge.cli.main`), ``python -m
   mpforge`` and the checkout's ``tasks.py`` for ``invoke``.
2. **A task runs** (:func:`task_signals`, entered by the task layer around every task):
   Ctrl-C is a ``KeyboardInterrupt`` and SIGTERM a :class:`~mpforge.core.errors.Terminated`
   (one of them), raised where the task is, so its ``finally`` blocks and context
   managers undo what is half-done and the task layer says what state it left. SIGTERM
   is first passed on to every program the task started
   (:func:`mpforge.core.executor.signal_all`): a terminal's Ctrl-C reaches them by
   itself, a SIGTERM to mpforge alone does not.
3. **Ending** (:func:`ignore_from_now`): the outcome is decided and said; a late Ctrl-C
   while Python shuts down must not turn it into a death by SIGINT.

One task hands Ctrl-C to another program while it runs in the foreground: gdb on the
terminal (:func:`interrupts_to_child`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# (mpforge's own modules are imported where used: this module is imported first thing by
# the entry points, before the quiet handler is in place, so it loads as little as it can)


def _stopped_early(signum: int, frame: object) -> None:
    # an exit, not an exception: one raised inside an import can come out as another
    # error's traceback (CPython wraps what __set_name__ meets in a RuntimeError)
    os._exit(128 + signum)


def quiet_until_task() -> None:
    """Phase 1: until a task starts, Ctrl-C and SIGTERM end the process quietly (status
    130 or 143). Handlers someone else installed (a test harness, an ignoring parent)
    are left alone."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stopped_early)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stopped_early)


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a task like Ctrl-C, and the programs it started are asked to stop too."""
    from mpforge.core import executor
    from mpforge.core.errors import Terminated

    executor.signal_all(signal.SIGTERM)
    raise Terminated(signum)


@contextmanager
def task_signals() -> Iterator[None]:
    """Phase 2, around one task: Ctrl-C raises ``KeyboardInterrupt``, SIGTERM
    :class:`Terminated`; the previous handlers come back afterwards. Off the main thread
    (a test calling a task from a worker) nothing changes: Python delivers signals to the
    main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is not signal.SIG_IGN:  # an ignored Ctrl-C (nohup, a parent) stays ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is not signal.SIG_IGN and previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


@contextmanager
def interrupts_to_child() -> Iterator[None]:
    """While a program owns the terminal (gdb): Ctrl-C is its (it interrupts the program
    being debugged), so this process ignores it meanwhile."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_from_now() -> None:
    """Phase 3: the outcome is said; ignore both signals while Python shuts down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
