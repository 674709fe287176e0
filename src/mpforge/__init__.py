"""mpforge: build, patch, test and flash the pinned MicroPython tree.

The library is organised one concept per module:

``config``     ports/toolchains TOML -> dataclasses
``project``    the checkout, targets and their folders
``executor``   the one subprocess choke point
``git``        mirror mapping, reachability, submodule facts
``fetch``      the tree at its pin with the submodules a port needs
``patches``    the quilt-style patch series, atomic and revertible
``toolchain``  detection of compilers and host tools
``deplibs``    out-of-tree dependency libraries
``build``      make, manifests, dist/
``doctor``     what is installed and what is missing
``tasks``      the invoke tasks (the only layer that prints and exits)
"""

__version__ = "0.1.0"
