"""DALI implementation of a PreprocessSpec: one decode feeding every model input, batched.

Two graphs share the per-input part: ``encoded`` (JPEG/PNG bytes -> image decoder) and ``raw``
(host RGB frames, converted from their ROS encoding by ``inputs.raw_to_rgb``). Each input then
gets ``resize -> [RGB->BGR] -> crop_mirror_normalize -> [pad by slice]``:

- Stretch resizes to the input size (a constant in the graph). Letterbox resizes to the size
  FrameGeometry computed on the host and pads with ``fn.slice`` (negative start, out-of-bounds
  policy 'pad'); both come in through external sources, so DALI and the host always agree on
  the rounding that the geometry reports.
- Padding happens after normalization, with the pad value normalized per channel, so a
  fractional pad value (in pixel units) is exact.
- Antialiasing follows the spec (default on): shrinking a 1080p frame 3.6x-6.4x to 300 px
  without a low-pass filter aliases fine texture; DALI's antialiased linear filter is a
  triangle widened by the shrink factor.

Modes: 'gpu' (nvJPEG 'mixed' decode, GPU resize), 'gpu-cpudecode' (CPU decode, GPU resize: for
DALI builds without nvJPEG, e.g. Jetson) and 'cpu' (device_id=None, no GPU needed).
Graphs run with ``prefetch_queue_depth=1`` so an error belongs to the batch just fed. A DALI
pipeline is unusable after an operator error, so the graph is rebuilt and the batch re-run frame
by frame to find the bad frame; the others are still processed.
"""

import functools
import logging
import os
import re

import numpy as np

from dali_trt_ros.codec_messages import capture_codec_messages
from dali_trt_ros.errors import ConfigError, CorruptImageError, FrameError
from dali_trt_ros.preprocess.result import (geometries_for, HostCopies, prepare_batch,
                                            result_for_rows, stack_samples)

LOG = logging.getLogger(__name__)
MODES = ('gpu', 'gpu-cpudecode', 'cpu')
KINDS = ('encoded', 'raw')
FRAMES_SOURCE = 'frames'


def _dali():
    """Import DALI lazily with an actionable error."""
    try:
        from nvidia import dali
        import nvidia.dali.fn  # noqa: F401
        import nvidia.dali.types  # noqa: F401
    except ImportError as error:
        raise ConfigError(
            f'NVIDIA DALI is not importable ({error}); install nvidia-dali-cuda120/130 '
            '(x86_64) or build DALI for Jetson, or use the opencv backend') from None
    return dali


def size_source(index):
    """External-source name of input ``index``'s per-frame resize target [h, w]."""
    return f'input{index}_size'


def start_source(index):
    """External-source name of input ``index``'s per-frame slice start [-pad_top, -pad_left]."""
    return f'input{index}_start'


def _interp_type(types, interpolation):
    return {'linear': types.INTERP_LINEAR, 'cubic': types.INTERP_CUBIC,
            'nearest': types.INTERP_NN}[interpolation]


def _input_branch(dali, image, index, spec, work_device):
    """Resize, reorder, normalize and (letterbox) pad one model input."""
    fn, types = dali.fn, dali.types
    if spec.resize == 'letterbox':
        size = fn.external_source(name=size_source(index), dtype=types.FLOAT, ndim=1)
        start = fn.external_source(name=start_source(index), dtype=types.INT32, ndim=1)
    else:
        size = [float(spec.height), float(spec.width)]
    resized = fn.resize(image, device=work_device, size=size,
                        interp_type=_interp_type(types, spec.interpolation),
                        antialias=spec.antialias)
    if spec.color == 'BGR':
        resized = fn.color_space_conversion(resized, image_type=types.RGB,
                                            output_type=types.BGR)
    out = fn.crop_mirror_normalize(
        resized, mean=list(spec.mean), std=list(spec.std),
        dtype=types.FLOAT16 if spec.dtype == 'float16' else types.FLOAT,
        output_layout='CHW' if spec.chw else 'HWC')
    if spec.resize == 'letterbox':
        out = fn.slice(out, start=start, shape=[spec.height, spec.width], axis_names='HW',
                       out_of_bounds_policy='pad', fill_values=list(spec.normalized_pad()))
    return out


def define_graph(spec, kind, mode):
    """Return the DALI graph function for frames of ``kind`` ('encoded' or 'raw') in ``mode``."""
    dali = _dali()
    fn, types = dali.fn, dali.types
    on_gpu = mode != 'cpu'
    work_device = 'gpu' if on_gpu else 'cpu'

    def graph():
        if kind == 'encoded':
            data = fn.external_source(name=FRAMES_SOURCE, dtype=types.UINT8, ndim=1)
            decoder_device = 'mixed' if mode == 'gpu' else 'cpu'
            image = fn.decoders.image(data, device=decoder_device, output_type=types.RGB,
                                      adjust_orientation=False)
        else:
            image = fn.external_source(name=FRAMES_SOURCE, dtype=types.UINT8, ndim=3,
                                       layout='HWC')
        if on_gpu and (kind == 'raw' or mode == 'gpu-cpudecode'):
            image = image.gpu()
        return tuple(_input_branch(dali, image, i, s, work_device)
                     for i, s in enumerate(spec.inputs))

    return graph


def pipeline_settings(spec, mode, device_id, num_threads):
    """Keyword arguments shared by building and deserializing a graph."""
    if mode != 'cpu' and device_id is None:
        raise ConfigError(f'DALI mode {mode!r} needs a GPU device_id; use mode "cpu" for '
                          'device_id=None')
    return dict(batch_size=spec.max_batch, num_threads=num_threads,
                device_id=None if mode == 'cpu' else device_id, prefetch_queue_depth=1)


def build_pipeline(spec, kind, mode, device_id, num_threads):
    """Build a DALI pipeline for ``kind`` frames."""
    dali = _dali()
    pipe = dali.Pipeline(**pipeline_settings(spec, mode, device_id, num_threads))
    with pipe:
        pipe.set_outputs(*define_graph(spec, kind, mode)())
    pipe.build()
    return pipe


def deserialize_pipeline(serialized, spec, mode, device_id, num_threads):
    """Rebuild a pipeline from ``Pipeline.serialize`` bytes."""
    dali = _dali()
    pipe = dali.Pipeline.deserialize(serialized_pipeline=serialized,
                                     **pipeline_settings(spec, mode, device_id, num_threads))
    pipe.build()
    return pipe


def short_dali_message(error):
    """Return the informative part of a DALI exception (it embeds a Python traceback)."""
    text = str(error)
    if 'encountered:' in text:
        text = text.split('encountered:', 1)[1]
    text = re.sub(r'Current pipeline object is no longer valid\.?', '', text)
    return ' '.join(text.split())[:300] or type(error).__name__


def _host_array(tensor_list):
    """Copy a dense DALI TensorList (CPU or GPU) to one NumPy array."""
    if hasattr(tensor_list, 'as_cpu'):
        tensor_list = tensor_list.as_cpu()
    return tensor_list.as_array()


class DaliPreprocessor:
    """DALI preprocessor: ``run(frames)`` -> PreprocessResult, in 'gpu', 'gpu-cpudecode' or 'cpu'.

    ``device_id=None`` means CPU-only ('cpu' mode). ``serialized`` (kind -> bytes), normally
    from ``load``, builds the graphs from saved DALI graphs instead of from the spec.
    """

    def __init__(self, spec, device_id=0, mode=None, num_threads=None, serialized=None):
        self.spec = spec
        self.mode = mode or ('cpu' if device_id is None else 'gpu')
        if self.mode not in MODES:
            raise ConfigError(f'DALI mode {self.mode!r} is not one of {", ".join(MODES)}')
        self.device_id = None if self.mode == 'cpu' else device_id
        self.num_threads = num_threads or max(1, min(os.cpu_count() or 1, 4))
        self.backend = f'dali-{self.mode}'
        self._serialized = dict(serialized) if serialized else None
        self._generation = 0  # runs so far: lazy host copies are valid for the latest only
        self._pipes = {kind: self._new_pipeline(kind) for kind in KINDS}

    def _new_pipeline(self, kind):
        if self._serialized is not None:
            return deserialize_pipeline(self._serialized[kind], self.spec, self.mode,
                                        self.device_id, self.num_threads)
        return build_pipeline(self.spec, kind, self.mode, self.device_id, self.num_threads)

    def save(self, folder):
        """Write both DALI graphs as serialized files ``<folder>/{encoded,raw}.dali``."""
        os.makedirs(folder, exist_ok=True)
        paths = {}
        for kind, pipe in self._pipes.items():
            paths[kind] = os.path.join(folder, f'{kind}.dali')
            pipe.serialize(filename=paths[kind])
        return paths

    @classmethod
    def load(cls, folder, spec, device_id=0, mode=None, num_threads=None):
        """Create a DaliPreprocessor from graphs saved by ``save`` (same spec and mode)."""
        serialized = {}
        for kind in KINDS:
            path = os.path.join(folder, f'{kind}.dali')
            try:
                with open(path, 'rb') as stream:
                    serialized[kind] = stream.read()
            except OSError as error:
                raise ConfigError(f'cannot read serialized DALI graph {path}: {error}; '
                                  'write it with DaliPreprocessor.save') from None
        return cls(spec, device_id, mode, num_threads, serialized=serialized)

    def _feed_and_run(self, kind, rows, geometries):
        """Run one chunk (len <= max_batch) through the ``kind`` pipeline."""
        pipe = self._pipes[kind]
        pipe.feed_input(FRAMES_SOURCE, [prepared.payload for _, prepared in rows])
        for index, spec in enumerate(self.spec.inputs):
            if spec.resize != 'letterbox':
                continue
            geos = [geometries[spec.name][row] for row, _ in rows]
            pipe.feed_input(size_source(index), [
                np.array([g.resized_height, g.resized_width], np.float32) for g in geos])
            pipe.feed_input(start_source(index), [
                np.array([-g.content_window()[1], -g.content_window()[0]], np.int32)
                for g in geos])
        if kind != 'encoded':
            return pipe.run()
        with capture_codec_messages():  # the CPU decoders' libjpeg/libpng warnings
            return pipe.run()

    def _run_chunk(self, kind, rows, geometries, errors):
        """Run rows; on a DALI error, rebuild and isolate the bad frame(s).

        Returns [(rows, outputs)] for the runs that succeeded.
        """
        try:
            return [(rows, self._feed_and_run(kind, rows, geometries))]
        except Exception as error:  # DALI raises RuntimeError/IndexError for operator failures
            self._pipes[kind] = self._new_pipeline(kind)
            if len(rows) > 1:
                done = []
                for row in rows:
                    done.extend(self._run_chunk(kind, [row], geometries, errors))
                return done
            message = short_dali_message(error)
            if kind == 'encoded':
                errors[rows[0][0]] = CorruptImageError(
                    f'DALI could not decode the image: {message}')
            else:
                errors[rows[0][0]] = FrameError(f'DALI failed on a raw frame: {message}')
            return []

    def run(self, frames):
        """Preprocess a list of frames; bad frames are reported in ``errors``, not raised."""
        prepared, errors = prepare_batch(frames, self.spec.max_pixels)
        geometries = geometries_for(self.spec, prepared)
        frame_errors = {}
        chunks = []  # [(rows, outputs)], rows = [(row_in_prepared, PreparedFrame)]
        for kind in KINDS:
            rows = [(row, p) for row, (_, p) in enumerate(prepared) if p.kind == kind]
            for start in range(0, len(rows), self.spec.max_batch):
                chunk = rows[start:start + self.spec.max_batch]
                chunks.extend(self._run_chunk(kind, chunk, geometries, frame_errors))
        for row, error in frame_errors.items():
            errors[prepared[row][0]] = error
        return self._assemble(prepared, geometries, chunks, errors)

    def _assemble(self, prepared, geometries, chunks, errors):
        """Order outputs by frame index; host copies are made only where someone reads them.

        With one GPU chunk the engines take DALI's device memory directly, so ``tensors`` copies
        an input to the host on first access (until the next ``run``, when DALI reuses that
        memory); otherwise the host arrays are assembled now.
        """
        order = sorted((row, c, k) for c, (rows, _) in enumerate(chunks)
                       for k, (row, _) in enumerate(rows))
        single_ordered = len(chunks) == 1 and all(k == n for n, (_, _, k) in enumerate(order))

        def host_tensor(i, spec):
            if single_ordered:
                return _host_array(chunks[0][1][i])  # already one dense batch in frame order
            host = {c: _host_array(chunks[c][1][i]) for c in {c for _, c, _ in order}}
            return stack_samples(spec, [host[c][k] for _, c, k in order])

        copies = {s.name: functools.partial(host_tensor, i, s)
                  for i, s in enumerate(self.spec.inputs)}
        device_tensors = None
        self._generation += 1
        if self.mode != 'cpu' and len(chunks) == 1:
            device_tensors = {s.name: chunks[0][1][i] for i, s in enumerate(self.spec.inputs)}
            tensors = HostCopies(copies, lambda generation=self._generation:
                                 generation == self._generation)
        else:
            tensors = {name: copy() for name, copy in copies.items()}
        return result_for_rows(prepared, geometries, [row for row, _, _ in order], tensors,
                               errors, self.backend, device_tensors)
