"""``invoke bench-gc``: the GC threshold patch, measured on the host and on an emulated board.

One job per module:

* :mod:`~mpforge.bench.gc.variants`: the firmwares compared, and the one meaning of
  "unpatched" (the series minus the feature patch) both halves use;
* :mod:`~mpforge.bench.gc.host`: the unix port (peak RSS, CPU seconds, callgrind);
* :mod:`~mpforge.bench.gc.emulated`: the emulated pyboard under QEMU ``-icount``
  (largest free block, guest instructions, collections);
* :mod:`~mpforge.bench.gc.guest`: the guest programs, put together from ``programs/*.py``;
* :mod:`~mpforge.bench.gc.session`: one QEMU, programs run over the raw REPL;
* :mod:`~mpforge.bench.gc.trace`: reading what the guest and QEMU's trace say;
* :mod:`~mpforge.bench.gc.results`: the emulated half's cells, report and targets.
"""
