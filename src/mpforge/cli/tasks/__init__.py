"""The invoke tasks, by subject, and :data:`ns`, the one namespace both ``invoke`` (the
checkout's ``tasks.py``) and the ``mpforge`` console script serve.

Each subject module holds thin tasks (their options' help, one call into the library, the
rendering), declared with :func:`mpforge.cli.framework.task`, which gives them the shared
options, the checkout's lock, the signal handling and the one way errors are shown:

=========== ==============================================================
``tree``    fetch, patch, deplibs            ``mirror``  mirror
``build``   build, doctor, size              ``verify``  verify
``test``    test                             ``ci``      ci, ci-generate
``device``  deploy, emulate, repl, run       ``farm``    farm
``debug``   debug                            ``bench``   bench-gc, bench-build, bench-test
``perf``    perf                             ``schemas`` schemas
``docs``    docs (made for the namespace)
=========== ==============================================================

The namespace is built here and only here; the subject modules import the machinery, never
this package or each other.
"""

from __future__ import annotations

from invoke import Collection

from mpforge.cli.tasks import bench, build, ci, debug, device, docs, farm, mirror, perf, schemas, test, tree, verify

#: every task, in the order ``invoke --list`` shows them
ns = Collection(
    tree.fetch, tree.patch, tree.deplibs, build.build, build.doctor, test.test, device.deploy,
    device.emulate, build.size, ci.ci, ci.ci_generate, bench.bench_gc, bench.bench_build,
    bench.bench_test, device.repl, device.run, farm.farm, debug.debug, mirror.mirror,
    verify.verify, verify.sign, perf.perf, schemas.schemas,
)
#: ``invoke docs`` documents this namespace, itself included
ns.add_task(docs.reference_task(ns))
