"""``invoke perf``: an instruction-exact performance gate (issue #28), being built.

Landed so far:

* :mod:`~mpforge.bench.perf.compare`: from recorded instruction counts (two runs of the
  first heap layout, one run of each further layout, for base and head) to a delta, a
  measured noise band and a verdict per workload, and the JSON contract of the report;
* :mod:`~mpforge.bench.perf.valgrind`: one program's instructions (total and per
  function) under ``cachegrind --cache-sim=no`` in a fixed environment.

Not landed yet: the heap-layout runner, the workloads, the builds (default, ``--base``,
``--per-patch``), the emulated pyboard and the task itself.
"""
