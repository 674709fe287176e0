"""mpforge: build, patch, test and flash the pinned MicroPython tree.

The library is layered; a package imports only from the ones above it:

``core``     data files (ports, toolchains), the checkout and its targets, the one
             subprocess choke point, typed errors, atomic state, the checkout lock
``tree``     micropython/ at its pin with the submodules a port needs, the patch series
``firmware`` toolchains, deplibs, one target's make, many targets under one job budget
``device``   boards, real and emulated: raw REPL transport, flash runners, QEMU
``testing``  the tree's test suite, sharded, and its reports (JUnit, JSON)
``ci``       the CI pipeline, and the provider files that run it
``bench``    benchmarks that print figures
``cli``      the invoke tasks, rendering and the console script: the only layer
             that prints and exits
"""

__version__ = "0.1.0"

if __import__("sys").argv[:1] == ["-m"]:
    # `python -m mpforge` is starting: a Ctrl-C (or SIGTERM) before a task runs (a task takes Ctrl-C
    # over, see mpforge.cli.tasks.reports_errors) ends quietly with status 130, not with a
    # traceback from CPython's runpy. Only then: a library import changes no handler.
    # (_signal, the C module: ``signal`` would import enum first, a window of its own)
    import _signal

    def _stopped_early(signum: int, frame: object) -> None:
        # an exit, not an exception: one raised inside an import can come out as another
        # error's traceback (CPython wraps what __set_name__ meets in a RuntimeError)
        __import__("os")._exit(128 + signum)

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _stopped_early)
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:
        _signal.signal(_signal.SIGTERM, _stopped_early)
