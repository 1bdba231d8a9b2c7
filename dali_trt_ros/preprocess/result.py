"""What a preprocessor returns, and the per-batch bookkeeping every backend shares."""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from dali_trt_ros.errors import FrameError
from dali_trt_ros.preprocess.geometry import FrameGeometry
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.preprocess.inputs import prepare_frame


def geometry_for(spec, width, height):
    """Return the FrameGeometry an InputSpec gives a frame of ``width`` x ``height``."""
    if spec.resize == 'letterbox':
        return FrameGeometry.letterbox(width, height, spec.width, spec.height)
    return FrameGeometry.stretch(width, height, spec.width, spec.height)


class HostCopies(Mapping):
    """Input name -> host array, each copied from the device on first access only.

    ``valid()`` says whether the device memory still holds this batch (a preprocessor reuses
    it on its next run); reading a copy that was never made after that raises.
    """

    def __init__(self, copy_functions, valid):
        self._copy_functions = dict(copy_functions)
        self._valid = valid
        self._copies = {}

    def __getitem__(self, name):
        if name not in self._copies:
            copy = self._copy_functions[name]  # KeyError for unknown names, as a dict
            if not self._valid():
                raise RuntimeError(
                    f'the host copy of {name!r} was first asked for after the preprocessor ran '
                    'again and reused its device memory; read result.tensors before the next '
                    'run')
            self._copies[name] = copy()
        return self._copies[name]

    def __iter__(self):
        return iter(self._copy_functions)

    def __len__(self):
        return len(self._copy_functions)

    @property
    def copied(self):
        """Names whose host copy was made so far."""
        return sorted(self._copies)


@dataclass
class PreprocessResult:
    """Tensors for the frames that could be processed, and why the others could not.

    Row ``r`` of every tensor belongs to input frame ``frame_indices[r]``; frames that failed are
    absent from the tensors and listed in ``errors`` (frame index -> FrameError). ``tensors`` are
    host NumPy batches (N, ...) in the spec's layout and dtype (a HostCopies mapping when the
    batch is on the GPU: copied on first access, which must come before the next run);
    ``geometries[name][r]`` maps row ``r`` back to original pixels. ``device_tensors`` holds the
    DALI GPU outputs (TensorListGPU, one per input name) for zero-copy hand-over to an engine, or
    None when the backend has none; they stay valid until the preprocessor's next ``run``.
    """

    tensors: dict
    geometries: dict
    frame_indices: list
    errors: dict = field(default_factory=dict)
    backend: str = ''
    device_tensors: dict = None

    @property
    def ok(self):
        """True when every frame was processed."""
        return not self.errors


def prepare_batch(frames, max_pixels=DEFAULT_MAX_PIXELS):
    """Validate frames; return ([(index, PreparedFrame)], {index: FrameError})."""
    prepared, errors = [], {}
    for index, frame in enumerate(frames):
        try:
            prepared.append((index, prepare_frame(frame, max_pixels)))
        except FrameError as error:
            errors[index] = error
    return prepared, errors


def geometries_for(spec, prepared):
    """{input name: [FrameGeometry per prepared frame]} in prepared order."""
    return {i.name: [geometry_for(i, p.width, p.height) for _, p in prepared]
            for i in spec.inputs}


def stack_samples(input_spec, samples):
    """Batch per-frame tensors to (N, ...); no samples give an empty batch of the right shape."""
    if not samples:
        return np.empty((0, *input_spec.sample_shape()), np.dtype(input_spec.dtype))
    return np.stack(samples)


def result_for_rows(prepared, geometries, rows, tensors, errors, backend, device_tensors=None):
    """Assemble the PreprocessResult whose tensors hold the prepared ``rows``, in that order."""
    return PreprocessResult(
        tensors=tensors,
        geometries={name: [geos[r] for r in rows] for name, geos in geometries.items()},
        frame_indices=[prepared[r][0] for r in rows],
        errors=dict(sorted(errors.items())), backend=backend, device_tensors=device_tensors)
