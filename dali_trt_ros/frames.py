"""Zero-copy NumPy views of raw ROS image buffers, without ROS.

``sensor_msgs/Image`` carries ``height``, ``width``, ``encoding``, ``step`` (bytes per row, which
may include padding) and ``data``. In rclpy ``data`` arrives as ``array.array('B')``;
``np.frombuffer`` on it is a view (about a microsecond), so nothing here copies pixels.
"""

from dataclasses import dataclass

import numpy as np

from dali_trt_ros.errors import bounded_repr, MalformedFrameError, UnsupportedEncodingError


@dataclass(frozen=True)
class RawEncoding:
    """How one ROS encoding lays out a pixel."""

    channels: int
    color_order: str  # 'RGB', 'BGR', 'GRAY', 'UYVY' or 'YUYV'
    has_alpha: bool = False
    bytes_per_pixel: int = 0  # 0: same as channels (one byte per channel)

    @property
    def pixel_bytes(self):
        """Bytes one pixel occupies in a row."""
        return self.bytes_per_pixel or self.channels


RAW_ENCODINGS = {
    'rgb8': RawEncoding(3, 'RGB'),
    'bgr8': RawEncoding(3, 'BGR'),
    'rgba8': RawEncoding(4, 'RGB', has_alpha=True),
    'bgra8': RawEncoding(4, 'BGR', has_alpha=True),
    'mono8': RawEncoding(1, 'GRAY'),
    '8UC1': RawEncoding(1, 'GRAY'),
    '8UC3': RawEncoding(3, 'BGR'),
    # Packed 4:2:2: two bytes per pixel, chroma shared by pixel pairs. The view is (H, W, 2).
    'yuv422': RawEncoding(2, 'UYVY'),
    'uyvy': RawEncoding(2, 'UYVY'),
    'yuv422_yuy2': RawEncoding(2, 'YUYV'),
    'yuyv': RawEncoding(2, 'YUYV'),
}

# Guard against corrupted headers asking for absurd allocations downstream (16K x 16K max).
MAX_DIMENSION = 16384
# Pixel budget per frame, checked against the DECLARED size (JPEG SOF, PNG IHDR, Image
# width/height) before anything is decoded. DCI 8K (8192x4320, 35.4 MP) is the largest camera
# format in use; it also covers 8K UHD (7680x4320) and every automotive sensor (<= 8.3 MP
# today). A frame at the budget decodes to 106 MB of RGB; the CPU decode of a progressive
# JPEG of that size peaks at about 3x that (coefficients + BGR + RGB). Anything larger on a
# camera topic is a mistake or an attack: a 600-byte JPEG can declare 16384x16384 (805 MB).
DEFAULT_MAX_PIXELS = 8192 * 4320


def raw_encoding(encoding):
    """Look up a ROS encoding; raise UnsupportedEncodingError naming the supported ones."""
    try:
        return RAW_ENCODINGS[encoding]
    except KeyError:
        raise UnsupportedEncodingError(
            f'image encoding {bounded_repr(encoding)} is not supported; publish one of '
            f'{", ".join(sorted(RAW_ENCODINGS))} (or a sensor_msgs/CompressedImage in jpeg/png)'
        ) from None


def raw_frame_view(data, height, width, encoding, step=0):
    """Return an (H, W, C) uint8 view of a raw image buffer, honouring row padding.

    Raises MalformedFrameError when the sizes disagree with the data and
    UnsupportedEncodingError for encodings without a reader. Never copies.
    """
    layout = raw_encoding(encoding)
    if not (0 < height <= MAX_DIMENSION and 0 < width <= MAX_DIMENSION):
        raise MalformedFrameError(
            f'image size {width}x{height} is outside 1..{MAX_DIMENSION} pixels per side')
    if layout.color_order in ('UYVY', 'YUYV') and width % 2:
        raise MalformedFrameError(f'{encoding} needs an even width, got {width}')
    row_bytes = width * layout.pixel_bytes
    step = step or row_bytes
    if step < row_bytes:
        raise MalformedFrameError(
            f'step {step} is smaller than width*bytes_per_pixel = {row_bytes} for {encoding}')
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise MalformedFrameError(
            f'data has {buffer.size} bytes but step*height = {step}*{height} = '
            f'{step * height} ({width}x{height} {encoding})')
    rows = buffer.reshape(height, step)
    if step != row_bytes:
        rows = rows[:, :row_bytes]
    return rows.reshape(height, width, layout.channels)
