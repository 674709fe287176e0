"""The radio frame a reading travels in: sensor id, temperature, CRC.

Five bytes: the sensor id, the temperature in hundredths of a degree (signed,
big-endian), and the CRC-16/CCITT of those three bytes, computed by the
firmware's C module ``crc16``.
"""

import crc16


def encode(sensor_id, centidegrees):
    """The frame for one reading (``centidegrees`` from -32768 to 32767)."""
    body = bytes([sensor_id & 0xFF, (centidegrees >> 8) & 0xFF, centidegrees & 0xFF])
    crc = crc16.ccitt(body)
    return body + bytes([crc >> 8, crc & 0xFF])


def decode(frame):
    """``(sensor_id, centidegrees)`` from a frame; ValueError if it is damaged."""
    if len(frame) != 5 or crc16.ccitt(frame[:3]) != (frame[3] << 8 | frame[4]):
        raise ValueError("bad frame")
    value = frame[1] << 8 | frame[2]
    if value >= 0x8000:
        value -= 0x10000
    return frame[0], value
