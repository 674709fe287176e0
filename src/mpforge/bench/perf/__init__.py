"""``invoke perf``: an instruction-exact performance gate (issue #28), being built.

Landed so far:

* :mod:`~mpforge.bench.perf.compare`: from recorded instruction counts (two runs of the
  first heap layout, one run of each further layout, for base and head) to a delta, a
  measured noise band and a verdict per workload, and the JSON contract of the report;
* :mod:`~mpforge.bench.perf.valgrind`: one program's instructions (total and per
  function) under ``cachegrind --cache-sim=no`` in a fixed environment.

* :mod:`~mpforge.bench.perf.layouts`, :mod:`~mpforge.bench.perf.workloads`,
  :mod:`~mpforge.bench.perf.gate`: K heap layouts, our 22 workloads, one comparison;
* :mod:`~mpforge.bench.perf.builds` and :mod:`~mpforge.bench.perf.refs`: the default
  pair, ``--base REF`` and ``--per-patch``;
* :mod:`~mpforge.bench.perf.report`: ``--markdown``, ``--record``, ``--plot``.

Not landed here: the emulated pyboard.
"""
