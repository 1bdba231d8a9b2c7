"""Declarative description of what a model input needs from a camera frame.

One ``InputSpec`` per model input tensor; a ``PreprocessSpec`` groups the inputs that one decode
feeds. Both are frozen and validated on construction, so a bad configuration fails at start-up
with a ``ConfigError`` naming the key, never on the first frame.

Normalization is ``out = (pixel - mean) / std`` with pixels in 0..255 in the channel order of
``color``. Configurations may instead give ``scale``/``offset`` (``out = pixel * scale + offset``),
which ``from_dict`` converts to the equivalent mean/std.
"""

import dataclasses
from dataclasses import dataclass, field

from dali_trt_ros import validation as check
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
CHOICES = {'resize': RESIZE_MODES, 'interpolation': INTERPOLATIONS, 'color': COLORS,
           'layout': LAYOUTS, 'dtype': DTYPES}
INPUT_KEYS = ('name', 'width', 'height', 'resize', 'pad_value', 'interpolation', 'antialias',
              'color', 'mean', 'std', 'scale', 'offset', 'layout', 'dtype')


def _checked_input(values, where):
    """Return the InputSpec fields of ``values`` in canonical types; ConfigError names the key."""
    def at(key):
        return check.child(where, key)

    checked = dict(values)
    checked['name'] = check.text(values['name'], at('name'))
    for key in ('width', 'height'):
        checked[key] = check.integer(values[key], at(key), low=1, high=MAX_INPUT_SIDE)
    for key, allowed in CHOICES.items():
        checked[key] = check.choice(values[key], allowed, at(key))
    checked['antialias'] = check.boolean(values['antialias'], at('antialias'))
    # The pad value is applied before normalization, so it is a pixel value.
    checked['pad_value'] = check.number(values['pad_value'], at('pad_value'), low=0.0, high=255.0)
    checked['mean'] = check.per_channel(values['mean'], at('mean'))
    checked['std'] = check.per_channel(values['std'], at('std'), nonzero=True)
    return checked


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
        for key, value in _checked_input(dataclasses.asdict(self), 'input').items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_dict(cls, d, where='input'):
        """Build from the ``input:`` mapping of a model YAML; errors name ``where`` + the key.

        ``where`` prefixes every message, e.g. ``models/ssd.yaml: input``.
        """
        check.known_keys(d, INPUT_KEYS, where)
        for key in ('name', 'width', 'height'):
            check.required(d, key, where)
        kwargs = {k: v for k, v in d.items() if k not in ('scale', 'offset')}
        if 'scale' in d or 'offset' in d:
            if 'mean' in d or 'std' in d:
                raise ConfigError(f'{where}: give either mean/std or scale/offset, not both')
            scale = check.per_channel(d.get('scale', 1.0), check.child(where, 'scale'),
                                      nonzero=True)
            offset = check.per_channel(d.get('offset', 0.0), check.child(where, 'offset'))
            # pixel * scale + offset == (pixel - mean) / std
            # with std = 1 / scale and mean = -offset / scale
            kwargs['std'] = tuple(1.0 / s for s in scale)
            kwargs['mean'] = tuple(-o / s for o, s in zip(offset, scale))
        defaults = {f.name: f.default for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING}
        return cls(**_checked_input(dict(defaults, **kwargs), where))

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
        object.__setattr__(self, 'max_batch',
                           check.integer(self.max_batch, 'preprocess.max_batch', low=1, high=256))
        object.__setattr__(self, 'max_pixels',
                           check.integer(self.max_pixels, 'preprocess.max_pixels', low=1,
                                         high=MAX_DIMENSION * MAX_DIMENSION))
        check.choice(self.device, DEVICES, 'preprocess.device')

    @classmethod
    def from_dict(cls, d):
        """Build from a mapping: ``inputs`` (input mappings), max_batch, device, max_pixels."""
        check.known_keys(d, ('inputs', 'max_batch', 'device', 'max_pixels'), 'preprocess')
        raw_inputs = d.get('inputs')
        if not isinstance(raw_inputs, (list, tuple)):
            raise check.invalid('preprocess.inputs', 'a list of input mappings', raw_inputs)
        return cls(tuple(InputSpec.from_dict(item, f'preprocess.inputs[{i}]')
                         for i, item in enumerate(raw_inputs)),
                   d.get('max_batch', 1), d.get('device', 'auto'),
                   d.get('max_pixels', DEFAULT_MAX_PIXELS))

    def input(self, name):
        """Return the InputSpec called ``name``."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)
