"""Declarative description of what a model input needs from a camera frame.

One ``InputSpec`` per model input tensor; a ``PreprocessSpec`` groups the inputs that one decode
feeds. Both are frozen and validated on construction, so a bad configuration fails at start-up
with a ``ConfigError`` naming the key, never on the first frame.

Normalization is ``out = (pixel - mean) / std`` with pixels in 0..255 in the channel order of
``color``. Configurations may instead give ``scale``/``offset`` (``out = pixel * scale + offset``),
which ``from_dict`` converts to the equivalent mean/std.
"""

from dataclasses import dataclass, field
import math

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.frames import DEFAULT_MAX_PIXELS, MAX_DIMENSION

RESIZE_MODES = ('stretch', 'letterbox')
# 'area' is deliberately absent: DALI has no area filter; linear with antialias is its equivalent.
INTERPOLATIONS = ('linear', 'cubic', 'nearest')
COLORS = ('RGB', 'BGR')
LAYOUTS = ('NCHW', 'NHWC')
DTYPES = ('float32', 'float16')
DEVICES = ('auto', 'gpu', 'cpu')
# Model inputs beyond this are almost certainly a typo (e.g. 30000 instead of 300).
MAX_INPUT_SIDE = 8192
INPUT_KEYS = ('name', 'width', 'height', 'resize', 'pad_value', 'interpolation', 'antialias',
              'color', 'mean', 'std', 'scale', 'offset', 'layout', 'dtype')


def _choice(key, value, allowed):
    if value not in allowed:
        raise ConfigError(f'input.{key} = {value!r} is not one of {", ".join(allowed)}')
    return value


def _positive_int(key, value, upper):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= upper:
        raise ConfigError(f'input.{key} = {value!r} must be an integer in 1..{upper}')
    return value


def _three_floats(key, value):
    """Accept one number (same for all channels) or three numbers."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,) * 3
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f'input.{key} = {value!r} must be a number or a list of 3 numbers') \
            from None
    if len(numbers) != 3 or not all(math.isfinite(v) for v in numbers):
        raise ConfigError(
            f'input.{key} = {value!r} must be a number or a list of 3 finite numbers')
    return numbers


@dataclass(frozen=True)
class InputSpec:
    """How to turn a frame into one model input tensor."""

    name: str
    width: int
    height: int
    resize: str = 'stretch'
    pad_value: float = 0.0
    interpolation: str = 'linear'
    antialias: bool = True
    color: str = 'RGB'
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    layout: str = 'NCHW'
    dtype: str = 'float32'

    def __post_init__(self):
        """Validate every field; raise ConfigError naming the first bad one."""
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f'input.name = {self.name!r} must be the model input tensor name')
        _positive_int('width', self.width, MAX_INPUT_SIDE)
        _positive_int('height', self.height, MAX_INPUT_SIDE)
        _choice('resize', self.resize, RESIZE_MODES)
        _choice('interpolation', self.interpolation, INTERPOLATIONS)
        _choice('color', self.color, COLORS)
        _choice('layout', self.layout, LAYOUTS)
        _choice('dtype', self.dtype, DTYPES)
        if not isinstance(self.antialias, bool):
            raise ConfigError(f'input.antialias = {self.antialias!r} must be true or false')
        if isinstance(self.pad_value, bool) or not isinstance(self.pad_value, (int, float)) \
                or not 0.0 <= self.pad_value <= 255.0:
            raise ConfigError(f'input.pad_value = {self.pad_value!r} must be a pixel value '
                              'in 0..255 (it is applied before normalization)')
        object.__setattr__(self, 'pad_value', float(self.pad_value))
        object.__setattr__(self, 'mean', _three_floats('mean', self.mean))
        object.__setattr__(self, 'std', _three_floats('std', self.std))
        if any(s == 0.0 for s in self.std):
            raise ConfigError(f'input.std = {self.std} must not contain 0 (it divides)')

    @classmethod
    def from_dict(cls, d):
        """Build from a configuration mapping (the ``input:`` section of a model YAML)."""
        if not isinstance(d, dict):
            raise ConfigError(f'input must be a mapping, got {type(d).__name__}')
        unknown = sorted(set(d) - set(INPUT_KEYS))
        if unknown:
            raise ConfigError(f'input has unknown key(s) {", ".join(unknown)}; '
                              f'known keys: {", ".join(INPUT_KEYS)}')
        for key in ('name', 'width', 'height'):
            if key not in d:
                raise ConfigError(f'input.{key} is required')
        kwargs = {k: v for k, v in d.items() if k not in ('scale', 'offset')}
        if 'scale' in d or 'offset' in d:
            if 'mean' in d or 'std' in d:
                raise ConfigError('input: give either mean/std or scale/offset, not both')
            scale = _three_floats('scale', d.get('scale', 1.0))
            offset = _three_floats('offset', d.get('offset', 0.0))
            if any(s == 0.0 for s in scale):
                raise ConfigError(f'input.scale = {d["scale"]!r} must not contain 0')
            # pixel * scale + offset == (pixel - mean) / std
            # with std = 1 / scale and mean = -offset / scale
            kwargs['std'] = tuple(1.0 / s for s in scale)
            kwargs['mean'] = tuple(-o / s for o, s in zip(offset, scale))
        return cls(**kwargs)

    @property
    def chw(self):
        """True when the tensor is channels-first."""
        return self.layout == 'NCHW'

    def sample_shape(self):
        """Shape of one frame's tensor (without the batch dimension)."""
        return (3, self.height, self.width) if self.chw else (self.height, self.width, 3)

    def normalized_pad(self):
        """Value each channel's padding takes after normalization."""
        return tuple((self.pad_value - m) / s for m, s in zip(self.mean, self.std))


@dataclass(frozen=True)
class PreprocessSpec:
    """All model inputs fed from one decode, the largest batch, where to run, the pixel budget.

    ``max_pixels`` refuses frames whose declared width*height is larger, before decoding
    (``ImageTooLargeError``); the default is sized for DCI 8K cameras (see frames.py).
    """

    inputs: tuple = field(default_factory=tuple)
    max_batch: int = 1
    device: str = 'auto'
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self):
        """Validate; raise ConfigError naming the bad key."""
        inputs = tuple(self.inputs)
        if not inputs or not all(isinstance(i, InputSpec) for i in inputs):
            raise ConfigError('preprocess.inputs must list at least one InputSpec')
        names = [i.name for i in inputs]
        if len(set(names)) != len(names):
            raise ConfigError(f'preprocess.inputs has duplicate names: {names}')
        object.__setattr__(self, 'inputs', inputs)
        _positive_int('max_batch', self.max_batch, 256)
        _positive_int('max_pixels', self.max_pixels, MAX_DIMENSION * MAX_DIMENSION)
        if self.device not in DEVICES:
            raise ConfigError(f'preprocess.device = {self.device!r} is not one of '
                              f'{", ".join(DEVICES)}')

    @classmethod
    def from_dict(cls, d):
        """Build from a mapping: ``inputs`` (input mappings), max_batch, device, max_pixels."""
        if not isinstance(d, dict):
            raise ConfigError(f'preprocess must be a mapping, got {type(d).__name__}')
        unknown = sorted(set(d) - {'inputs', 'max_batch', 'device', 'max_pixels'})
        if unknown:
            raise ConfigError(f'preprocess has unknown key(s) {", ".join(unknown)}')
        raw_inputs = d.get('inputs')
        if not isinstance(raw_inputs, (list, tuple)):
            raise ConfigError('preprocess.inputs must be a list of input mappings')
        return cls(tuple(InputSpec.from_dict(i) for i in raw_inputs),
                   d.get('max_batch', 1), d.get('device', 'auto'),
                   d.get('max_pixels', DEFAULT_MAX_PIXELS))

    def input(self, name):
        """Return the InputSpec called ``name``."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)
