"""Typed errors shared by every layer.

Each error carries a short machine-readable ``reason`` so nodes can count failures per cause in
diagnostics, and a message that tells the operator what to do about it.
"""


class PerceptionError(Exception):
    """Base class of every error this package raises on purpose."""

    reason = 'error'


class FrameError(PerceptionError):
    """An input frame cannot be processed; the next frame may be fine."""

    reason = 'bad_frame'


class UnsupportedEncodingError(FrameError):
    """The image encoding (or compressed format) is not one this package can read."""

    reason = 'unsupported_encoding'


class UnsupportedPixelFormatError(UnsupportedEncodingError):
    """A JPEG/PNG whose sample depth, channels or coding the pipeline does not accept."""

    reason = 'unsupported_pixel_format'


class ImageTooLargeError(FrameError):
    """The frame declares more pixels than the configured budget (``max_pixels``)."""

    reason = 'image_too_large'


class MalformedFrameError(FrameError):
    """The frame's size fields disagree with its data (step, height, width, length)."""

    reason = 'malformed_frame'


class CorruptImageError(FrameError):
    """Compressed image bytes could not be decoded (truncated or corrupt JPEG/PNG)."""

    reason = 'corrupt_image'


class ModelError(PerceptionError):
    """A model or engine file is missing, unreadable or does not match its configuration."""

    reason = 'model_error'


class BindingMismatchError(ModelError):
    """Configured input/output names, shapes or dtypes differ from what the model has."""

    reason = 'binding_mismatch'


class EngineCacheError(ModelError):
    """A cached engine is missing, stale or was built for another device or TensorRT version."""

    reason = 'engine_cache'


class InferenceError(ModelError):
    """A model raised while running or decoding a batch; the other models keep running."""

    reason = 'inference_failed'
    MAX_MESSAGE = 300

    @classmethod
    def from_exception(cls, model, error):
        """Wrap an unexpected exception of `model` with a bounded, one-line message."""
        text = ' '.join(str(error).split())
        if len(text) > cls.MAX_MESSAGE:
            text = text[:cls.MAX_MESSAGE] + '...'
        return cls(f'model {model!r} failed: {type(error).__name__}: {text}')


class CudaError(PerceptionError):
    """A CUDA runtime call failed, or no CUDA runtime library could be loaded.

    Out of memory, a lost device or a bad handle: counted apart from model errors, because the
    fix is in the machine or its load, not in the model.
    """

    reason = 'cuda_error'


class ConfigError(PerceptionError):
    """A parameter or configuration file value is invalid; the message names it."""

    reason = 'config_error'


def bounded_repr(value, limit=64):
    """repr() of an input-supplied value, cut to ``limit`` characters.

    Error messages quote what a frame declared (format, encoding); a hostile or broken
    publisher can send megabytes there, and messages end up in logs and diagnostics.
    """
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value)
    return f'{text[:limit]!r}... ({len(text)} characters)'
