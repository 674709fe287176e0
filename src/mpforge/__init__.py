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
