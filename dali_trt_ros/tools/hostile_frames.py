"""Hostile and unusual JPEG/PNG files built on the spot, for the soak tool and the tests.

Bombs are real, decodable files: a decoder without a pixel budget decodes them at full size.
Nothing here is read from disk: every file is made by these functions (PNG by hand with zlib,
JPEG with OpenCV or Pillow, then edited).
"""

import io
import struct
import zlib

import numpy as np

BOMB_SIDE = 16384


def png_chunk(kind, payload):
    """One PNG chunk: length, type, payload, CRC."""
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload) & 0xFFFFFFFF))


def make_png(width, height, bit_depth=8, color_type=0, interlace=0, row_bytes=None,
             fill=0):
    """Return a valid PNG whose every row is ``fill`` bytes (streamed: no full-size buffer)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row_bytes = row_bytes or (width * channels * bit_depth + 7) // 8
    compressor = zlib.compressobj(9)
    row = bytes([0]) + bytes([fill]) * row_bytes  # filter type 0, then the samples
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack('>IIBBBBB', width, height, bit_depth, color_type, 0, 0, interlace)
    chunks = [png_chunk(b'IHDR', header)]
    if color_type == 3:
        chunks.append(png_chunk(b'PLTE', bytes(range(256)) * 3))
    chunks += [png_chunk(b'IDAT', b''.join(parts)), png_chunk(b'IEND', b'')]
    return b'\x89PNG\r\n\x1a\n' + b''.join(chunks)


def png_bomb_1bit():
    """~33 kB PNG declaring 16384x16384 1-bit gray: 268 MB of RGB once decoded."""
    return make_png(BOMB_SIDE, BOMB_SIDE, bit_depth=1)


def png_bomb_gray8():
    """~260 kB PNG declaring 16384x16384 8-bit gray (deflate's 1:1032 limit)."""
    return make_png(BOMB_SIDE, BOMB_SIDE, bit_depth=8)


def small_jpeg(rgb=None, quality=50, progressive=False):
    """Encode ``rgb`` (default an 8x8 black image: ~630 bytes) written by OpenCV."""
    import cv2
    rgb = np.zeros((8, 8, 3), np.uint8) if rgb is None else rgb
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    return cv2.imencode('.jpg', np.ascontiguousarray(rgb[:, :, ::-1]), params)[1].tobytes()


def sof_offset(jpeg):
    """Byte offset of the first frame header (SOF0..SOF2) marker."""
    return min(i for i in (jpeg.find(m) for m in (b'\xff\xc0', b'\xff\xc1', b'\xff\xc2'))
               if i >= 0)


def with_sof(jpeg, width=None, height=None, precision=None, marker=None):
    """Return the same JPEG with its frame header claiming another size, precision or coding."""
    damaged = bytearray(jpeg)
    at = sof_offset(jpeg)
    if marker is not None:
        damaged[at + 1] = marker
    if precision is not None:
        damaged[at + 4] = precision
    old_height, old_width = struct.unpack_from('>HH', damaged, at + 5)
    struct.pack_into('>HH', damaged, at + 5, old_height if height is None else height,
                     old_width if width is None else width)
    return bytes(damaged)


def jpeg_bomb():
    """~630-byte JPEG whose SOF claims 16384x16384 (libjpeg fills the missing data)."""
    return with_sof(small_jpeg(), BOMB_SIDE, BOMB_SIDE)


def progressive_jpeg_with_scans(rgb, scans):
    """Return a progressive JPEG with its last scan repeated until it has ``scans`` scans.

    Decoders warn about the repeated refinement but decode it, one pass per scan.
    """
    jpeg = small_jpeg(rgb, quality=90, progressive=True)
    last_scan = jpeg.rindex(b'\xff\xda')
    end = len(jpeg) - 2  # EOI
    have = jpeg.count(b'\xff\xda')
    return jpeg[:end] + jpeg[last_scan:end] * max(0, scans - have) + jpeg[end:]


def pillow_png(rgb, mode):
    """Encode ``rgb`` as PNG, converted to a Pillow mode ('L', 'LA', 'RGBA', 'P', 'I;16', ...)."""
    from PIL import Image
    stream = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(stream, 'PNG')
    return stream.getvalue()


def png_with_huge_chunk(rgb):
    """Return a PNG of ``rgb`` whose second chunk declares ~2 GB (OpenCV allocated it all)."""
    png = bytearray(pillow_png(rgb, 'RGB'))
    png[33:35] = b'\x7f\xff'  # high bytes of the length of the chunk after IHDR
    return bytes(png)


def jpeg_with_huge_segment(rgb):
    """Return a JPEG of ``rgb`` whose first segment after SOI declares more than the file."""
    jpeg = bytearray(small_jpeg(rgb))
    jpeg[4:6] = b'\xff\xf0'
    return bytes(jpeg)
