"""Benchmarks: each measures a claim of the project and checks it against a target.

* :mod:`~mpforge.bench.build`: the build matrix against one target at a time;
* :mod:`~mpforge.bench.testsuite`: ``invoke test`` against the tree's ``run-tests``;
* :mod:`mpforge.bench.gc`: the GC threshold patch (host and emulated halves);
* :mod:`~mpforge.bench.targets`: targets met or missed (``--check``);
* :mod:`~mpforge.bench.record`: which run produced a result file (``--json``, ``--record``).
"""
