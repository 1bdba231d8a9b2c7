"""The few bytes of a serialized message a replay needs, read without deserializing it.

Camera and perception messages start with a ``std_msgs/Header``; in CDR that is: a 4-byte
encapsulation header, ``stamp.sec`` (int32), ``stamp.nanosec`` (uint32), then ``frame_id`` as a
uint32 length (including the NUL) and its bytes. So the serialized Header of such a message is a
prefix of the message's own bytes.
"""

import struct

ENCAPSULATION_BYTES = 4


def _endian(data):
    if len(data) < ENCAPSULATION_BYTES + 12:
        raise ValueError(f'{len(data)} bytes is too short for a message with a header')
    # Encapsulation kind 0x0001 is little-endian CDR, 0x0000 big-endian.
    return '<' if data[1] & 1 else '>'


def header_stamp_ns(data):
    """Header stamp (ns) of a serialized message that starts with a std_msgs/Header."""
    sec, nanosec = struct.unpack_from(_endian(data) + 'iI', data, ENCAPSULATION_BYTES)
    return sec * 1_000_000_000 + nanosec


def header_prefix(data):
    """Return the serialized std_msgs/Header a serialized message starts with (a copy)."""
    (length,) = struct.unpack_from(_endian(data) + 'I', data, ENCAPSULATION_BYTES + 8)
    end = ENCAPSULATION_BYTES + 12 + length
    if length == 0 or end > len(data):
        raise ValueError('frame_id length runs past the end of the message')
    return bytes(data[:end])
