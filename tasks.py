"""Invoke entry point: the tasks live in the library (``mpforge.cli.tasks``)."""

from mpforge.cli.tasks import ns

__all__ = ["ns"]
