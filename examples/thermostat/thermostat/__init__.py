"""The thermostat's application code, frozen into its firmware.

``import thermostat`` works on the board with an empty file system: the
package is part of the firmware (``invoke build --app examples/thermostat``).
"""

from .control import Hysteresis
from .frame import decode, encode

VERSION = "1.0"

__all__ = ["Hysteresis", "decode", "encode", "VERSION"]
