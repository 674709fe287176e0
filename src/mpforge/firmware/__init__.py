"""Turning the patched tree into firmware: toolchains, deplibs, one target's make, many at once."""
