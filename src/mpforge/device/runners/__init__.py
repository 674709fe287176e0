"""Flash runners: one small class per flashing tool, behind :class:`~.base.Runner`.

:mod:`.base` holds the base class, the :class:`~.base.FlashJob` a runner writes,
and the registry (:data:`~.base.RUNNERS`, :func:`~.base.runner_named`). Each
family has its module with its runners and the checks of the files they write:
:mod:`.dfu` (dfu-util, pydfu, DfuSe files), :mod:`.esp` (esptool, ESP8266
images), :mod:`.teensy` (teensy_loader_cli, Intel HEX), :mod:`.cc3200`, and over SWD
through a debug probe :mod:`.openocd` and :mod:`.pyocd` (their checks in :mod:`.swd`).

Which runner flashes a port is data: ``[flash] runner`` in ``ports/<port>.toml``,
then ``fallback``, or ``--runner`` (see :func:`mpforge.device.deploy.choose_runner`).

To add a runner:

1. in its family's module (or a new one here), subclass :class:`~.base.Runner`
   and decorate it with :func:`~.base.register`;
2. set ``name``, ``program``, ``install``, ``writes`` (an :class:`~.base.ArtifactKind`)
   and the capability flags it has (``needs_dfu_device``, ``can_pick_dfu_device``,
   ``needs_serial``, ``can_erase``): the deploy flow reads them, the runner never
   checks them itself;
3. implement :meth:`~.base.Runner.commands` (pure: argv lists; add its rows to the
   golden table in ``tests/device/test_runners.py``) and :meth:`~.base.Runner.validate`
   (refuse a file of the wrong content, whatever its name); if it needs more of the
   target than the job holds (the SWD runners: the probe's configs, its serial), take
   it in :meth:`~.base.Runner.prepare`; if it writes another of the port's artifacts
   than ``[flash] artifact``, :meth:`~.base.Runner.artifact_name` picks it by kind;
4. a new module: import it below, so that it registers;
5. name it in a port's ``[flash]``.
"""

from mpforge.device.runners import cc3200, dfu, esp, openocd, pyocd, teensy
from mpforge.device.runners.base import (
    RUNNERS,
    ArtifactKind,
    DeployError,
    FlashJob,
    Runner,
    UnknownRunner,
    register,
    runner_named,
)

__all__ = ["RUNNERS", "ArtifactKind", "DeployError", "FlashJob", "Runner", "UnknownRunner",
           "cc3200", "dfu", "esp", "openocd", "pyocd", "register", "runner_named", "teensy"]
