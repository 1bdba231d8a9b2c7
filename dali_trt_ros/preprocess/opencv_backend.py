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

from dali_trt_ros.errors import FrameError
from dali_trt_ros.preprocess.inputs import decode_rgb
from dali_trt_ros.preprocess.result import (geometries_for, prepare_batch, result_for_rows,
                                            stack_samples)

BACKEND_NAME = 'opencv'


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
        rgb = decode_rgb(prepared)
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
        tensors = {spec.name: stack_samples(spec, [outcomes[r][spec.name] for r in good_rows])
                   for spec in self.spec.inputs}
        return result_for_rows(prepared, geometries, good_rows, tensors, errors, self.backend)
