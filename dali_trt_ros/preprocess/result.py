"""What a preprocessor returns, and the per-batch bookkeeping every backend shares."""

from dataclasses import dataclass, field

from dali_trt_ros.errors import FrameError
from dali_trt_ros.preprocess.geometry import FrameGeometry
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS
from dali_trt_ros.preprocess.inputs import prepare_frame


def geometry_for(spec, width, height):
    """Return the FrameGeometry an InputSpec gives a frame of ``width`` x ``height``."""
    if spec.resize == 'letterbox':
        return FrameGeometry.letterbox(width, height, spec.width, spec.height)
    return FrameGeometry.stretch(width, height, spec.width, spec.height)


@dataclass
class PreprocessResult:
    """Tensors for the frames that could be processed, and why the others could not.

    Row ``r`` of every tensor belongs to input frame ``frame_indices[r]``; frames that failed are
    absent from the tensors and listed in ``errors`` (frame index -> FrameError). ``tensors`` are
    host NumPy batches (N, ...) in the spec's layout and dtype; ``geometries[name][r]`` maps row
    ``r`` back to original pixels. ``device_tensors`` holds the DALI GPU outputs (TensorListGPU,
    one per input name) for zero-copy hand-over to an engine, or None when the backend has none;
    they stay valid until the preprocessor's next ``run``.
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
