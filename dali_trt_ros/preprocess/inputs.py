"""Frames as the preprocessors accept them, and the host-side checks every backend shares.

``EncodedFrame`` mirrors ``sensor_msgs/CompressedImage`` (``format``, ``data``) and ``RawFrame``
mirrors ``sensor_msgs/Image`` (``width``, ``height``, ``encoding``, ``step``, ``data``) without
importing ROS. ``prepare_frame`` validates one frame and reads its size from the header (a few
microseconds), so a bad frame fails alone with a typed error before any batch work starts, and
the geometry of every frame is known before decoding.

Decode memory is bounded before decoding: a frame whose declared size exceeds ``max_pixels``
(default ``frames.DEFAULT_MAX_PIXELS``, DCI 8K) is refused with ``ImageTooLargeError``, and only
the codings cameras and image_transport produce are accepted (``UnsupportedPixelFormatError``
otherwise), so every decoder (libjpeg-turbo, libpng, nvJPEG, nvImageCodec) sees the same inputs:

- JPEG: Huffman baseline, extended or progressive (SOF0/1/2), 8-bit samples, 1 or 3 components,
  at most ``MAX_JPEG_SCANS`` scans (each scan of a progressive JPEG is a pass over the image).
- PNG: 8-bit gray, gray+alpha, RGB or RGBA, not interlaced. 16-bit PNGs are depth or thermal
  images (image_transport writes mono16/bgr16 that way) and would be cut to 8 bits silently;
  palette and 1/2/4-bit PNGs are never written by camera drivers or image_transport.
"""

from dataclasses import dataclass
import struct

import numpy as np

from dali_trt_ros.codec_messages import capture_codec_messages
from dali_trt_ros.errors import (bounded_repr, CorruptImageError, ImageTooLargeError,
                                 MalformedFrameError, UnsupportedEncodingError,
                                 UnsupportedPixelFormatError)
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS, MAX_DIMENSION, raw_encoding, raw_frame_view

JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
# CompressedImage.format values name other codecs this way ("bgr8; tiff compressed", "webp").
UNSUPPORTED_FORMAT_WORDS = ('tiff', 'webp', 'bmp', 'jp2', 'jpeg2000', 'compresseddepth', 'rvl',
                            'qoi', 'h264', 'h265', 'hevc', 'av1')
# Huffman-coded DCT frames: baseline, extended sequential, progressive (what nvJPEG decodes).
JPEG_ACCEPTED_FRAMES = {0xC0: 'baseline', 0xC1: 'extended', 0xC2: 'progressive'}
JPEG_OTHER_FRAMES = {0xC3: 'lossless', 0xC5: 'hierarchical', 0xC6: 'hierarchical progressive',
                     0xC7: 'hierarchical lossless', 0xC9: 'arithmetic-coded',
                     0xCA: 'arithmetic-coded progressive', 0xCB: 'arithmetic-coded lossless',
                     0xCD: 'hierarchical arithmetic-coded',
                     0xCE: 'hierarchical arithmetic-coded progressive',
                     0xCF: 'hierarchical arithmetic-coded lossless'}
# libjpeg's default progression uses 10 scans (6 for gray) and optimizing encoders ~20; an EXIF
# thumbnail adds its own. Thousands of tiny scans make libjpeg re-read the image thousands of
# times (a CPU bomb in a few kB), hence a bound.
MAX_JPEG_SCANS = 64
PNG_COLOR_TYPES = {0: 'gray', 2: 'RGB', 3: 'palette', 4: 'gray+alpha', 6: 'RGBA'}
PNG_ACCEPTED_COLORS = ('gray', 'RGB', 'gray+alpha', 'RGBA')


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


def _check_size(width, height, what, max_pixels=DEFAULT_MAX_PIXELS):
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise MalformedFrameError(
            f'{what} says the image is {width}x{height}; accepted sizes are 1..{MAX_DIMENSION} '
            'pixels per side (check the camera driver or the encoder)')
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f'{what} says the image is {width}x{height} = {width * height} pixels, more than '
            f'max_pixels = {max_pixels}; refused before decoding (raise max_pixels if the '
            'camera really is that large)')


def _as_bytes_array(data):
    try:
        array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else data.reshape(-1).view(np.uint8)
    except (TypeError, ValueError) as error:
        raise MalformedFrameError(f'compressed data is not a byte buffer: {error}') from None
    return array


@dataclass(frozen=True)
class ImageHeader:
    """What a JPEG frame header or PNG IHDR declares, read without decoding."""

    width: int
    height: int
    coding: str       # 'baseline', 'progressive', ... (JPEG); 'png'
    sample_bits: int  # bits per sample
    channels: int
    color: str = ''   # PNG colour type name ('' for JPEG)
    interlaced: bool = False


def jpeg_header(buffer):
    """Read a JPEG's frame header (SOF); CorruptImageError when there is none."""
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
            if pos + 10 > end:
                break
            precision, height, width, components = struct.unpack_from('>BHHB', view, pos + 4)
            coding = JPEG_ACCEPTED_FRAMES.get(marker) or JPEG_OTHER_FRAMES[marker]
            return ImageHeader(width, height, coding, precision, components)
        if marker == 0xDA:  # entropy-coded data starts without a frame header: broken file
            break
        pos += 2 + length
    raise CorruptImageError('JPEG has no frame header (SOF) before its image data; '
                            'the data is truncated or corrupt')


def jpeg_size(buffer):
    """(width, height) from a JPEG's frame header; CorruptImageError when there is none."""
    header = jpeg_header(buffer)
    return header.width, header.height


def png_header(buffer):
    """Read a PNG's IHDR chunk; CorruptImageError when there is none."""
    if len(buffer) < 29 or bytes(buffer[12:16]) != b'IHDR':
        raise CorruptImageError('PNG has no IHDR header; the data is truncated or corrupt')
    width, height, depth, color_type, _, _, interlace = struct.unpack_from('>IIBBBBB', buffer, 16)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 0)
    return ImageHeader(width, height, 'png', depth, channels,
                       PNG_COLOR_TYPES.get(color_type, f'color type {color_type}'),
                       interlace != 0)


def png_size(buffer):
    """(width, height) from a PNG's IHDR chunk."""
    header = png_header(buffer)
    return header.width, header.height


def _count_jpeg_scans(buffer):
    """Start-of-scan markers in the file (entropy-coded data never contains FF DA)."""
    return buffer.tobytes().count(b'\xff\xda')


def _check_pixel_format(codec, header, buffer):
    """Refuse codings the pipeline does not need (see the module docstring for the list)."""
    if codec == 'jpeg':
        if header.coding not in JPEG_ACCEPTED_FRAMES.values():
            raise UnsupportedPixelFormatError(
                f'{header.coding} JPEG is not supported; publish baseline or progressive '
                'Huffman-coded JPEG (what cameras and image_transport write)')
        if header.sample_bits != 8 or header.channels not in (1, 3):
            raise UnsupportedPixelFormatError(
                f'JPEG with {header.sample_bits}-bit samples and {header.channels} components '
                'is not supported; publish 8-bit grayscale or colour (YCbCr) JPEG')
        if header.coding == 'progressive':
            scans = _count_jpeg_scans(buffer)
            if scans > MAX_JPEG_SCANS:
                raise UnsupportedPixelFormatError(
                    f'progressive JPEG with {scans} scans (more than {MAX_JPEG_SCANS}) refused: '
                    'decoding it would re-read the image once per scan; publish baseline JPEG')
        return
    if header.sample_bits != 8 or header.color not in PNG_ACCEPTED_COLORS:
        raise UnsupportedPixelFormatError(
            f'{header.sample_bits}-bit {header.color} PNG is not supported; publish 8-bit '
            'gray, RGB or RGBA PNG (16-bit PNGs are depth/thermal images: use the depth '
            'pipeline, not this one)')
    if header.interlaced:
        raise UnsupportedPixelFormatError(
            'interlaced (Adam7) PNG is not supported; publish non-interlaced PNG '
            '(as image_transport writes)')


def _check_png_chunks(buffer):
    """Walk the chunks: each must fit in the data, and IEND must come.

    Decoders trust a chunk's declared length: OpenCV allocated 2 GB (1.1 s) for a 9 kB PNG
    whose second chunk claimed 2 GB (found by the fuzz campaign).
    """
    view = memoryview(buffer)
    pos, end = 8, len(view)
    while pos + 12 <= end:
        (length,) = struct.unpack_from('>I', view, pos)
        kind = bytes(view[pos + 4:pos + 8])
        if length > end - pos - 12:
            raise CorruptImageError(
                f'PNG chunk {kind!r} at byte {pos} declares {length} bytes but only '
                f'{end - pos - 12} follow: the image is truncated or corrupt')
        if kind == b'IEND':
            return
        pos += 12 + length
    raise CorruptImageError('PNG has no IEND chunk at its end: the image is truncated')


def _check_jpeg_segments(buffer):
    """Marker segments up to the image data must fit in the data (lengths are trusted)."""
    view = memoryview(buffer)
    pos, end = 2, len(view)
    while pos + 4 <= end and view[pos] == 0xFF:
        marker = view[pos + 1]
        if marker == 0xFF or marker in (0x01, *range(0xD0, 0xD8)):
            pos += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack_from('>H', view, pos + 2)
        if length < 2 or pos + 2 + length > end:
            raise CorruptImageError(
                f'JPEG segment 0x{marker:02x} at byte {pos} declares {length} bytes but only '
                f'{end - pos - 2} follow: the image is truncated or corrupt')
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        pos += 2 + length


def _check_complete(codec, buffer):
    """Reject truncated files on the host, so every decoder (nvJPEG included) agrees."""
    if codec == 'png':
        _check_png_chunks(buffer)
        return
    _check_jpeg_segments(buffer)
    tail = bytes(buffer[-64:]).rstrip(b'\x00')
    if not tail.endswith(b'\xff\xd9'):
        raise CorruptImageError('JPEG does not end with an EOI marker: the image is truncated '
                                '(check the network link or the encoder)')


def sniff_codec(buffer, declared_format=''):
    """Return 'jpeg' or 'png' from the leading bytes; typed error for anything else."""
    head = bytes(buffer[:8])
    if head.startswith(JPEG_MAGIC):
        return 'jpeg'
    if head.startswith(PNG_MAGIC):
        return 'png'
    declared = (declared_format or '').lower().replace(' ', '')
    quoted = bounded_repr(declared_format)
    if any(word in declared for word in UNSUPPORTED_FORMAT_WORDS):
        raise UnsupportedEncodingError(
            f'compressed format {quoted} is not supported; publish jpeg or png')
    if 'jpeg' in declared or 'jpg' in declared or 'png' in declared:
        raise CorruptImageError(f'data declared as {quoted} does not start with a '
                                f'JPEG or PNG signature (first bytes {head.hex()})')
    raise UnsupportedEncodingError(
        f'compressed data (format {quoted}, first bytes {head.hex()}) is neither '
        'JPEG nor PNG; publish jpeg or png')


def prepare_encoded(frame, max_pixels=DEFAULT_MAX_PIXELS):
    """Validate an EncodedFrame and read its size from the header, before any decoding."""
    buffer = _as_bytes_array(frame.data)
    if buffer.size == 0:
        raise MalformedFrameError('compressed image has no data (zero bytes)')
    codec = sniff_codec(buffer, frame.format)
    header = jpeg_header(buffer) if codec == 'jpeg' else png_header(buffer)
    _check_size(header.width, header.height, f'the {codec.upper()} header', max_pixels)
    _check_pixel_format(codec, header, buffer)
    _check_complete(codec, buffer)
    return PreparedFrame('encoded', header.width, header.height, buffer, codec)


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


def prepare_raw(frame, max_pixels=DEFAULT_MAX_PIXELS):
    """Validate a RawFrame and convert it to contiguous RGB (zero-copy for packed rgb8)."""
    for key in ('width', 'height', 'step'):
        value = getattr(frame, key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise MalformedFrameError(
                f'raw image {key} = {bounded_repr(value)} must be a non-negative integer')
    _check_size(frame.width, frame.height, 'the Image message', max_pixels)
    view = raw_frame_view(frame.data, frame.height, frame.width, frame.encoding, frame.step)
    return PreparedFrame('raw', frame.width, frame.height, raw_to_rgb(view, frame.encoding))


def decode_rgb(prepared):
    """Return the original-size (H, W, 3) RGB uint8 pixels of a prepared frame (CPU decode).

    The one CPU decode, shared by the OpenCV preprocessing and the overlay. EXIF orientation is
    ignored, as camera drivers and the DALI graph (``adjust_orientation=False``) ignore it:
    pixels stay in the stored grid, where the geometry, boxes and masks are.
    """
    if prepared.kind == 'raw':
        return prepared.payload
    import cv2

    with capture_codec_messages():  # libjpeg/libpng warnings: counted, rate-limited logs
        bgr = cv2.imdecode(prepared.payload, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise CorruptImageError(f'{prepared.codec.upper()} data could not be decoded '
                                '(corrupt image data)')
    if bgr.shape[:2] != (prepared.height, prepared.width):
        raise CorruptImageError(f'{prepared.codec.upper()} decoded to {bgr.shape[1]}x'
                                f'{bgr.shape[0]} but its header says '
                                f'{prepared.width}x{prepared.height}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def prepare_frame(frame, max_pixels=DEFAULT_MAX_PIXELS):
    """Validate any supported frame; raise a FrameError subclass describing what is wrong.

    ``max_pixels`` bounds the declared width*height (ImageTooLargeError beyond it).
    """
    if isinstance(frame, EncodedFrame):
        return prepare_encoded(frame, max_pixels)
    if isinstance(frame, RawFrame):
        return prepare_raw(frame, max_pixels)
    raise UnsupportedEncodingError(
        f'{type(frame).__name__} is not a frame; wrap data in EncodedFrame or RawFrame '
        '(or use frame_from_message)')
