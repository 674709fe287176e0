"""Run the tree's ``tests/run-tests`` with mpforge's ``pyboard`` module first.

``tests/`` holds its own ``pyboard.py`` (a link to ``tools/``), and a script's
own folder comes first on ``sys.path``, so ``PYTHONPATH`` cannot override it:
``python -m mpforge.testing.runner_launch run-tests ARGS...`` puts
:mod:`mpforge.testing.pyboard_shim` ahead of it and then runs the script as ``__main__``.

Before it does, it installs the cache of expected outputs
(:mod:`mpforge.testing.expcache`) when the environment asks for it, so CPython is
started only for a test file whose expected output is not known yet.
"""

import runpy
import sys
from pathlib import Path

SHIM = str(Path(__file__).resolve().parent / "pyboard_shim")


def main() -> None:
    from mpforge.testing.expcache import install

    install()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, SHIM)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
