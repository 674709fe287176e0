"""``python -m mpforge`` == the ``mpforge`` console script."""

from .cli import main

main()
