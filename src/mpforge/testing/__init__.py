"""The tree's own test suite, run sharded on the host, on QEMU or on a board; reports."""
