"""``python -m mpforge`` == the ``mpforge`` console script."""

import sys

try:
    from mpforge.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while starting: nothing was done yet
    sys.exit(130)

main()
