"""A stand-in for pyusb (``import usb.core, usb.util``) with one STM32 in DFU mode.

For running the tree's ``tools/pydfu.py`` without hardware: put ``tests/fakes``
first on ``PYTHONPATH``. The fake device follows ST's DfuSe protocol (AN3156)
as far as pydfu uses it: DNLOAD commands (0x21 set address, 0x41 erase a page,
0x41 alone: mass erase), DNLOAD data blocks (wValue >= 2) written at the address
set last, GETSTATUS answering dfuDNBUSY then dfuDNLOAD-IDLE after each DNLOAD
(dfuMANIFEST after the empty DNLOAD that leaves DFU mode), CLRSTATUS.

Environment: ``FAKE_USB_DEVICES`` (how many such boards are attached, default
1), ``FAKE_USB_STATE`` (a JSON file the device's story is written to at exit:
erased pages, mass erase, writes, whether it left DFU mode, protocol errors).
"""
