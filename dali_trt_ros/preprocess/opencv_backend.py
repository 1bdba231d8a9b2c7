"""NumPy/OpenCV implementation of a PreprocessSpec: the oracle for DALI, and a CPU backend.

Resampling is chosen to be the same filter DALI applies (measured on skimage photos, 8-bit):

- nearest: ``cv2.INTER_NEAREST_EXACT`` (pixel-centre rounding, identical to DALI's INTERP_NN;
  plain ``INTER_NEAREST`` floors and differs on most pixels).
- linear without antialias, or not shrinking: ``cv2.INTER_LINEAR`` (within 1 level of DALI).
- linear/cubic with antialias while shrinking, and cubic when enlarging: Pillow's BILINEAR /
  BICUBIC, which widen the filter by the shrink factor as DALI does (p99 within 1 level).
  OpenCV has no antialiased linear filter; ``INTER_AREA`` is a box filter and differs by up to
  ~30 levels on edges.
- cubic without antialias while shrinking: ``cv2.INTER_CUBIC``; its kernel (a = -0.75) differs
  from DALI's, within ~15 levels on hard edges.
Decoding uses OpenCV (libjpeg-turbo / libpng) with EXIF orientation ignored, as the DALI graph
does, so both see the pixels in stored order.
"""

from concurrent.futures import ThreadPoolExecutor
import os

import numpy as np

from dali_trt_ros.errors import CorruptImageError, FrameError
from dali_trt_ros.preprocess.result import geometries_for, prepare_batch, PreprocessResult

BACKEND_NAME = 'opencv'


def decode_rgb(prepared):
    """Decode a prepared encoded frame to (H, W, 3) RGB uint8 with OpenCV."""
    import cv2

    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(prepared.payload, flags)
    if bgr is None:
        raise CorruptImageError(f'{prepared.codec.upper()} data could not be decoded '
                                '(corrupt image data)')
    if bgr.shape[:2] != (prepared.height, prepared.width):
        raise CorruptImageError(f'{prepared.codec.upper()} decoded to {bgr.shape[1]}x'
                                f'{bgr.shape[0]} but its header says '
                                f'{prepared.width}x{prepared.height}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_like_dali(rgb, width, height, interpolation, antialias):
    """Resize (H, W, 3) uint8 to width x height with the filter DALI would use."""
    import cv2

    src_h, src_w = rgb.shape[:2]
    if (src_w, src_h) == (width, height):
        return rgb
    shrinking = width < src_w or height < src_h
    if interpolation == 'nearest':
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    if interpolation == 'linear' and not (antialias and shrinking):
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    if interpolation == 'cubic' and shrinking and not antialias:
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    from PIL import Image

    pil_filter = Image.BILINEAR if interpolation == 'linear' else Image.BICUBIC
    return np.asarray(Image.fromarray(rgb).resize((width, height), pil_filter))


def normalize_to_tensor(resized, spec, geometry):
    """Normalize, pad (letterbox) and lay out one resized RGB image as the spec says."""
    pixels = resized[:, :, ::-1] if spec.color == 'BGR' else resized
    mean = np.asarray(spec.mean, np.float32)
    inv_std = np.asarray([1.0 / s for s in spec.std], np.float32)
    content = (pixels.astype(np.float32) - mean) * inv_std
    if spec.resize == 'letterbox':
        canvas = np.empty((spec.height, spec.width, 3), np.float32)
        canvas[:] = np.asarray(spec.normalized_pad(), np.float32)
        x0, y0, x1, y1 = geometry.content_window()
        canvas[y0:y1, x0:x1] = content
        content = canvas
    if spec.chw:
        content = content.transpose(2, 0, 1)
    return np.ascontiguousarray(content, dtype=np.dtype(spec.dtype))


class OpenCVPreprocessor:
    """Preprocess frames with OpenCV/Pillow/NumPy on the CPU, following a PreprocessSpec."""

    device_id = None

    def __init__(self, spec, num_threads=None):
        self.spec = spec
        self.backend = BACKEND_NAME
        self.num_threads = num_threads or min(os.cpu_count() or 1, 8)
        self._pool = ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 else None

    def close(self):
        """Stop the worker threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _one_frame(self, prepared, geometries):
        rgb = decode_rgb(prepared) if prepared.kind == 'encoded' else prepared.payload
        tensors = {}
        for spec in self.spec.inputs:
            geometry = geometries[spec.name]
            resized = resize_like_dali(rgb, geometry.resized_width, geometry.resized_height,
                                       spec.interpolation, spec.antialias)
            tensors[spec.name] = normalize_to_tensor(resized, spec, geometry)
        return tensors

    def run(self, frames):
        """Preprocess a list of frames; bad frames are reported in ``errors``, not raised."""
        prepared, errors = prepare_batch(frames, self.spec.max_pixels)
        geometries = geometries_for(self.spec, prepared)
        per_frame = [{name: geometries[name][row] for name in geometries}
                     for row in range(len(prepared))]
        jobs = [(p, g) for (_, p), g in zip(prepared, per_frame)]
        if self._pool is not None and len(jobs) > 1:
            futures = [self._pool.submit(self._one_frame, p, g) for p, g in jobs]
            outcomes = []
            for future in futures:
                try:
                    outcomes.append(future.result())
                except FrameError as error:
                    outcomes.append(error)
        else:
            outcomes = []
            for p, g in jobs:
                try:
                    outcomes.append(self._one_frame(p, g))
                except FrameError as error:
                    outcomes.append(error)
        good_rows = []
        for row, ((index, _), outcome) in enumerate(zip(prepared, outcomes)):
            if isinstance(outcome, FrameError):
                errors[index] = outcome
            else:
                good_rows.append(row)
        tensors = {}
        for spec in self.spec.inputs:
            rows = [outcomes[r][spec.name] for r in good_rows]
            tensors[spec.name] = np.stack(rows) if rows else \
                np.empty((0, *spec.sample_shape()), np.dtype(spec.dtype))
        return PreprocessResult(
            tensors=tensors,
            geometries={name: [geos[r] for r in good_rows] for name, geos in geometries.items()},
            frame_indices=[prepared[r][0] for r in good_rows],
            errors=dict(sorted(errors.items())), backend=self.backend)
