"""usb.util as pydfu uses it: claim an interface, read a string descriptor, let go.

``FAKE_USB_GET_STRING_LENGTH=1`` gives ``get_string`` PyUSB 1.0.0b1's signature
(a length before the index), which pydfu tells apart by inspecting it.
"""

from __future__ import annotations

import os


def claim_interface(device, interface) -> None:
    device.claimed = True


if os.environ.get("FAKE_USB_GET_STRING_LENGTH"):
    def get_string(device, length, index, langid=None) -> str:
        """PyUSB 1.0.0b1: a length argument first."""
        return device.strings[index][:length]
else:
    def get_string(device, index, langid=None) -> str:
        """PyUSB 1.0.0b2 and later: no length argument."""
        return device.strings[index]


def dispose_resources(device) -> None:
    device.disposed = True
