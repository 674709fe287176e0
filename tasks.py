"""Invoke entry point: the tasks live in the library (``mpforge.tasks``)."""

from mpforge.tasks import ns

__all__ = ["ns"]
