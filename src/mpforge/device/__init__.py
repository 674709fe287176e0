"""Boards, real and emulated: the raw REPL transport, flash runners, QEMU."""
