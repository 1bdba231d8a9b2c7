"""Frames as the preprocessors accept them, and the host-side checks every backend shares.

``EncodedFrame`` mirrors ``sensor_msgs/CompressedImage`` (``format``, ``data``) and ``RawFrame``
mirrors ``sensor_msgs/Image`` (``width``, ``height``, ``encoding``, ``step``, ``data``) without
importing ROS. ``prepare_frame`` validates one frame and reads its size from the header (a few
microseconds), so a bad frame fails alone with a typed error before any batch work starts, and
the geometry of every frame is known before decoding.
"""

from dataclasses import dataclass
import struct

import numpy as np

from dali_trt_ros.errors import CorruptImageError, MalformedFrameError, UnsupportedEncodingError
from dali_trt_ros.frames import MAX_DIMENSION, raw_encoding, raw_frame_view

JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# CompressedImage.format values name other codecs this way ("bgr8; tiff compressed", "webp").
UNSUPPORTED_FORMAT_WORDS = ('tiff', 'webp', 'bmp', 'jp2', 'jpeg2000', 'compresseddepth', 'rvl',
                            'qoi', 'h264', 'h265', 'hevc', 'av1')


@dataclass(frozen=True)
class EncodedFrame:
    """Compressed image bytes (JPEG or PNG), as in sensor_msgs/CompressedImage."""

    data: object
    format: str = ''

    @classmethod
    def from_message(cls, msg):
        """Wrap a CompressedImage-like object (fields ``format`` and ``data``) without copying."""
        return cls(msg.data, msg.format)


@dataclass(frozen=True)
class RawFrame:
    """Raw pixels with a ROS encoding and row stride, as in sensor_msgs/Image."""

    data: object
    width: int
    height: int
    encoding: str
    step: int = 0

    @classmethod
    def from_message(cls, msg):
        """Wrap an Image-like object (height, width, encoding, step, data) without copying."""
        return cls(msg.data, msg.width, msg.height, msg.encoding, msg.step)


def frame_from_message(msg):
    """Wrap a CompressedImage-like or Image-like object, told apart by its fields."""
    if hasattr(msg, 'format'):
        return EncodedFrame.from_message(msg)
    if hasattr(msg, 'encoding'):
        return RawFrame.from_message(msg)
    raise UnsupportedEncodingError(
        f'{type(msg).__name__} is neither an Image (encoding) nor a CompressedImage (format)')


@dataclass
class PreparedFrame:
    """A validated frame: its kind, original size and the payload a backend consumes.

    ``payload`` is the 1-D uint8 byte array for encoded frames, and a C-contiguous (H, W, 3)
    uint8 RGB array for raw frames (a zero-copy view when the frame already is packed rgb8).
    """

    kind: str  # 'encoded' or 'raw'
    width: int
    height: int
    payload: np.ndarray
    codec: str = ''  # 'jpeg' or 'png' for encoded frames


def _check_size(width, height, what):
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise MalformedFrameError(
            f'{what} says the image is {width}x{height}; accepted sizes are 1..{MAX_DIMENSION} '
            'pixels per side (check the camera driver or the encoder)')


def _as_bytes_array(data):
    try:
        array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else data.reshape(-1).view(np.uint8)
    except (TypeError, ValueError) as error:
        raise MalformedFrameError(f'compressed data is not a byte buffer: {error}') from None
    return array


def jpeg_size(buffer):
    """(width, height) from a JPEG's frame header; CorruptImageError when there is none."""
    view = memoryview(buffer)
    pos, end = 2, len(view)
    while pos + 4 <= end:
        if view[pos] != 0xFF:
            raise CorruptImageError(f'JPEG marker expected at byte {pos}; the data is corrupt')
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            break
        (length,) = struct.unpack_from('>H', view, pos + 2)
        is_frame_header = 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)
        if is_frame_header:
            if pos + 9 > end:
                break
            height, width = struct.unpack_from('>HH', view, pos + 5)
            return width, height
        if marker == 0xDA:  # entropy-coded data starts without a frame header: broken file
            break
        pos += 2 + length
    raise CorruptImageError('JPEG has no frame header (SOF) before its image data; '
                            'the data is truncated or corrupt')


def png_size(buffer):
    """(width, height) from a PNG's IHDR chunk."""
    if len(buffer) < 24 or bytes(buffer[12:16]) != b'IHDR':
        raise CorruptImageError('PNG has no IHDR header; the data is truncated or corrupt')
    return struct.unpack_from('>II', buffer, 16)


def _check_complete(codec, buffer):
    """Reject truncated files on the host, so every decoder (nvJPEG included) agrees."""
    tail = bytes(buffer[-64:]).rstrip(b'\x00')
    if codec == 'jpeg' and not tail.endswith(b'\xff\xd9'):
        raise CorruptImageError('JPEG does not end with an EOI marker: the image is truncated '
                                '(check the network link or the encoder)')
    if codec == 'png' and b'IEND' not in tail:
        raise CorruptImageError('PNG has no IEND chunk at its end: the image is truncated')


def sniff_codec(buffer, declared_format=''):
    """Return 'jpeg' or 'png' from the leading bytes; typed error for anything else."""
    head = bytes(buffer[:8])
    if head.startswith(JPEG_MAGIC):
        return 'jpeg'
    if head.startswith(PNG_MAGIC):
        return 'png'
    declared = (declared_format or '').lower().replace(' ', '')
    if any(word in declared for word in UNSUPPORTED_FORMAT_WORDS):
        raise UnsupportedEncodingError(
            f'compressed format {declared_format!r} is not supported; publish jpeg or png')
    if 'jpeg' in declared or 'jpg' in declared or 'png' in declared:
        raise CorruptImageError(f'data declared as {declared_format!r} does not start with a '
                                f'JPEG or PNG signature (first bytes {head.hex()})')
    raise UnsupportedEncodingError(
        f'compressed data (format {declared_format!r}, first bytes {head.hex()}) is neither '
        'JPEG nor PNG; publish jpeg or png')


def prepare_encoded(frame):
    """Validate an EncodedFrame and read its size from the header."""
    buffer = _as_bytes_array(frame.data)
    if buffer.size == 0:
        raise MalformedFrameError('compressed image has no data (zero bytes)')
    codec = sniff_codec(buffer, frame.format)
    width, height = jpeg_size(buffer) if codec == 'jpeg' else png_size(buffer)
    _check_size(width, height, f'the {codec.upper()} header')
    _check_complete(codec, buffer)
    return PreparedFrame('encoded', width, height, buffer, codec)


def raw_to_rgb(view, encoding):
    """Convert an (H, W, C) view in a ROS encoding to contiguous (H, W, 3) RGB uint8."""
    import cv2

    order = raw_encoding(encoding).color_order
    channels = view.shape[2]
    if order == 'RGB' and channels == 3:
        return np.ascontiguousarray(view)  # no copy when rows carry no padding
    conversions = {
        ('RGB', 4): cv2.COLOR_RGBA2RGB, ('BGR', 3): cv2.COLOR_BGR2RGB,
        ('BGR', 4): cv2.COLOR_BGRA2RGB, ('GRAY', 1): cv2.COLOR_GRAY2RGB,
        ('UYVY', 2): cv2.COLOR_YUV2RGB_UYVY, ('YUYV', 2): cv2.COLOR_YUV2RGB_YUY2,
    }
    source = view[:, :, 0] if channels == 1 else view
    if source.strides[-1] != 1 or (channels > 1 and source.strides[-2] != channels):
        source = np.ascontiguousarray(source)
    return cv2.cvtColor(source, conversions[(order, channels)])


def prepare_raw(frame):
    """Validate a RawFrame and convert it to contiguous RGB (zero-copy for packed rgb8)."""
    for key in ('width', 'height', 'step'):
        value = getattr(frame, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise MalformedFrameError(
                f'raw image {key} = {value!r} must be a non-negative integer')
    _check_size(frame.width, frame.height, 'the Image message')
    view = raw_frame_view(frame.data, frame.height, frame.width, frame.encoding, frame.step)
    return PreparedFrame('raw', frame.width, frame.height, raw_to_rgb(view, frame.encoding))


def prepare_frame(frame):
    """Validate any supported frame; raise a FrameError subclass describing what is wrong."""
    if isinstance(frame, EncodedFrame):
        return prepare_encoded(frame)
    if isinstance(frame, RawFrame):
        return prepare_raw(frame)
    raise UnsupportedEncodingError(
        f'{type(frame).__name__} is not a frame; wrap data in EncodedFrame or RawFrame '
        '(or use frame_from_message)')
